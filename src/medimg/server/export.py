"""Results as downloadable CSV and JSON, and verdicts at another threshold."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re

from ..output import csv_cell, readable as _text
from ..pipeline import RECORD_FIELDS, Record, summarize

# What starts a formula in a spreadsheet's cell (OWASP's "CSV Injection": = + - @, their full-width forms,
# and a tab, CR or LF before one), after any spaces and quotes
_FORMULA = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
# A comma, semicolon, tab or line end inside a cell: a spreadsheet that splits on `;` or tabs (Excel where `;` is
# the list separator), or on a line end inside a cell it does not read as quoted, begins a new cell there,
# whatever the quoting says
_SEPARATORS = frozenset(",;\t\r\n")
_FORMULA_AT = re.compile("[" + re.escape("".join(sorted(_FORMULA))) + "]")
_SKIPPED = re.compile("[\\s\"']*")  # spaces and quotes, which a spreadsheet passes over before a formula
_MARKED = {ord(ch): ch + "'" for ch in _SEPARATORS if ch.isspace()}  # those among the spaces, each marked


def readable(record: Record) -> Record:
    """The record as the server shows and sends it: a name whose bytes are not UTF-8 (a Latin-1 tar or zip
    member name; the sources keep such bytes as surrogates, which the CLI writes back escaped) gets U+FFFD
    for each byte that is not, in its input, locator, error, source and metadata. JSON encoders (pydantic's,
    Gradio's) and UTF-8 files refuse surrogates."""
    texts = {k: _text(getattr(record, k)) for k in ("input", "locator", "error", "source")}
    return dataclasses.replace(record, metadata=_clean(record.metadata), **texts)


def _clean(value):
    if isinstance(value, dict):
        return {_text(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return _text(value)


def relabeled(records: list[Record], threshold: float) -> list[Record]:
    """Copies of the records with the verdict at `threshold` (the model is not run again)."""
    return [r if r.p_medical is None else dataclasses.replace(r, verdict=r.relabel(threshold)) for r in records]


def safe_cell(value):
    """Text a spreadsheet shows as text, whatever separator it splits the file on: a `'` before a formula's
    start (= + - @, …) at the cell's start and after each comma, semicolon, tab or line end in it
    (`scan;=SUM(1+1).png` is `scan;'=SUM(1+1).png`). Numbers are left as they are."""
    if not isinstance(value, str):
        return value
    lead = value[:1] in ("\t", "\r", "\n")
    if _FORMULA.isdisjoint(value):  # most cells: nothing to mark but a leading tab or line end
        return "'" + value if lead else value
    if _SEPARATORS.isdisjoint(value):  # a name with a hyphen: a mark at its start at most
        return "'" + value if _FORMULA_AT.match(value, _SKIPPED.match(value).end()) else value
    # each formula start with the spaces and quotes before it (read backwards, so no run is read twice: a regex
    # lookahead after each separator was quadratic in a cell of line ends); a mark after each separator in that
    # run, and after the one just before it
    pieces, done = [], 0
    for m in _FORMULA_AT.finditer(value):
        at = m.start()
        start = at - _SKIPPED.match(value[done:at][::-1]).end()
        lead = lead or start == 0
        pieces.append(value[done:start] + ("'" if start > done and value[start - 1] in _SEPARATORS else ""))
        pieces.append(value[start:at + 1].translate(_MARKED))
        done = at + 1
    pieces.append(value[done:])
    value = "".join(pieces)
    return "'" + value if lead else value


# the CLI's columns, then `model` as its --full names it (empty on an error's row) and the threshold the verdicts
# were made at (every row): a file saved at 0.7 is told from one at 0.5, and by which model
CSV_FIELDS = [*RECORD_FIELDS, "model", "threshold"]


def to_csv(records: list[Record], threshold: float) -> str:
    """The records, their verdicts at `threshold`, as the page's CSV download."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for r in records:
        row = {k: safe_cell(csv_cell(v)) for k, v in readable(r).to_dict().items()}
        writer.writerow({**row, "model": safe_cell(csv_cell(r.model)), "threshold": float(threshold)})
    return buf.getvalue()


def to_json(records: list[Record], threshold: float, model: dict, note: str | None = None) -> str:
    """`note` says why the results may be fewer than the inputs hold (a run stopped by Stop or its time limit)."""
    doc = {
        "model": {k: model.get(k) for k in ("name", "version")},
        "threshold": threshold,
        **({"note": note} if note else {}),
        "summary": summarize(records),
        "results": [readable(r).to_dict(full=True) for r in records],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)
