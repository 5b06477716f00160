"""Results as downloadable CSV and JSON, and verdicts at another threshold."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

from ..pipeline import RECORD_FIELDS, Record, summarize

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def relabeled(records: list[Record], threshold: float) -> list[Record]:
    """Copies of the records with the verdict at `threshold` (the model is not run again)."""
    return [r if r.p_medical is None else dataclasses.replace(r, verdict=r.relabel(threshold)) for r in records]


def safe_cell(value):
    """A spreadsheet shows a cell starting with = + - @ (or tab/CR) as a formula; make it text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(records: list[Record]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: safe_cell(v) for k, v in r.to_dict().items()})
    return buf.getvalue()


def to_json(records: list[Record], threshold: float, model: dict) -> str:
    doc = {
        "model": {k: model.get(k) for k in ("name", "version")},
        "threshold": threshold,
        "summary": summarize(records),
        "results": [r.to_dict(full=True) for r in records],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)
