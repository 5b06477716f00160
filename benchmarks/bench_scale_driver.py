"""What `medimg scale` costs its driver before Ray starts, for a list of millions: time and peak memory.

    .venv/bin/python benchmarks/bench_scale_driver.py [--entries 1000000] [--rows-per-file 128]

Makes a list of N URLs (one in ten given again in another spelling) and an output folder of N rows as
the job writes them, then measures, each in a fresh process: (1) reading the list alone (the baseline),
(2) the driver's pass over it (each entry once, written to the spill file), (3) resume's reading of the
output folder (`done_inputs`) and then the driver's pass passing over what is done. Prints seconds and
peak resident MB of each and the ratios of (2) and (3) to (1).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

PHASE = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {src!r})
from medimg.keyset import KeySet
from medimg.lists import open_list
from medimg.scale.ray_job import Spill, done_inputs, spill_new
phase, listed, out = sys.argv[1:4]
t = time.perf_counter()
n = 0
if phase == "read":
    n = sum(1 for _ in open_list(listed))
else:
    done = done_inputs(out, "jsonl") if phase == "resume" else KeySet()
    spill = Spill(Path(tempfile.mkdtemp()), 16)
    n = spill_new(spill, open_list(listed), done)
    n = (n, spill.count, len(done))
    spill.remove()
print(json.dumps({{"phase": phase, "seconds": round(time.perf_counter() - t, 2), "result": n,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}}))
"""


def url(i: int) -> str:
    return f"https://images.example.org/set{i % 97}/{i:09d}/photo.jpg?w=512"


def make(folder: Path, n: int, per_file: int) -> tuple[Path, Path]:
    listed, out = folder / "list.txt", folder / "out"
    out.mkdir()
    with listed.open("w") as f:
        for i in range(n):
            f.write(url(i) + "\n")
            if i % 10 == 0:  # the same URL again, spelled otherwise
                f.write(url(i).replace("https://images.example.org/", "HTTPS://Images.Example.org:443/") + "\n")
    done = n // 2  # the stopped run wrote half the list
    for start in range(0, done, per_file):
        with (out / f"run_{start // per_file:06d}_000000.json").open("w") as f:
            for i in range(start, min(start + per_file, done)):
                f.write(json.dumps({"input": url(i), "locator": "", "label": "photo", "medical": False,
                                    "confidence": 0.9, "p_medical": 0.1, "verdict": "non-medical", "width": 512,
                                    "height": 384, "error": None, "skipped": None, "source": url(i),
                                    "model": "m", "source_rows": 1}) + "\n")
    return listed, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rows-per-file", type=int, default=128)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        listed, out = make(Path(tmp), a.entries, a.rows_per_file)
        res = {}
        for phase in ("read", "driver", "resume"):
            run = subprocess.run([sys.executable, "-c", PHASE.format(src=SRC), phase, str(listed), str(out)],
                                 capture_output=True, text=True, check=True)
            res[phase] = json.loads(run.stdout.strip().splitlines()[-1])
            print(json.dumps(res[phase]), flush=True)
    base = res["read"]
    print(json.dumps({"entries": a.entries, "lines": a.entries + (a.entries + 9) // 10,
                      **{f"{p}_vs_read_time": round(res[p]["seconds"] / base["seconds"], 2) for p in ("driver", "resume")},
                      **{f"{p}_bytes_per_entry": round((res[p]["peak_mb"] - base["peak_mb"]) * 2**20 / a.entries, 1)
                         for p in ("driver", "resume")}}))


if __name__ == "__main__":
    main()
