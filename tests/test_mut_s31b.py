"""Gaps found by mutating session 31's page changes: a caption's number at and beside the threshold (medical,
non-medical, and an uncertain one needing three or four decimals), the web-address box's splitting and
trimming, the downloads' names at threshold 1, and the guard's answer for an upload swept from the server."""

import json
import os

from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse

from medimg.model.classifier import verdict_for
from medimg.pipeline import Record
from medimg.server import guard
from medimg.server.guard import OwnFilesOnly, _gone
from medimg.server.ui import _addresses, _caption, _web_address, _write_exports


def _sure(p: float, t: float) -> str:
    r = Record(input="a.png", locator="", label="xray", confidence=0.9, p_medical=p, verdict=verdict_for(p, t))
    return _caption(r, t).split(" · ")[0]


# ---------------------------------------------------------------- captions


def test_a_sure_caption_at_the_threshold_itself_is_a_whole_percent():
    assert _sure(0.97, 0.97) == "medical 97%"  # p = t is medical: 97% is on its side, no decimals needed
    assert verdict_for(0.03, 0.97) == "non-medical"
    assert _sure(0.03, 0.97) == "non-medical 97%"


def test_a_sure_caption_keeps_the_decimals_that_keep_it_at_or_above_the_threshold():
    assert _sure(0.9705, 0.9705) == "medical 97.05%"  # not "medical 97%", below the threshold
    assert _sure(0.0295, 0.9705) == "non-medical 97.05%"
    assert _sure(0.96, 0.9) == "medical 96%"


def test_an_uncertain_caption_takes_up_to_four_decimals_to_stay_below_the_threshold():
    assert _sure(0.96999, 0.97) == "uncertain (medical 96.999%)"
    assert _sure(0.969999, 0.97) == "uncertain (medical 96.9999%)"
    assert _sure(0.03001, 0.97) == "uncertain (medical 3.001%)"


def test_an_uncertain_caption_at_threshold_one_never_reads_100_percent():
    """At 1.0 everything below certainty is uncertain: 0.9999999 showed as "100.0000%" (four decimals at most)."""
    assert _sure(0.9999999, 1.0) == "uncertain (medical 99.99999%)"
    assert _sure(1 - 2**-53, 1.0) == "uncertain (medical 99.99999999999999%)"
    assert _sure(1e-9, 1.0) == "uncertain (medical 0.0000001%)"
    assert _sure(1.0, 1.0) == "medical 100%"


def test_a_caption_compares_its_decimals_as_the_threshold_was_typed():
    # 53.3 / 100 is 0.53299999… in floats, below 0.533: "medical 53.3000%" was shown at 0.533, and an
    # uncertain 0.50656 at 0.5066 as "50.66%", the threshold itself
    assert _sure(0.533, 0.533) == "medical 53.3%"
    assert _sure(0.467 - 1e-12, 0.533) == "non-medical 53.3%"
    assert _sure(0.50656, 0.5066) == "uncertain (medical 50.656%)"


# ---------------------------------------------------------------- the web-address box


def test_addresses_are_trimmed_and_blank_lines_are_none():
    assert _addresses("  https://a.org/x  \n\n   \n\twww.b.org/y \n") == ["https://a.org/x", "www.b.org/y"]
    assert _addresses(" \n ") == []
    assert _addresses("example.org/a b.html\r\nexample.org/c") == ["example.org/a b.html", "example.org/c"]  # a line each


def test_several_addresses_on_a_line_each_with_its_scheme_or_www():
    assert _addresses("www.a.org/x  www.b.org/y") == ["www.a.org/x", "www.b.org/y"]
    assert _addresses("a.org/my cases.html ftp://b.org/z") == ["a.org/my cases.html", "ftp://b.org/z"]
    # only "www." starts another: a word that merely begins with www stays in the address
    assert _addresses("example.org/notes wwwhat.html") == ["example.org/notes wwwhat.html"]
    # in any case, as host names are (WWW.B.ORG, HTTPS://)
    assert _addresses("https://a.org/x WWW.b.org/y HTTPS://c.org") == ["https://a.org/x", "WWW.b.org/y", "HTTPS://c.org"]


def test_a_host_with_a_query_or_a_fragment_and_no_path_is_a_web_address():
    for typed in ("example.org?q=1", "example.org#top", "example.org:8080?q=a b"):
        assert _web_address(typed) == ("https://" + typed, None)


def test_words_after_a_host_name_are_not_a_web_address():
    for typed in ("example.org and more", "see example.org/x"):
        url, problem = _web_address(typed)
        assert url == typed and "is not a web address" in problem


# ---------------------------------------------------------------- downloads


def test_the_downloads_name_their_threshold_as_typed(tmp_path):
    for t, says in ((1.0, "1"), (0.85, "0.85"), (0.5, "0.5")):
        csv_path, json_path = _write_exports([], t, {}, tmp_path)
        assert (csv_path.name, json_path.name) == (f"medimg-results-threshold-{says}.csv",
                                                   f"medimg-results-threshold-{says}.json")


# ---------------------------------------------------------------- the guard


def test_gone_is_a_path_in_the_upload_area_that_names_nothing(tmp_path):
    root = tmp_path / "uploads"
    (root / "abc").mkdir(parents=True)
    (root / "abc" / "here.png").write_bytes(b"x")
    (root / "abc" / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    assert _gone(str(root / "abc" / "swept.png"), [root])
    assert not _gone(str(root / "abc" / "here.png"), [root])
    assert not _gone(str(root / "abc" / "dangling.png"), [root])  # a link is something, if it leads nowhere
    assert not _gone(str(tmp_path / "elsewhere" / "swept.png"), [root])  # not the page's to speak of
    assert not _gone(str(root), [root])


def test_gone_cannot_tell_a_path_it_cannot_make_absolute(tmp_path, monkeypatch):
    def no_folder(path):
        raise FileNotFoundError("the working folder was deleted")

    monkeypatch.setattr(guard.os.path, "abspath", no_folder)
    assert not _gone("swept.png", [tmp_path])


def _guarded(root):
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["path"])
        await PlainTextResponse("ran")(scope, receive, send)

    return TestClient(OwnFilesOnly(app, lambda: [root])), seen


def _event(path: str) -> dict:
    return {"data": [[{"path": path, "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}}]]}


def test_an_upload_swept_away_is_named_by_its_file_and_not_run(tmp_path):
    root = tmp_path / "uploads"
    (root / "abc").mkdir(parents=True)
    client, seen = _guarded(root)
    r = client.post("/gradio_api/queue/join", json=_event(str(root / "abc" / "ward-round.png")))
    assert r.status_code == 400 and seen == [], r.text
    error = r.json()["error"]
    assert error.startswith("“ward-round.png” is no longer on the server") and "add it again" in error, error
    assert str(tmp_path) not in error and "/abc/" not in error, error  # no path of the server's


def test_a_file_never_uploaded_is_refused_as_before(tmp_path):
    root = tmp_path / "uploads"
    (root / "abc").mkdir(parents=True)
    (root / "abc" / "scan.png").write_bytes(b"x")
    client, seen = _guarded(root)
    for path in (str(tmp_path / "missing.png"), os.path.join("http://127.0.0.1:9", "x.png"), str(root / "abc")):
        r = client.post("/gradio_api/queue/join", json=_event(path))
        assert r.status_code == 400 and "not uploaded to this page" in r.json()["error"], (path, r.text)
    r = client.post("/gradio_api/queue/join", content=json.dumps(_event(str(root / "abc" / "scan.png"))),
                    headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.text == "ran" and seen == ["/gradio_api/queue/join"]
