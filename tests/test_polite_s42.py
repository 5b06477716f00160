"""Fetching politely at scale (session 42): at most `max_per_host` requests to one host at once from the process,
every run together (a list of 100,000 URLs of one site with --workers 32 sent it 32 at once, four pages of it 32,
`scale --concurrency 2` 128); an opt-in to honour X-Robots-Tag (noai, noimageai, noindex, noimageindex, none) as
img2dataset does; an identifiable User-Agent that the CLI can set. Real servers on 127.0.0.x; the assertions count
requests, never time."""
from __future__ import annotations

import io
import json
import threading

import pytest
from PIL import Image
from typer.testing import CliRunner

import medimg
from medimg.cli import app
from medimg.pipeline import classify
from medimg.sources import net
from medimg.sources.base import Limits
from webserver import WebServer

OPEN = dict(allow_private=True, connect_timeout=5, read_timeout=10, total_timeout=20)
DELAY = 0.3  # each image answers after this, so requests sent together overlap on the server


def _png(n: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 80), (n * 37 % 256, n * 91 % 256, 200)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


def _images(srv, count: int, delay: float = DELAY) -> list[str]:
    return [srv.add(f"/i{n}.png", _png(n), "image/png", delay=delay) for n in range(count)]


def test_many_inputs_of_one_host_get_at_most_the_default_cap(srv, tiny_classifier):
    # Before: 16 workers sent the host 16 requests at once (peak_waiting 16).
    urls = _images(srv, 16)
    recs = list(classify(urls, tiny_classifier, Limits(**OPEN), workers=16))
    assert sum(r.ok for r in recs) == 16
    assert 1 <= srv.peak_waiting <= 8
    assert Limits().max_per_host == 8


def test_the_cap_holds_for_a_page_and_for_runs_side_by_side(srv, tiny_classifier):
    urls = _images(srv, 12)
    srv.add("/page.html", "<html><body>" + "".join(f'<img src="{u}">' for u in urls) + "</body></html>")
    limits = Limits(**OPEN, max_per_host=2)
    got: dict[int, list] = {}

    def run(k: int, inputs: list[str]) -> None:
        got[k] = list(classify(inputs, tiny_classifier, limits, workers=6))

    threads = [threading.Thread(target=run, args=(0, [srv.url("/page.html")])),
               threading.Thread(target=run, args=(1, urls[:6]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.ok for r in got[0]) == 12 and sum(r.ok for r in got[1]) == 6
    assert srv.peak_waiting <= 2
    assert net._slots.busy("127.0.0.1") == 0  # every slot given back


def test_another_host_is_not_held_up_by_a_busy_one(srv, tiny_classifier):
    with WebServer("127.0.0.2") as other:
        net._slots.take("127.0.0.1", 1, lambda: False, "")  # 127.0.0.1's only slot, held by someone else
        try:
            url = other.add("/a.png", _png(1), "image/png")
            recs = list(classify([url], tiny_classifier, Limits(**OPEN, max_per_host=1)))
        finally:
            net._slots.give("127.0.0.1")
        assert [r.ok for r in recs] == [True]


def test_a_fetch_waiting_for_its_turn_stops_when_given_up(srv):
    url = srv.add("/a.png", _png(1), "image/png")
    cancel = threading.Event()
    net._slots.take("127.0.0.1", 1, lambda: False, "")
    errors: list[str] = []

    def fetch() -> None:
        try:
            net.Fetcher(Limits(**OPEN, max_per_host=1), cancel).fetch(url)
        except net.FetchError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=fetch)
    try:
        thread.start()
        thread.join(0.6)
        assert thread.is_alive()  # waiting for the slot
        cancel.set()
        thread.join(10)
    finally:
        net._slots.give("127.0.0.1")
    assert not thread.is_alive()
    assert errors and "cancelled" in errors[0] and "max_per_host" in errors[0]
    assert srv.hits["/a.png"] == 0


def test_the_wait_for_a_turn_is_not_the_downloads_total_timeout(srv):
    # the host's slot is busy for longer than total_timeout: the download, once its turn comes, still has its own
    url = srv.add("/a.png", _png(1), "image/png")
    net._slots.take("127.0.0.1", 1, lambda: False, "")
    timer = threading.Timer(1.5, net._slots.give, args=("127.0.0.1",))
    timer.start()
    try:
        got = net.fetch(url, Limits(**{**OPEN, "total_timeout": 1.0}, max_per_host=1))
    finally:
        timer.join()
    assert got.data == _png(1)


def test_no_deadlock_with_the_input_timeout(srv, tiny_classifier):
    # one slot; the first input's image never comes: its input_timeout ends it and frees the slot for the second
    stuck = srv.add("/stuck.png", _png(1), "image/png", delay=30)
    fine = srv.add("/fine.png", _png(2), "image/png")
    limits = Limits(**{**OPEN, "read_timeout": 30, "total_timeout": 30}, max_per_host=1, input_timeout=1)
    recs = list(classify([stuck, fine], tiny_classifier, limits, workers=2))
    by_input = {r.input: r for r in recs}
    assert "input_timeout" in (by_input[stuck].error or "")
    assert by_input[fine].ok
    assert net._slots.busy("127.0.0.1") == 0


def test_max_per_host_is_checked():
    with pytest.raises(ValueError, match="max_per_host"):
        Limits(max_per_host=0)


# --- X-Robots-Tag ------------------------------------------------------------------------------

@pytest.mark.parametrize("values,said", [
    (["noai"], "noai"), (["noindex, nofollow"], "noindex"), (["NoImageAI"], "NoImageAI"), (["none"], "none"),
    (["medimg: noimageindex"], "medimg: noimageindex"), (["all", "noimageai"], "noimageai"),
    (["googlebot: noindex"], None), (["nofollow, noarchive"], None), (["unavailable_after: 25 Jun 2030"], None),
    (["noarchive, unavailable_after: 25 Jun 2010 15:00:00 PST, noai"], "noai"),
])
def test_robots_directives(values, said):
    headers = net.httpx.Headers([("X-Robots-Tag", v) for v in values])
    assert net.robots_refusal(headers, "medimg/0.1.0") == said


def test_a_robots_tag_for_the_user_agent_set(srv):
    headers = net.httpx.Headers({"X-Robots-Tag": "acme-curation: noai"})
    assert net.robots_refusal(headers, "acme-curation/1.0 (+mailto:data@acme.org)") == "acme-curation: noai"
    assert net.robots_refusal(headers, "medimg/0.1.0") is None


def _robots_page(srv) -> str:
    srv.add("/free.png", _png(1), "image/png")
    srv.add("/noai.png", _png(2), "image/png", headers={"X-Robots-Tag": "noai"})
    srv.add("/other-bot.png", _png(3), "image/png", headers={"X-Robots-Tag": "googlebot: noindex"})
    srv.add("/sheet.css", "img{}", "text/css", headers={"X-Robots-Tag": "noindex"})  # a sheet is not used itself
    return srv.add("/page.html", '<html><head><link rel=stylesheet href="/sheet.css"></head><body>'
                                 '<img src="/free.png"><img src="/noai.png"><img src="/other-bot.png"></body></html>')


def test_robots_tag_opt_in_skips_a_marked_image_of_a_page(srv, tiny_classifier):
    page = _robots_page(srv)
    plain = list(classify([page], tiny_classifier, Limits(**OPEN)))
    assert sum(r.ok for r in plain) == 3  # the default is unchanged
    recs = list(classify([page], tiny_classifier, Limits(**OPEN, respect_robots_tag=True)))
    assert [r.locator.split()[1] for r in recs if r.ok] == ["#1", "#3"]
    note = next(r for r in recs if "noai.png" in r.locator)
    assert note.skipped and "X-Robots-Tag says noai" in note.error


def test_robots_tag_on_a_page_or_an_image_given_as_the_url(srv, tiny_classifier):
    srv.add("/a.png", _png(1), "image/png")
    page = srv.add("/p.html", '<html><body><img src="/a.png"></body></html>',
                   headers={"X-Robots-Tag": "noimageindex"})
    image = srv.add("/b.png", _png(2), "image/png", headers={"X-Robots-Tag": "medimg: noimageai"})
    recs = list(classify([page, image], tiny_classifier, Limits(**OPEN, respect_robots_tag=True)))
    assert [(r.skipped, r.error) for r in recs] == [
        (True, "not read: its X-Robots-Tag says noimageindex (respect_robots_tag)"),
        (True, "not read: its X-Robots-Tag says medimg: noimageai (respect_robots_tag)")]
    assert srv.hits["/a.png"] == 0


# --- the CLI --------------------------------------------------------------------------------

runner = CliRunner()


def test_user_agent_is_medimg_and_its_version_by_default(srv):
    url = srv.add("/a.png", _png(1), "image/png")
    net.fetch(url, Limits(**OPEN))
    assert srv.headers["/a.png"]["User-Agent"] == f"medimg/{medimg.__version__}"


def test_cli_sets_the_cap_the_robots_tag_and_the_user_agent(srv, tiny_model_dir, tmp_path):
    page = _robots_page(srv)
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["classify", page, "--allow-private", "--model", str(tiny_model_dir), "-o", str(out),
                              "--full", "--show-skipped", "--respect-robots-tag", "--max-per-host", "1",
                              "--user-agent", "acme-curation/1.0 (+mailto:data@acme.org)"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(row["error"] is None for row in rows) == 2
    assert any("X-Robots-Tag says noai" in (row["error"] or "") for row in rows)
    assert srv.headers["/free.png"]["User-Agent"] == "acme-curation/1.0 (+mailto:data@acme.org)"
    assert srv.peak_waiting <= 1
    res = runner.invoke(app, ["classify", page, "--allow-private", "--user-agent", " "])
    assert res.exit_code == 2


def test_extract_writes_no_png_of_a_marked_image(srv, tmp_path):
    page = _robots_page(srv)
    out = tmp_path / "png"
    res = runner.invoke(app, ["extract", page, "--allow-private", "--respect-robots-tag", "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(list(out.glob("*.png"))) == 2
    marked = [row for row in rows if "noai.png" in json.dumps(row)]
    assert marked and all("X-Robots-Tag says noai" in json.dumps(row) for row in marked)


@pytest.mark.browser
@pytest.mark.timeout(90)
def test_robots_tag_holds_for_the_images_a_render_loaded(srv):
    from test_browser import RENDER, requires_browser  # noqa: F401  (skips without Chromium)
    from medimg.sources import ItemError, open_input
    from medimg.sources.browser import available

    if available():
        pytest.skip(available())
    page = _robots_page(srv)
    items = list(open_input(page, Limits(**RENDER, respect_robots_tag=True)))
    notes = [i for i in items if isinstance(i, ItemError) and "noai.png" in i.locator]
    assert notes and notes[0].skipped and "X-Robots-Tag says noai" in notes[0].error
    assert sum(not isinstance(i, ItemError) for i in items) == 2
