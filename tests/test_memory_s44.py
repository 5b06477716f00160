"""Memory of big runs (s44): what a --resume of a long output holds per input already written."""

import tracemalloc

from medimg.output import Spellings


def _bytes_per_name(make, names) -> float:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = make(names)
        return (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()


def test_resume_keeps_little_per_input_already_written():
    """A million-row CSV carried on with --resume held ~0.5 GB more: each name's file or URL key was kept as
    text beside the name (~190 bytes a name). The keys are 16-byte digests now."""
    files = [f"scans/study{i // 100:04d}/image{i:06d}.png" for i in range(20000)]
    urls = [f"https://example.org/images/{i:06d}.jpg" for i in range(20000)]
    for names in (files, urls):  # beyond what a plain set of the names takes (the names are the caller's)
        assert _bytes_per_name(Spellings, names) < _bytes_per_name(set, names) + 40


def test_resume_spellings_still_match_as_before(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = Spellings([str(tmp_path / "scans" / "a.png"), "https://h/p?a=1"])
    assert "scans/a.png" in done and "./scans//a.png" in done and "scans/b.png" not in done
    assert "HTTPS://H:443/./p?a=1" in done and "https://h/p?a=2" not in done
    assert "https://h/scans/a.png" not in done  # a file's key never matches a URL's
    done.add("later.png")
    assert "./later.png" in done and len(done) == 3
