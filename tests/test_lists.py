"""Input lists: text files and tables (CSV, TSV, JSON Lines, Parquet) with a column of inputs."""

import json
import logging
import os

import pytest
from typer.testing import CliRunner

from medimg.cli import app
from medimg.lists import open_list
from words import flat, unspaced
from PIL import Image

runner = CliRunner()


def test_text_list_keeps_names_and_skips_comments(tmp_path):
    p = tmp_path / "list.txt"
    p.write_text("# a comment\n  https://example.org/a.png  \n\nscan one.dcm\n")
    assert list(open_list(str(p))) == ["https://example.org/a.png", "scan one.dcm"]
    with pytest.raises(ValueError, match="--column is for tables"):
        open_list(str(p), "url")


def test_csv_takes_the_url_column_by_default_and_passes_over_blank_cells(tmp_path):
    p = tmp_path / "list.csv"
    p.write_text("\ufeffid,url,caption\n1,https://example.org/a.png,\"a, b\"\n2,,none\n3, https://example.org/b.jpg ,x\n"
                 "4\n", encoding="utf-8")  # a BOM, as spreadsheets write; a short row
    assert list(open_list(str(p))) == ["https://example.org/a.png", "https://example.org/b.jpg"]
    assert list(open_list(str(p), "caption")) == ["a, b", "none", "x"]


def test_tsv_and_a_chosen_column(tmp_path):
    p = tmp_path / "list.tsv"
    p.write_text("key\tfile path\nk1\t/data/scan 1.png\n")
    assert list(open_list(str(p), "file path")) == ["/data/scan 1.png"]


def test_a_missing_column_is_an_error_naming_the_columns_there(tmp_path):
    p = tmp_path / "list.csv"
    p.write_text("id,link\n1,https://example.org/a.png\n")
    with pytest.raises(ValueError, match="give --column.*'id', 'link'"):
        open_list(str(p))
    with pytest.raises(ValueError, match="no column 'URL'"):
        open_list(str(p), "URL")


def test_a_cell_longer_than_csvs_default_limit_is_read(tmp_path):
    long = "data:image/png;base64," + "A" * 200_000
    p = tmp_path / "list.csv"
    p.write_text(f'url\n"{long}"\nhttps://example.org/b.png\n')
    assert list(open_list(str(p))) == [long, "https://example.org/b.png"]


def test_empty_and_header_only_tables_give_nothing(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "head.csv").write_text("url\n")
    (tmp_path / "empty.jsonl").write_text("\n")
    for name in ("empty.csv", "head.csv", "empty.jsonl"):
        assert list(open_list(str(tmp_path / name))) == []


def test_jsonl_key_from_the_first_object_and_a_bad_line_is_named_and_passed_over(tmp_path, caplog):
    p = tmp_path / "list.jsonl"
    p.write_text(json.dumps({"path": "a.png", "n": 1}) + "\n{not json\n" + json.dumps({"path": "b.png"}) + "\n"
                 + json.dumps({"n": 3}) + "\n" + json.dumps([1, 2]) + "\n")
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):
        assert list(open_list(str(p))) == ["a.png", "b.png"]
    assert "line 2" in caplog.text and "line 5" in caplog.text
    (tmp_path / "bad.jsonl").write_text("[1]\n")
    with pytest.raises(ValueError, match="line 1: not a JSON object"):
        open_list(str(tmp_path / "bad.jsonl"))


def test_parquet_column_read_in_row_groups(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow (scale extra) is not installed")
    import pyarrow.parquet as pq

    from medimg import lists

    urls = [f"https://example.org/{i}.png" for i in range(lists.ROW_GROUP * 2 + 5)]
    table = pa.table({"id": list(range(len(urls))), "url": [None] + urls[1:]})
    p = tmp_path / "list.parquet"
    pq.write_table(table, p, row_group_size=500)
    assert list(open_list(str(p))) == urls[1:]
    with pytest.raises(ValueError, match="no column 'link'"):
        open_list(str(p), "link")
    (tmp_path / "fake.parquet").write_text("url\nx\n")
    with pytest.raises(ValueError, match="not a Parquet file"):
        open_list(str(tmp_path / "fake.parquet"))


def damaged_parquet(p, entries: list[str]):
    """A Parquet list of `entries` in row groups of 2 × ROW_GROUP whose second row group is damaged."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow (scale extra) is not installed")
    import pyarrow.parquet as pq

    from medimg import lists

    pq.write_table(pa.table({"url": entries}), p, row_group_size=lists.ROW_GROUP * 2, compression="none",
                   use_dictionary=False)
    offset = pq.ParquetFile(p).metadata.row_group(1).column(0).data_page_offset
    data = bytearray(p.read_bytes())
    data[offset:offset + 40] = b"\xff" * 40
    p.write_bytes(bytes(data))
    return p


def test_a_list_that_cannot_be_read_on_ends_there_with_an_error(tmp_path, caplog):
    """A damaged row group half-way: the entries before it, then one error naming the list (before, the
    exception went into the run as an "internal error" row with no input)."""
    from medimg import lists

    urls = [f"https://example.org/{i}.png" for i in range(lists.ROW_GROUP * 6)]
    p = damaged_parquet(tmp_path / "list.parquet", urls)
    with caplog.at_level(logging.ERROR, logger="medimg.lists"):
        assert list(open_list(str(p))) == urls[:lists.ROW_GROUP * 2]
    assert f"list.parquet: could not be read past entry {lists.ROW_GROUP * 2} (" in caplog.text
    assert "the entries after it were not done" in caplog.text
    with pytest.raises(ValueError, match=f"could not be read past entry {lists.ROW_GROUP * 2}"):
        list(open_list(str(p), strict=True))  # scale reads its list whole before it starts: it refuses


def test_a_list_cut_short_fails_the_run_that_reads_it(tmp_path, tiny_model_dir):
    """classify and extract do what the list gave and exit 1 naming the cut (exit 0 before, with an error
    logged or an "internal error" row); scale, which reads its list before it starts, refuses it (the first
    session-26 version ran the part it read and exited 0)."""
    from PIL import Image

    from medimg import lists

    Image.new("RGB", (40, 30), (200, 0, 0)).save(tmp_path / "a.png")
    names = [str(tmp_path / "a.png")] + [str(tmp_path / f"gone{i}.png") for i in range(lists.ROW_GROUP * 4)]
    p = damaged_parquet(tmp_path / "list.parquet", names)
    says = f"list.parquet: could not be read past entry {lists.ROW_GROUP * 2} ("
    for command in (["classify", "--model", str(tiny_model_dir), "--out", str(tmp_path / "r.jsonl")],
                    ["extract", "--out", str(tmp_path / "pngs")]):
        res = CliRunner().invoke(app, [*command, "--inputs-from", str(p)])
        assert res.exit_code == 1 and unspaced(says) in unspaced(res.output), res.output
        assert unspaced("the entries after it were not done") in unspaced(res.output)
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == lists.ROW_GROUP * 2  # what it could read
    pytest.importorskip("ray", reason="scale needs the scale extra")
    res = CliRunner().invoke(app, ["scale", str(p), "--out", str(tmp_path / "job"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and unspaced(says) in unspaced(res.output), res.output  # wrapped at any word
    assert not [f for f in (tmp_path / "job").iterdir()]  # nothing run, and its list file gone


def test_classify_and_extract_read_a_csv_list(tmp_path, tiny_model_dir):
    from PIL import Image

    names = []
    for i, c in enumerate([(200, 0, 0), (0, 200, 0)]):
        p = tmp_path / f"scan {i}.png"
        Image.new("RGB", (80, 60), c).save(p)
        names.append(str(p))
    listing = tmp_path / "batch.csv"
    listing.write_text("study,scan\n" + "".join(f"s{i},{n}\n" for i, n in enumerate(names)))
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["classify", "--inputs-from", str(listing), "--column", "scan",
                            "--model", str(tiny_model_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert [json.loads(line)["input"] for line in out.read_text().splitlines()] == names
    r = runner.invoke(app, ["extract", "--inputs-from", str(listing), "--column", "scan", "--out", str(tmp_path / "x")])
    assert r.exit_code == 0 and (tmp_path / "x" / "000002.png").exists(), r.output
    r = runner.invoke(app, ["classify", "--inputs-from", str(listing), "--model", str(tiny_model_dir)])
    assert r.exit_code == 2 and "give --column" in flat(r.output)
    r = runner.invoke(app, ["classify", names[0], "--column", "scan", "--model", str(tiny_model_dir)])
    assert r.exit_code == 2 and "--inputs-from" in flat(r.output)


def test_csv_quirks_blank_lines_before_the_header_no_header_and_header_case(tmp_path, caplog):
    (tmp_path / "blank.csv").write_text("\n\n,\nid,url\n1,https://example.org/a.png\n")
    assert list(open_list(str(tmp_path / "blank.csv"))) == ["https://example.org/a.png"]
    (tmp_path / "files.csv").write_text("/data/a.png\n/data/b, c.png\n\"/data/q.png\"\n")  # find … > files.csv
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):  # raw lines: a comma is part of a name
        assert list(open_list(str(tmp_path / "files.csv"))) == ["/data/a.png", "/data/b, c.png", "/data/q.png"]
    assert "without a header" in caplog.text
    (tmp_path / "upper.csv").write_text("ID,URL\n1,https://example.org/a.png\n")
    assert list(open_list(str(tmp_path / "upper.csv"))) == ["https://example.org/a.png"]


def test_a_given_jsonl_key_is_looked_up_in_every_line_and_odd_cells_are_passed_over(tmp_path, caplog):
    p = tmp_path / "list.jsonl"
    rows = [{"id": 0}, {"id": 1, "url": "https://example.org/a.png"}, {"url": float("nan")}, {"url": ["x", "y"]},
            {"url": {"u": 1}}, {"url": "https://example.org/b.png"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):
        assert list(open_list(str(p), "url")) == ["https://example.org/a.png", "https://example.org/b.png"]
    assert "holds a list" in caplog.text and "holds a dict" in caplog.text
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):
        assert list(open_list(str(p), "link")) == []
    assert "no line has a value for 'link'" in caplog.text


def test_a_parquet_column_of_lists_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow (scale extra) is not installed")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"url": [["a.png"], ["b.png"]]}), tmp_path / "nested.parquet")
    with pytest.raises(ValueError, match="column 'url' holds list<"):
        open_list(str(tmp_path / "nested.parquet"))


def test_rows_name_the_list_entry_they_came_from(tmp_path, tiny_model_dir, monkeypatch):
    """A list's entries (a folder, a zip, a relative path) are not what the rows' `input` says: `source` in
    `classify --full` rows and in `extract`'s manifest is the entry as written, to join the list back on."""
    import csv
    import zipfile

    from PIL import Image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "files" / "sub").mkdir(parents=True)
    Image.new("RGB", (80, 60), (200, 0, 0)).save(tmp_path / "files" / "sub" / "e.png")
    Image.new("RGB", (80, 60), (0, 200, 0)).save(tmp_path / "files" / "a.png")
    with zipfile.ZipFile(tmp_path / "arch.zip", "w") as zf:
        zf.write(tmp_path / "files" / "a.png", "a.png")
    (tmp_path / "join.csv").write_text("id,path\n1,./files/sub\n2,arch.zip\n3,./files/a.png\n")
    want = {"./files/sub": "1", "arch.zip": "2", "./files/a.png": "3"}
    r = runner.invoke(app, ["classify", "--inputs-from", "join.csv", "--model", str(tiny_model_dir), "--full",
                            "--out", "out.jsonl"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["input"], want[r["source"]]) for r in rows] == [
        ("files/sub/e.png", "1"), ("arch.zip:a.png", "2"), ("files/a.png", "3")]
    r = runner.invoke(app, ["classify", "--inputs-from", "join.csv", "--model", str(tiny_model_dir), "--full",
                            "--out", "out.csv"])
    assert [row["source"] for row in csv.DictReader(open(tmp_path / "out.csv"))] == list(want)
    r = runner.invoke(app, ["extract", "--inputs-from", "join.csv", "--out", "x"])
    assert r.exit_code == 0, r.output
    manifest = [json.loads(line) for line in (tmp_path / "x" / "manifest.jsonl").read_text().splitlines()]
    assert [m["source"] for m in manifest] == list(want)


def test_an_entry_given_twice_is_done_once(tmp_path, tiny_model_dir):
    """As in scale, and as a resumed run would have it: the second mention of an input adds no rows."""
    from PIL import Image

    p = tmp_path / "a.png"
    Image.new("RGB", (80, 60), (200, 0, 0)).save(p)
    q = tmp_path / "b.png"
    Image.new("RGB", (80, 60), (0, 200, 0)).save(q)
    (tmp_path / "list.txt").write_text(f"{p}\n{q}\n{p}\n{tmp_path}/./a.png\n{tmp_path}//b.png\n")
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["classify", str(q), "--inputs-from", str(tmp_path / "list.txt"),
                            "--model", str(tiny_model_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    # spelled otherwise, the same path is the same input: its rows would carry the same name
    assert [json.loads(line)["input"] for line in out.read_text().splitlines()] == [str(q), str(p)]


def test_once_keeps_the_first_spelling_of_each_input():
    """classify, extract and scale alike: one path however spelled, one URL; different files and URLs stay."""
    from medimg.lists import once

    here = os.path.abspath("a.png")
    given = ["a.png", "./a.png", here, "scans//b.png", "scans/b.png", "/abs/a.png", "/abs/x/../a.png",
             "http://x.org/a.png", "http://x.org/a.png", "http://x.org/./a.png", "HTTP://X.org:80/a.png#top",
             "http://x.org/b/../a.png?", "http://x.org:8080/a.png", "https://x.org/a.png", "http://x.org/a.png?v=1",
             "http://x.org/A.png", "http://x.org", "http://X.ORG/"]
    assert list(once(given)) == ["a.png", "scans//b.png", "/abs/a.png", "/abs/x/../a.png",  # x may be a link
                                 "http://x.org/a.png", "http://x.org:8080/a.png", "https://x.org/a.png",
                                 "http://x.org/a.png?v=1", "http://x.org/A.png", "http://x.org"]


def test_a_rendered_page_keeps_its_fragments_apart():
    """A page's script may route on `#/…`: rendered, each fragment is its own page; read statically, one."""
    from medimg.lists import once

    given = ["http://x.org/app#/a", "http://x.org/app#/b", "http://x.org/app#/a", "HTTP://x.org/app#/b"]
    assert list(once(given, fragments=True)) == ["http://x.org/app#/a", "http://x.org/app#/b"]
    assert list(once(given)) == ["http://x.org/app#/a"]
    from medimg.cli import all_inputs  # classify's and extract's inputs: --render keeps them apart

    assert list(all_inputs(given, None, render=True)[0]) == ["http://x.org/app#/a", "http://x.org/app#/b"]
    assert list(all_inputs(given, None)[0]) == ["http://x.org/app#/a"]


def test_a_url_spelled_two_ways_is_fetched_once(tmp_path, tiny_model_dir):
    """The same image listed as `…/a.png#x` and `HTTP://…:port/./a.png` is one request and one row."""
    import io

    from PIL import Image
    from webserver import WebServer

    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 0, 0)).save(buf, "PNG")
    with WebServer() as srv:
        srv.add("/a.png", buf.getvalue(), "image/png")
        spellings = [srv.url("/a.png"), srv.url("/a.png") + "#x", f"HTTP://127.0.0.1:{srv.port}/./a.png?"]
        (tmp_path / "list.txt").write_text("\n".join(spellings) + "\n")
        out = tmp_path / "out.jsonl"
        r = runner.invoke(app, ["classify", "--inputs-from", str(tmp_path / "list.txt"), "--allow-private",
                                "--model", str(tiny_model_dir), "--out", str(out)])
        assert r.exit_code == 0, r.output
        assert srv.hits["/a.png"] == 1
    assert [json.loads(line)["input"] for line in out.read_text().splitlines()] == [srv.url("/a.png")]


def test_without_column_url_is_taken_before_input_and_path_whatever_the_order_of_the_header(tmp_path):
    """The default column is the first of url, input, path, … the table has (COLUMNS' order, as --column's
    help says), not the first of them in the header."""
    p = tmp_path / "list.csv"
    p.write_text("path,input,url\nscan1.png,a.png,https://example.org/a.png\nscan2.png,b.png,https://example.org/b.png\n")
    assert list(open_list(str(p))) == ["https://example.org/a.png", "https://example.org/b.png"]
    p.write_text("path,input\nscan1.png,a.png\n")
    assert list(open_list(str(p))) == ["a.png"]


def test_a_csv_line_that_cannot_be_parsed_is_named_and_the_lines_after_it_are_still_read(tmp_path, caplog):
    """A line past the field-size limit is passed over with a warning naming it; the list goes on."""
    p = tmp_path / "list.csv"
    p.write_text("url\nhttps://example.org/a.png\nhttps://example.org/" + "x" * (1 << 20 | 10)
                 + "\nhttps://example.org/b.png\n")
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):
        assert list(open_list(str(p))) == ["https://example.org/a.png", "https://example.org/b.png"]
    assert "line 3: passed over" in caplog.text


def test_the_quick_reading_of_plain_urls_gives_the_keys_httpx_gives():
    """url_key reads most URLs with a regular expression; over 40,000 spellings mixing case, ports, empty
    paths and queries, dot segments, escapes, odd hosts and fragments, it agrees with httpx's parse."""
    import random

    from medimg.lists import _PLAIN, _parsed_key, url_key

    rnd = random.Random(7)
    hosts = ["example.org", "EXAMPLE.org", "a-b.c", "xn--bcher-kva.example", "127.0.0.1", "127.1", "0x7f.1",
             "1.2.3.4.5", "999.1.1.1", "01.02.03.04", "255.255.255.255", "10.0.0.01", "a", "foo.", "a..b", "-a.b",
             "a-.b", "[::1]", "user@x.org", "é.org"]
    segments = ["a", "b.png", "..", ".", ".x", "x.", "%20", "%2e", "%41", "~u", "a:b", "@", "!$&'()*+,;=", "", "A",
                "é", "x y", "a%zz"]
    queries = ["", "?", "?a=1", "?a=1&b=2", "?/x?y", "?a b", "?%41", "?é", "?.."]
    ports = ["", ":80", ":443", ":8080", ":0", ":65535", ":65536", ":080"]
    plain = 0
    for _ in range(20000):
        url = (rnd.choice(["http", "https", "HTTP", "Https"]) + "://" + rnd.choice(hosts) + rnd.choice(ports)
               + "".join("/" + rnd.choice(segments) for _ in range(rnd.randint(0, 4))) + rnd.choice(queries)
               + rnd.choice(["", "", "#top", "#"]))
        plain += bool(_PLAIN.fullmatch(url))
        for fragment in (False, True):
            assert url_key(url, fragment) == _parsed_key(url, fragment), url
    assert plain > 1000  # the quick reading was taken often enough to be tested


def test_once_many_keeps_the_first_spelling_across_chunks():
    """The bulk form of `once` (for `scale`) gives the same entries as `once`, in order, whatever the chunk."""
    from medimg.lists import once, once_many

    given = ["http://x.org/a", "a.png", "HTTP://X.org:80/a", "./a.png", "http://x.org/b#top", "b.png",
             "http://x.org/b", "b.png", "c.png"] * 3
    for chunk in (1, 2, 4, 100):
        parts = list(once_many(given, chunk=chunk))
        assert [e for p in parts for e in p] == list(once(given)) == ["http://x.org/a", "a.png",
                                                                      "http://x.org/b#top", "b.png", "c.png"]
        assert all(len(p) <= chunk for p in parts)


def test_a_keyset_holds_what_was_added_over_many_merges():
    """KeySet keeps each key once, says which keys of a batch are new (a key twice in one batch is new once),
    and after many batches (runs merged) holds exactly the keys added, names that are not UTF-8 included."""
    import random

    from medimg.keyset import KeySet

    rnd = random.Random(3)
    ks, ref = KeySet(), set()
    for _ in range(60):
        batch = [f"k{rnd.randrange(3000)}" for _ in range(rnd.randrange(1, 120))] + ["bad\udcff"]
        new = ks.add_new(batch)
        expect, seen = [], set(ref)
        for k in batch:
            expect.append(k not in seen)
            seen.add(k)
        assert new.tolist() == expect
        ref |= set(batch)
    assert len(ks) == len(ref) and len(ks.runs) < 12
    probe = sorted(ref) + [f"k{i}" for i in range(3000, 3100)]
    assert ks.contains(probe).tolist() == [k in ref for k in probe]
    assert "bad\udcff" in ks and "bad\udcfe" not in ks and "k" not in KeySet()


def test_table_rows_without_an_input_are_counted_in_one_warning_with_their_numbers(tmp_path, caplog):
    """Rows whose column is blank, null or missing are passed over, but said: how many, and the first few row
    numbers, so results can be joined back to the list (they vanished without a word before). Blank lines are
    no rows."""
    csv_list = tmp_path / "l.csv"
    csv_list.write_text("path,x\na.png,1\n,2\n\nb.png,3,extra\nc.png\n" + "".join(f",{i}\n" for i in range(6)))
    jsonl = tmp_path / "l.jsonl"
    jsonl.write_text('{"path":"a.png"}\n{"file":"b.png"}\n{"path": null}\n\n{"path":""}\n{"path":"c.png"}\n')
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):
        assert list(open_list(str(csv_list))) == ["a.png", "b.png", "c.png"]
        assert list(open_list(str(jsonl))) == ["a.png", "c.png"]
    said = flat(caplog.text)
    assert "l.csv: 7 lines with no value in 'path' passed over (lines 3, 7, 8, 9, 10, …)" in said, said
    assert "l.jsonl: 3 lines with no value in 'path' passed over (lines 2, 3, 5)" in said, said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):
        assert list(open_list(str(csv_list)))[:1] == ["a.png"]  # read to its end: said once
        entries = iter(open_list(str(csv_list)))
        next(entries)
        entries.close()  # a run stopped early says nothing of rows it never read
    assert flat(caplog.text).count("with no value") == 1
    pa = pytest.importorskip("pyarrow", reason="pyarrow (scale extra) is not installed")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"url": ["https://x.org/a.png", None, "", "https://x.org/b.png"]}), tmp_path / "l.parquet")
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):
        assert len(list(open_list(str(tmp_path / "l.parquet")))) == 2
    assert "l.parquet: 2 rows with no value in 'url' passed over (rows 2, 3)" in flat(caplog.text)


def test_a_semicolon_separated_csv_from_a_spreadsheet_is_read_by_its_header(tmp_path):
    """Spreadsheets where the decimal mark is a comma save CSV with `;`: its header names the column (BOM and CRLF
    too); a one-column list whose names hold `;` is still one input per line."""
    (tmp_path / "excel.csv").write_bytes(b'\xef\xbb\xbfPath;Patient\r\nscans/a.dcm;1\r\n"b;c.png";2\r\n')
    assert list(open_list(str(tmp_path / "excel.csv"))) == ["scans/a.dcm", "b;c.png"]
    (tmp_path / "named.csv").write_text("name;x\na.png;1\n")
    assert list(open_list(str(tmp_path / "named.csv"), "name")) == ["a.png"]
    (tmp_path / "comma.csv").write_text("path,note\na;1.png,x\n")  # commas first: `;` is part of the name
    assert list(open_list(str(tmp_path / "comma.csv"))) == ["a;1.png"]
    (tmp_path / "names.csv").write_text("a;b.png\nc.png\n")
    assert list(open_list(str(tmp_path / "names.csv"))) == ["a;b.png", "c.png"]


def test_the_quick_reading_leaves_an_address_with_a_leading_zero_in_any_part_to_httpx():
    """An IPv4 address with a zero before a digit in any of its four parts is not one httpx reads: the quick
    reading must not normalise it either (the first three parts as the last)."""
    from medimg.lists import _parsed_key, url_key

    for host in ("01.2.3.4", "1.02.3.4", "1.2.03.4", "1.2.3.04", "00.1.2.3", "10.010.1.1"):
        for url in (f"http://{host}", f"HTTP://{host}:80/", f"http://{host}/a?", f"https://{host}:443/x/y?q=1"):
            assert url_key(url) == _parsed_key(url, False), url


def test_once_many_keeps_fragments_apart_when_asked_as_once_does():
    """once_many is `once` in bulk, its `fragments` too: a rendered page's `#/a` and `#/b` stay two inputs."""
    from medimg.lists import once, once_many

    given = ["http://x.org/app#/a", "http://x.org/app#/b", "HTTP://x.org/app#/a", "http://x.org/app"] * 2
    for chunk in (1, 3, 100):
        got = [e for part in once_many(given, fragments=True, chunk=chunk) for e in part]
        assert got == list(once(given, fragments=True)) == ["http://x.org/app#/a", "http://x.org/app#/b",
                                                            "http://x.org/app"]


def _three_pngs(root):
    from PIL import Image

    for i, name in enumerate(("a.png", "sub/b.png", "sub/deeper/c.png")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (80, 80), (60 * i, 10, 10)).save(root / name)


@pytest.mark.parametrize("given", [["a.png", "."], [".", "a.png"], ["sub/deeper", "."], [".", "sub"],
                                   ["./sub/", "sub/b.png", "."]])
def test_a_file_inside_a_folder_given_too_is_classified_once(tmp_path, tiny_model_dir, monkeypatch, given):
    """`classify scans/ scans/a.png` (either order, or a folder inside another given): one row per file, where
    it comes first."""
    monkeypatch.chdir(tmp_path)
    _three_pngs(tmp_path)
    res = runner.invoke(app, ["classify", *given, "--model", str(tiny_model_dir), "--format", "jsonl"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert sorted(os.path.normpath(r["input"]) for r in rows) == ["a.png", "sub/b.png", "sub/deeper/c.png"], rows


def test_a_file_inside_a_folder_given_too_is_extracted_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _three_pngs(tmp_path / "in")
    res = runner.invoke(app, ["extract", "in/sub/b.png", "in", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["input"] for r in rows) == ["in/a.png", "in/sub/b.png", "in/sub/deeper/c.png"], rows


def test_overlaps_pass_over_files_on_disk_only_and_keep_links_apart(tmp_path, monkeypatch):
    """An archive's member is no file in the folder; another name for a folder (a link) is another input, as
    for inputs given twice; URLs are never folders."""
    from medimg.lists import Overlaps

    monkeypatch.chdir(tmp_path)
    _three_pngs(tmp_path)
    (tmp_path / "pack.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    os.symlink("sub", tmp_path / "link")
    seen = Overlaps()
    got = []
    for entry in seen.entries(["sub", "sub/b.png", "http://h/sub/b.png", "link", "pack.zip", "a.png"]):
        got.append(entry)
        assert not seen.inside(entry)  # an entry never passes itself over
    assert got == ["sub", "http://h/sub/b.png", "link", "pack.zip", "a.png"]
    assert seen.inside("./sub/deeper/c.png") and seen.inside(str(tmp_path / "a.png"))
    assert not seen.inside("sub:b.png") and not seen.inside("pack.zip:sub/b.png")
    assert seen.inside("link/b.png")  # the link was given itself
    assert not Overlaps().inside("a.png") and not seen.inside("http://h/sub/b.png")
    assert not seen.inside("sub")  # a folder's own note (empty, unreadable) is still said
    twice = Overlaps(fragments=True)  # as `once`: an entry given twice, however spelled, is given once
    assert list(twice.entries(["a.png", "./a.png", "http://H/p#1", "http://h/p#2", "http://h:80/p#1"])) == \
        ["a.png", "http://H/p#1", "http://h/p#2"]


def test_a_member_of_an_archive_inside_a_folder_given_before_is_not_passed_over(tmp_path, monkeypatch):
    """`inside` passes over files on disk only. An archive's member ("sub/pack.zip:x.png") is read when its
    archive is, after the folder's entry is done: it is no file of the folder and must not be passed over."""
    from medimg.lists import Overlaps

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (80, 80), (10, 20, 30)).save(tmp_path / "sub" / "b.png")
    (tmp_path / "sub" / "pack.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    seen = Overlaps()
    assert list(seen.entries(["sub", "other.png"])) == ["sub", "other.png"]
    assert seen.inside("sub/b.png")  # a file of the folder given before: passed over
    assert not seen.inside("sub/pack.zip:x.png")
    assert not seen.inside(os.path.join(str(tmp_path), "sub", "pack.zip:deeper/x.png"))
