"""End-to-end pipeline throughput vs decode+resize alone, measured in the same run.

Usage: python benchmarks/bench_pipeline.py [--n 600] [--data ../shared/data] [--model DIR]
Takes corpus images (or generated ones when the corpus is absent), writes them as real JPEG/PNG
files of varied size, and times: (1) baseline — Pillow decode + model preprocessing of every
file, in one thread; (2) the full pipeline (sources → batched ONNX inference → records), as shipped
(files decoded by default_workers() threads, big JPEGs at a reduced DCT scale), (3) the same with one
decoding thread and (4) with every image decoded in full (`decode_side=0`); then all three again on 20
camera-size JPEGs (against the baseline on them), and once more with the 600 files in one zip archive (stored, as
image files are already compressed); and the command line, `medimg classify --inputs-from LIST -o out.jsonl` of the
same files in a fresh process with its defaults (start-up, model load and writing included), and of the first
file alone (about the start-up). Each is run twice, by turns with the others and the baseline, and its faster run
kept. Prints img/s and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_files(n: int, data: Path, folder: Path) -> list[Path]:
    rng = random.Random(0)
    sources = sorted(data.rglob("*.webp")) if data.exists() else []
    rng.shuffle(sources)
    out = []
    for i in range(n):
        if sources:
            img = Image.open(sources[i % len(sources)]).convert("RGB")
        else:
            img = Image.effect_noise((256, 256), 40).convert("RGB")
        side = rng.choice([256, 512, 1024])
        img = img.resize((side, int(side * img.height / max(img.width, 1)) or side))
        p = folder / f"{i:05d}.{'jpg' if i % 2 else 'png'}"
        img.save(p, quality=85) if p.suffix == ".jpg" else img.save(p)
        out.append(p)
    return out


def make_big(n: int, data: Path, folder: Path) -> list[Path]:
    """Camera-size JPEGs (4000×3000, 12 MP): where decoding at a reduced DCT scale pays most."""
    rng = random.Random(1)
    sources = sorted(data.glob("photo/*/*.webp")) if data.exists() else []
    out = []
    for i in range(n):
        img = (Image.open(rng.choice(sources)).convert("RGB") if sources
               else Image.effect_noise((256, 256), 40).convert("RGB"))
        p = folder / f"big{i:03d}.jpg"
        img.resize((4000, 3000), Image.BICUBIC).save(p, quality=90)
        out.append(p)
    return out


def cli(listed: Path, out: Path, model: Path | None) -> tuple[float, int]:
    """Seconds for `medimg classify --inputs-from listed -o out` in a fresh process, and the records it wrote."""
    cmd = [sys.executable, "-m", "medimg.cli", "classify", "--inputs-from", str(listed), "-o", str(out)]
    if model:
        cmd += ["--model", str(model)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    took = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"medimg classify failed: {done.stderr[-2000:]}")
    out.replace(out.with_suffix(".done"))  # the next run writes a new file, not one that replaces this
    return took, len(out.with_suffix(".done").read_text().splitlines())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()

    from medimg.model import Classifier
    from medimg.model.preprocess import prepare
    from medimg.pipeline import classify, default_workers
    from medimg.sources import Limits

    clf = Classifier.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(args.n, args.data, Path(tmp))

        def baseline(which: list[Path]) -> float:
            t0 = time.perf_counter()
            for p in which:
                with Image.open(p) as im:
                    prepare(im, clf.input_size)
            return time.perf_counter() - t0

        big = make_big(20, args.data, Path(tmp))
        archive = Path(tmp) / "all.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
            for p in files:
                zf.write(p, f"images/{p.name}")
        listed, first = Path(tmp) / "list.txt", Path(tmp) / "first.txt"
        listed.write_text("".join(f"{p}\n" for p in files))
        first.write_text(f"{files[0]}\n")
        runs: dict[str, float] = {}
        configs = (("pipeline", None, None), ("pipeline, 1 decoding thread", None, 1),
                   ("pipeline, full decode", Limits(decode_side=0), None))
        base = base_big = float("inf")
        for _ in range(2):  # alternate them, the baselines too, keep each one's best
            base = min(base, baseline(files))
            base_big = min(base_big, baseline(big))
            for name, limits, workers in configs:
                for key, batch in ((name, files), (name + " 12 MP", big)):
                    t0 = time.perf_counter()
                    recs = list(classify([str(p) for p in batch], classifier=clf, limits=limits,
                                         batch_size=args.batch, workers=workers))
                    runs[key] = min(runs.get(key, float("inf")), time.perf_counter() - t0)
                    assert sum(r.ok for r in recs) == len(batch)
            t0 = time.perf_counter()
            recs = list(classify([str(archive)], classifier=clf, batch_size=args.batch))
            runs["zip"] = min(runs.get("zip", float("inf")), time.perf_counter() - t0)
            assert sum(r.ok for r in recs) == len(files)
            for key, what, n in (("cli", listed, len(files)), ("cli one", first, 1)):
                took, written = cli(what, Path(tmp) / "out.jsonl", args.model)
                runs[key] = min(runs.get(key, float("inf")), took)
                assert written == n, (written, n)
    print(f"images: {len(files)} (JPEG/PNG, 256–1024 px), model input {clf.input_size} px, batch {args.batch}, "
          f"{default_workers()} decoding threads by default")
    print(f"baseline decode+preprocess : {len(files) / base:8.1f} img/s (one thread)")
    for name, *_ in configs:
        sec = runs[name]
        print(f"{name:27s}: {len(files) / sec:8.1f} img/s, ratio to baseline {base / sec:5.2f}")
    print(f"{'pipeline, one zip of them':27s}: {len(files) / runs['zip']:8.1f} img/s, ratio to baseline "
          f"{base / runs['zip']:5.2f}")
    cli_s, start = runs["cli"], runs["cli one"]
    print(f"{'medimg classify (CLI)':27s}: {len(files) / cli_s:8.1f} img/s, ratio to baseline {base / cli_s:5.2f} "
          f"({cli_s:.1f} s; {start:.1f} s for one file, about its start-up; past it "
          f"{(len(files) - 1) / max(cli_s - start, 1e-9):.1f} img/s)")
    print("(ratio 1.00 = model and plumbing cost as much as they save)")
    one = runs["pipeline, 1 decoding thread 12 MP"]
    fast, full = runs["pipeline 12 MP"], runs["pipeline, full decode 12 MP"]
    print(f"20 JPEGs of 4000×3000      : baseline decode+preprocess {len(big) / base_big:.1f} img/s (one thread); "
          f"{len(big) / fast:.1f} img/s as shipped (ratio {base_big / fast:.2f}), {len(big) / full:.1f} decoded in "
          f"full (ratio {base_big / full:.2f}; {full / fast:.1f}× slower), {len(big) / one:.1f} with one decoding "
          f"thread (ratio {base_big / one:.2f})")


if __name__ == "__main__":
    main()
