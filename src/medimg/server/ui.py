"""The web page: drop files or give a URL, see every image found with its label, download the results."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator

import gradio as gr

from ..pipeline import Record, summarize
from ..sources import Blob
from ..sources.files import blobs_together
from .api import url_problem
from .export import relabeled, to_csv, to_json
from .work import Worker

FILTERS = ["all", "medical", "non-medical", "uncertain"]
TABLE_HEADERS = ["#", "file", "where", "verdict", "label", "confidence", "p(medical)", "size"]
EXPORT_MAX_AGE = 3600.0  # seconds a download stays available

CSS = """
#counts p { font-size: 1.1em; margin: 0; }
#gallery .grid-wrap { min-height: 0 !important; height: auto !important; max-height: 80vh; }
@media (max-width: 640px) {
  #gallery .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
}
"""

SCROLL_TO_RESULTS = """() => {
  const el = document.getElementById("counts");
  if (el && el.getBoundingClientRect().top > window.innerHeight * 0.7) el.scrollIntoView({behavior: "smooth"});
}"""

INTRO = """# medimg — find the medical images
Drop files (images, DICOM, volumes such as NIfTI or an .mhd with its .raw, whole slides, microscopy stacks, videos, PDF, Word/PowerPoint/Excel, e-mails, zip — many at once) or give a web address. Every image inside is found
and labelled **medical** (x-ray, CT, MRI, ultrasound, histology, dermoscopy, fundus, endoscopy) or
**non-medical** (photo, graphic, document), with how sure the model is. Nothing is kept after the answer.
Programs can use the same service through the [JSON API](/docs)."""


def build_ui(worker: Worker, examples: dict[str, list[Path]] | None = None) -> gr.Blocks:
    cfg = worker.config
    t0 = round(worker.classifier.threshold, 2)
    scratch = Path(tempfile.gettempdir()) / "medimg-ui"
    upload_root = Path(gr.utils.get_upload_folder()).resolve()

    def classify(file_paths, url, render, threshold, show, previous, progress=gr.Progress()):
        paths = [Path(p) for p in (file_paths or [])]
        url = (url or "").strip()
        if not paths and not url:
            raise gr.Error("Drop one or more files, or enter a web address, first.")
        inputs: list = []
        early: list[Record] = []
        if paths:
            inputs.append(_blobs(paths, cfg.limits().max_input_bytes))
        if url:
            problem = url_problem(url, cfg.allow_private, cfg.offline)
            if problem:
                early.append(Record(input=url, locator="", error=problem))
            else:
                inputs.append([url])
        progress(0, desc="Looking for images…")
        found = [0]

        def tick(rec: Record) -> None:
            if rec.ok:
                found[0] += 1
                progress((found[0], None), desc=f"{found[0]} images classified", unit="images")

        try:
            records = early + worker.run(_chain(inputs), cfg.limits(render=bool(render)),
                                         thumbnails=cfg.thumbnail_size, on_record=tick)
        finally:
            _delete_uploads(paths, upload_root)
        _drop(previous)
        results = _keep(records, scratch)
        return (*_views(results, threshold, show), results, None)

    def run_example(name):
        def go(threshold, show, previous, progress=gr.Progress()):
            progress(0, desc="Looking for images…")
            limits = cfg.limits()
            records = worker.run(_blobs(examples[name], limits.max_input_bytes), limits, thumbnails=cfg.thumbnail_size)
            _drop(previous)
            results = _keep(records, scratch)
            return (*_views(results, threshold, show), results, None)
        return go

    def refresh(results, threshold, show):
        return _views(results, threshold, show)

    def _views(results: Results | None, threshold: float, show: str):
        records = results.records if results else []
        recs = relabeled(records, threshold)
        shown = [i for i, r in enumerate(recs) if r.ok and (show == "all" or r.verdict == show)]
        pictured = [i for i in shown if results.thumbs[i]]  # gallery position → record index
        gallery = [(results.thumbs[i], _caption(recs[i])) for i in pictured]
        table = [_row(i, recs[i]) for i in shown]
        problems = [[r.input, r.locator, r.error] for r in recs if not r.ok and not r.skipped]
        has = bool(records)
        csv_path, json_path = (_write_exports(recs, threshold, worker.model_info(), results.folder) if has
                               else ("", ""))
        return (
            _counts(recs, threshold, show, len(shown)),
            gallery,
            gr.update(value=table or None, visible=bool(table)),
            gr.update(value=problems or None, visible=bool(problems)),
            pictured,
            gr.update(value=None, visible=False),
            gr.update(value=str(csv_path) if has else None, interactive=has),
            gr.update(value=str(json_path) if has else None, interactive=has),
        )

    def select(results, pictured, threshold, evt: gr.SelectData):
        try:
            rec = relabeled([results.records[pictured[evt.index]]], threshold)[0]
        except (AttributeError, IndexError, TypeError, KeyError):
            return gr.update(value=None, visible=False)
        return gr.update(value=_details(rec), visible=True)

    with gr.Blocks(title="medimg", delete_cache=(900, int(EXPORT_MAX_AGE))) as demo:
        records_state = gr.State(None, time_to_live=EXPORT_MAX_AGE, delete_callback=_drop)
        pictured_state = gr.State([])
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                files = gr.File(label="Files: images, DICOM, volumes, slides, microscopy, video, PDF, Office, e-mail, zip", file_count="multiple",
                                type="filepath", elem_id="files", height=160)
                # an --offline server fetches nothing: no web address to offer
                url = gr.Textbox(label="…or a web address", placeholder="https://…", elem_id="url",
                                 visible=not cfg.offline)
                render = gr.Checkbox(label="Run the page's JavaScript before looking (slower)", value=False,
                                     visible=not cfg.offline, container=False)
                go = gr.Button("Find and classify images", variant="primary", elem_id="run")
                example_buttons = []
                if examples:
                    with gr.Row():
                        for name in examples:
                            example_buttons.append((name, gr.Button(f"Example: {name}", size="sm",
                                                                    elem_classes=["example"])))
            with gr.Column(scale=2, min_width=260):
                threshold = gr.Slider(0.5, 0.99, value=t0, step=0.01, label="How sure before saying medical or not",
                                      info="Below this, an image is 'uncertain'. Changing it re-labels instantly.",
                                      elem_id="threshold")
                show = gr.Radio(FILTERS, value="all", label="Show", elem_id="filter")
                with gr.Row():
                    csv_btn = gr.DownloadButton("Download CSV", interactive=False, elem_id="csv", size="sm")
                    json_btn = gr.DownloadButton("Download JSON", interactive=False, elem_id="json", size="sm")
        counts = gr.Markdown("No results yet.", elem_id="counts")
        gallery = gr.Gallery(label="Images found (click one for details)", columns=5, height="auto",
                             fit_columns=False, object_fit="contain", elem_id="gallery", interactive=False,
                             buttons=["fullscreen"])
        details = gr.Dataframe(headers=["field", "value"], label="Selected image", visible=False,
                               interactive=False, wrap=True, elem_id="details")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="All images", visible=False, interactive=False,
                             wrap=True, elem_id="table")
        problems = gr.Dataframe(headers=["file", "where", "problem"], label="Could not be read",
                                visible=False, interactive=False, wrap=True, elem_id="problems")

        view_outputs = [counts, gallery, table, problems, pictured_state, details, csv_btn, json_btn]
        run_outputs = view_outputs + [records_state, files]
        queue = dict(concurrency_limit=cfg.max_jobs, concurrency_id="classify")
        go.click(classify, [files, url, render, threshold, show, records_state], run_outputs, **queue)
        url.submit(classify, [files, url, render, threshold, show, records_state], run_outputs, **queue)
        for name, button in example_buttons:
            button.click(run_example(name), [threshold, show, records_state], run_outputs, **queue)
        for button in [go] + [b for _, b in example_buttons]:  # on a small screen, show where results come
            button.click(None, None, None, js=SCROLL_TO_RESULTS)
        light = dict(concurrency_limit=None)  # no model run: never queue behind classification
        threshold.change(refresh, [records_state, threshold, show], view_outputs, trigger_mode="always_last",
                         **light)
        show.change(refresh, [records_state, threshold, show], view_outputs, **light)
        gallery.select(select, [records_state, pictured_state, threshold], details, **light)
    return demo


def _blobs(paths: Iterable[Path], cap: int) -> Iterator[Blob]:
    """Uploaded files by their own names (not the temporary paths), read one at a time; each can read
    another of them by name (a detached header's data file)."""
    return blobs_together([(p.name, partial(_read_head, p), None) for p in paths], cap)


def _read_head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _chain(groups: list) -> Iterator:
    for group in groups:
        yield from group


def _delete_uploads(paths: list[Path], upload_root: Path) -> None:
    """Remove this request's uploaded files (and their folders) from Gradio's upload area."""
    for p in paths:
        try:
            p = p.resolve()
            if upload_root in p.parents:
                p.unlink(missing_ok=True)
                if p.parent != upload_root and not any(p.parent.iterdir()):
                    p.parent.rmdir()
        except OSError:
            pass


def _where(r: Record) -> str:
    return f"{r.input} · {r.locator}" if r.locator else r.input


def _position(r: Record) -> str:
    """The locator, plus where on the page an image sits when the source says (PDF points from top left)."""
    box = (r.metadata or {}).get("bbox")
    if not (isinstance(box, (list, tuple)) and len(box) == 4):
        return r.locator
    x0, y0, x1, y1 = (float(v) for v in box)
    return f"{r.locator} · at x {x0:.0f}, y {y0:.0f} pt, {x1 - x0:.0f}×{y1 - y0:.0f} pt"


def _caption(r: Record) -> str:
    return f"{r.verdict} · {r.label} {r.confidence:.0%} · {_where(r)}"


def _row(i: int, r: Record) -> list:
    return [i + 1, r.input, _position(r), r.verdict, r.label, round(r.confidence, 3), round(r.p_medical, 3),
            f"{r.width}×{r.height}"]


def _counts(recs: list[Record], threshold: float, show: str = "all", n_shown: int = 0) -> str:
    if not recs:
        return "No results yet."
    s = summarize(recs)
    v = s["verdicts"]
    parts = [f"**{s['images']} images**", f"{v.get('medical', 0)} medical", f"{v.get('non-medical', 0)} non-medical",
             f"{v.get('uncertain', 0)} uncertain"]
    if s["errors"]:
        parts.append(f"{s['errors']} could not be read")
    if s["skipped"]:
        parts.append(f"{s['skipped']} tiny or decorative images skipped")
    text = " · ".join(parts) + f" (threshold {threshold:.2f})"
    return text if show == "all" else text + f" — showing the {n_shown} {show}"


def _details(r: Record) -> list[list[str]]:
    rows = [["file", r.input], ["where", _position(r) or "—"], ["verdict", r.verdict], ["label", r.label],
            ["confidence", f"{r.confidence:.3f}"], ["p(medical)", f"{r.p_medical:.3f}"],
            ["size", f"{r.width}×{r.height}"], ["format", r.format or "—"]]
    top = sorted(r.probs.items(), key=lambda kv: -kv[1])[:3]
    rows.append(["top labels", ", ".join(f"{k} {v:.2f}" for k, v in top)])
    rows += [[str(k), _short(v)] for k, v in (r.metadata or {}).items()]
    return rows


def _short(v, limit: int = 200) -> str:
    text = str(v)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Results:
    """One run's records (thumbnails moved to files in `folder`) for one browser session."""

    records: list[Record]
    thumbs: list[str | None]
    folder: Path


def _keep(records: list[Record], root: Path) -> Results:
    """Move thumbnails out of memory into a fresh folder; sweep folders nobody used for an hour."""
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > EXPORT_MAX_AGE:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    thumbs: list[str | None] = []
    for i, r in enumerate(records):
        path = None
        if r.thumbnail is not None:
            path = folder / f"{i:05d}.jpg"
            r.thumbnail.save(path, "JPEG", quality=88)
            r.thumbnail = None
        thumbs.append(str(path) if path else None)
    return Results(records, thumbs, folder)


def _drop(results: Results | None) -> None:
    if isinstance(results, Results):
        shutil.rmtree(results.folder, ignore_errors=True)


def _write_exports(recs: list[Record], threshold: float, model: dict, folder: Path) -> tuple[Path, Path]:
    """CSV and JSON of these results at this threshold, in a new sub-folder (each download is its own file)."""
    out = folder / f"export-{uuid.uuid4().hex[:8]}"
    out.mkdir(parents=True)
    csv_path, json_path = out / "medimg-results.csv", out / "medimg-results.json"
    csv_path.write_text(to_csv(recs), encoding="utf-8", newline="")
    json_path.write_text(to_json(recs, threshold, model), encoding="utf-8")
    return csv_path, json_path
