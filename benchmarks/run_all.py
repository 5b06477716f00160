"""Run every benchmark in this folder, one after another (each prints its own numbers); exits 1 naming the ones
that failed, so a benchmark the code has left behind does not pass unseen."""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
failed = []
for script in sorted(here.glob("bench_*.py")):
    print(f"\n== {script.name}", flush=True)
    if subprocess.run([sys.executable, str(script)], check=False).returncode:
        failed.append(script.name)
if failed:
    sys.exit(f"\nfailed: {', '.join(failed)}")
