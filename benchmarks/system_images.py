"""How many of this machine's own PNG/JPEG files (icons, documentation figures, wallpapers) a model calls medical.

    .venv/bin/python benchmarks/system_images.py [--model fast|DIR] [ROOT ...]

ROOT defaults to /usr/share and the virtual environment's site-packages. None of these files is a medical
image (check the listed ones by eye), so every `medical` verdict is a false alarm and `uncertain` a near miss.
Never used to train; the set changes with what is installed, so compare models in the same run.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
from collections import Counter
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="*", type=Path)
    ap.add_argument("--model", action="append", default=None,
                    help="fast or a model folder; repeat to compare (default: the shipped model)")
    args = ap.parse_args()
    roots = args.roots or [Path("/usr/share"), Path(sysconfig.get_paths()["purelib"])]
    files = sorted(p for r in roots for p in r.rglob("*")
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.is_file())
    print(f"{len(files)} PNG/JPEG files under {', '.join(map(str, roots))}")

    from medimg.model import Classifier
    from medimg.pipeline import classify

    for name in args.model or [None]:
        clf = Classifier.load(name)
        recs = [r for r in classify(files, classifier=clf) if r.error is None]
        verdicts = Counter(r.verdict for r in recs)
        labels = Counter(r.label for r in recs if r.verdict == "medical")
        print(f"model {clf.meta.get('name')} {clf.meta.get('version')}: {len(recs)} images, "
              f"medical {verdicts['medical']}, uncertain {verdicts['uncertain']}, "
              f"non-medical {verdicts['non-medical']}; medical ones called {dict(labels)}")
        for r in recs:
            if r.verdict == "medical":
                print(f"  {r.input}: {r.label} (p_medical {r.p_medical:.3f})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
