"""Ray Data job: a list of inputs (URLs, paths) → one row per image, written as JSONL/Parquet/CSV.

Each actor loads the model once and runs the ordinary pipeline on its share of inputs, so the
job inherits every limit and per-item error of the sources.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import numpy as np

from ..pipeline import RECORD_FIELDS
from ..sources import Limits

COLUMNS = RECORD_FIELDS + ["skipped", "format", "metadata"]


def schema():
    import pyarrow as pa

    types = {"medical": pa.bool_(), "skipped": pa.bool_(), "confidence": pa.float64(),
             "p_medical": pa.float64(), "width": pa.int64(), "height": pa.int64()}
    return pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])


class ClassifyInputs:
    """Ray actor: classify every input in a batch; one output row per image or error."""

    def __init__(self, model_dir: str | None = None, limits: dict | None = None,
                 threshold: float | None = None, threads: int = 1):
        from ..model import Classifier

        self.clf = Classifier.load(model_dir, threads=threads)
        self.limits = Limits(**(limits or {}))
        self.threshold = threshold

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa

        from ..pipeline import classify

        rows = {c: [] for c in COLUMNS}
        for source in batch["input"]:
            for rec in classify([str(source)], classifier=self.clf, limits=self.limits,
                                threshold=self.threshold):
                d = rec.to_dict(full=True)
                d["metadata"] = json.dumps(d["metadata"], ensure_ascii=False) if d["metadata"] else None
                for c in COLUMNS:
                    rows[c].append(d.get(c))
        return pa.table(rows, schema=schema())


def read_inputs(list_file: str | Path) -> list[str]:
    """One input per line; blank lines and # comments ignored."""
    lines = Path(list_file).read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


def run(inputs: Iterable[str], out: str | Path, fmt: str = "jsonl", model_dir: str | None = None,
        limits: Limits | None = None, threshold: float | None = None, concurrency: int = 2,
        inputs_per_batch: int = 4, address: str | None = None) -> int:
    """Classify `inputs` with Ray Data and write the rows to `out` (a folder). Returns the row count."""
    import ray

    if fmt not in ("jsonl", "parquet", "csv"):
        raise ValueError("fmt must be jsonl, parquet or csv")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, ignore_reinit_error=True)
    items = [{"input": s} for s in inputs]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), concurrency * 4)))
    ds = ds.map_batches(
        ClassifyInputs,
        batch_size=inputs_per_batch,
        batch_format="numpy",
        concurrency=concurrency,
        num_cpus=1,
        fn_constructor_kwargs={"model_dir": model_dir,
                               "limits": asdict(limits) if limits else None,
                               "threshold": threshold},
    )
    out = str(Path(out).resolve())
    ds = ds.materialize()
    if fmt == "jsonl":
        ds.write_json(out)
    elif fmt == "parquet":
        ds.write_parquet(out)
    else:
        ds.write_csv(out)
    return ds.count()


__all__ = ["run", "read_inputs", "ClassifyInputs", "COLUMNS"]
