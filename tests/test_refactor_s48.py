"""Leftovers of the code review (session 48): one URL-shortening helper, --resume reading its file's head once."""

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.sources import net, web, web_fetch
from words import flat

runner = CliRunner()


def _classify(tiny_model_dir, *args):
    return runner.invoke(app, ["classify", *map(str, args), "--model", str(tiny_model_dir)])


def test_one_helper_shortens_urls_for_records_and_errors():
    assert web_fetch.short_url is net.short_url is web.short_url
    data = "data:image/png;base64," + "A" * 1000
    assert net.short_url(data) == "data:image/png;base64,… (1022 characters)"
    long = "http://127.0.0.1/a.png?" + "q" * 1000
    assert net.short_url(long) == long  # a locator keeps its URL whole
    assert net.short_url(long, 200) == long[:200] + "… (1,023 characters)"
    assert net.short_url("http://127.0.0.1/a.png", 200) == "http://127.0.0.1/a.png"
    with pytest.raises(net.FetchError, match=r"invalid URL 'http://127\.0\.0\.1:99999/a\.png'"):
        net.check_url("http://127.0.0.1:99999/a.png", allow_private=True)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (64, 64), (120, 30, 200)).save(path)
    return path


def test_resume_of_a_csv_whose_first_field_is_over_the_csv_limit_is_refused_plainly(tmp_path, tiny_model_dir, image):
    """A first line of 200,000 characters with no comma: `_csv.Error: field larger than field limit` came out as a
    traceback (csv_header's read was outside the checks)."""
    out = tmp_path / "big.csv"
    out.write_text("x" * 200_000 + "\n")
    res = _classify(tiny_model_dir, image, "-o", out, "--resume")
    assert res.exit_code == 2 and "is not a medimg CSV" in flat(res.output), res.output[-600:]
    assert out.stat().st_size == 200_001


@pytest.mark.parametrize("text", ['{"patients": [1, 2, 3]}', "\x00" * 5000, "plain words"])
def test_resume_of_someone_elses_one_line_file_with_no_line_end_keeps_it(tmp_path, tiny_model_dir, image, text):
    """A JSON file `json.dump` wrote (one line, no line end) given as the output to carry on: its only line was
    taken for a row a stopped run cut off, and cut, leaving the file empty; then the run's rows went in."""
    out = tmp_path / "results.jsonl"
    out.write_text(text)
    res = _classify(tiny_model_dir, image, "-o", out, "--resume")
    assert res.exit_code == 2 and "is not a medimg JSONL file" in flat(res.output), res.output[-600:]
    assert out.read_text() == text


@pytest.mark.parametrize("cut", [3, 40])
def test_resume_of_a_medimg_jsonl_whose_only_row_was_cut_off_still_carries_on(tmp_path, tiny_model_dir, image, cut):
    out = tmp_path / "run.jsonl"
    assert _classify(tiny_model_dir, image, "-o", out).exit_code == 0
    whole = out.read_bytes()
    out.write_bytes(whole[:cut])  # a run stopped while writing its first row
    res = _classify(tiny_model_dir, image, "-o", out, "--resume")
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == whole
