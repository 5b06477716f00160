"""The web page: drop files or give a URL, see every image found with its label, download the results."""

from __future__ import annotations

import atexit
import hmac
import html
import io
import math
import os
import re
import secrets
import shutil
import threading
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from functools import partial, wraps
from pathlib import Path
from typing import Iterable, Iterator

import gradio as gr

from ..lists import once
from ..model.classifier import p_text, verdict_for
from ..pipeline import Record, summarize
from ..sources import Blob
from ..sources.base import cut_short
from ..sources.browser import available
from ..sources.files import blobs_together, unique_names
from .api import WAITING_PER_JOB, url_problem
from .export import readable, relabeled, to_csv, to_json
from .work import Worker, unread_rows

FILTERS = ["all", "medical", "non-medical", "uncertain"]
# what matters first (a phone shows only the file, verdict, label and p(medical): see CSS)
TABLE_HEADERS = ["#", "file", "verdict", "label", "label confidence", "p(medical)", "where", "size"]
# fixed widths: headers on one line, long text wrapped within its column
TABLE_WIDTHS = ["48px", "200px", "112px", "112px", "176px", "112px", "236px", "104px"]
# file names and places as HTML: see _frame
TABLE_TYPES = ["str", "html", "str", "str", "str", "str", "html", "str"]
PROBLEM_HEADERS = ["file", "why", "where"]
PROBLEM_WIDTHS = ["200px", "520px", "220px"]
DETAILS_WIDTHS = ["25%", "75%"]  # a long value (a file name, a DICOM UID) wraps within the box, not past it
EXPORTS_KEPT = 2  # download pairs kept per run (see _write_exports)
EXPORT_MAX_AGE = 3600.0  # seconds a session's results (and downloads) stay after its last run
STATE_SESSIONS = 1000  # sessions whose values Gradio keeps in memory (its default 10,000: ~1.4 GB), oldest out
UPLOAD_MAX_AGE = 900  # seconds an upload stays in Gradio's shared upload area
LOWEST, HIGHEST = 0.5, 1.0  # the threshold slider's range: as the API and the CLI take it

CSS = """
/* Gradio's light greys, dark enough: text 4.5:1, borders 3:1 (WCAG 1.4.3, 1.4.11) */
#files .or { color: #52525b !important; }
#files .label-clear-button { color: #52525b !important; }
#url textarea::placeholder { color: #71717a !important; opacity: 1; }
#url textarea { border-color: #71717a !important; }
input[type=checkbox], #filter input[type=radio] { border-color: #71717a !important; }
/* a visible focus ring on check boxes and radios, the checked one too (2.4.7) */
input[type=checkbox]:focus-visible, #filter input[type=radio]:focus-visible { outline: 2px solid #1d4ed8 !important;
  outline-offset: 2px; }
/* the opened image's caption wraps rather than being cut off on a phone (1.4.10), and is dark enough (1.4.3) */
#gallery caption.caption { white-space: normal !important; overflow-wrap: anywhere; max-width: 100%;
  text-overflow: clip !important; overflow: visible !important; color: #3f3f46 !important; }
/* the opened image, its caption and the thumbnail strip one under the other: Gradio lays the strip over the
   preview's bottom, on the second line of a caption wrapped on a phone (the file or web address); and the preview
   tall enough for the image when the gallery has one row */
#gallery .preview .media-button { height: auto !important; flex: 1 1 0; min-height: 0; }
#gallery .preview .thumbnails { position: static !important; flex: none; }
#gallery .gallery-container:has(> .preview) { min-height: min(70vh, 560px); }
/* the grid under an opened image's preview is covered by it: out of the Tab order and of what is read out too */
#gallery .gallery-container:has(> .preview) > .grid-wrap { visibility: hidden; }
/* a thumbnail's focus ring as the radios' (Chrome's 1 px one was half under the gallery's label), inside it */
#gallery .thumbnail-item:focus-visible { outline: 3px solid #1d4ed8 !important; outline-offset: -3px; }
/* said to screen readers only (KEEP_FOCUS) */
.medimg-sr { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
#counts p { font-size: 1.1em; margin: 0; }
/* while a run goes (its progress over the counts line, none over these), the last run's tables and an opened
   image's details are not shown, as its gallery is not: they read as the new run's. Hidden, not removed: nothing
   moves. An event with a progress of their own (a new threshold, the step after a run) is left to show it */
#counts:has(> [data-testid=status-tracker]:not(.hide)) ~ #table:not(:has(> [data-testid=status-tracker]:not(.hide)))
  { visibility: hidden; }
#counts:has(> [data-testid=status-tracker]:not(.hide)) ~ #problems:not(:has(> [data-testid=status-tracker]:not(.hide)))
  { visibility: hidden; }
#counts:has(> [data-testid=status-tracker]:not(.hide)) ~ #details:not(:has(> [data-testid=status-tracker]:not(.hide)))
  { visibility: hidden; }
/* a run's note beside Run and Stop, and Stop kept on the screen while a run goes (RUNS) */
#medimg-busy { margin: 0; color: #1f2937; font-weight: 600; }
#medimg-busy:empty { display: none; }
#stop[data-float] { position: fixed !important; right: 16px; bottom: 16px; z-index: 1000; width: auto !important;
  min-width: 96px; box-shadow: 0 2px 10px rgba(0, 0, 0, 0.35); border: 2px solid #374151 !important; }
#gallery .caption-label { white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  max-width: 100% !important; line-height: 1.25; overflow-wrap: anywhere; }
#threshold input[type=range]:focus-visible { outline: 2px solid #1d4ed8; outline-offset: 3px; }
/* the address box and the threshold's number box show the focus too: the address box's grey border above hid
   Gradio's focus colour, and the number box's 1 px orange ring is 2.8:1 (2.4.7, 1.4.11); so does a table cell */
#url textarea:focus-visible, #threshold input[type=number]:focus-visible { outline: 2px solid #1d4ed8 !important;
  outline-offset: 1px; }
.fit .body-cell:focus-visible { outline-color: #1d4ed8 !important; }
#threshold .info-text, #threshold .min_value, #threshold .max_value { color: #374151 !important; }
#gallery .grid-wrap { min-height: 0 !important; height: auto !important; max-height: 80vh; }
#files .file-preview-holder { max-height: 40vh; overflow-y: auto; }
/* a file's whole name, wrapped (a phone showed "s…png"); the box's label clear of its two buttons (Add files,
   Clear), which covered its end on a phone; the gallery's label above the images, not over their top (1.4.10) */
#files .file-preview .stem { white-space: normal !important; overflow-wrap: anywhere; text-overflow: clip !important;
  overflow: visible !important; min-width: 0; }
/* and its extension after its last line, as one text: Gradio's two boxes side by side put ".png" after the first
   line of a wrapped name ("patient_very_long_de.png" over the rest). Font size 0 between them: no space */
#files .file-preview td.filename { display: block !important; font-size: 0; }
#files .file-preview td.filename > span { display: inline !important; font-size: var(--text-md); }
#files .file-preview .download { min-width: 0 !important; width: auto !important; flex: none; }  /* 8rem: 55 px left */
#files:has(> .icon-button-wrapper) > [data-testid=block-label] { max-width: calc(100% - 72px); }
#gallery > [data-testid=block-label] { position: static !important; margin: 0 0 4px 0; }
#gallery .grid-container.pt-6 { padding-top: 0 !important; }
#details .body-cell span { overflow-wrap: anywhere; }  /* a value with no place to break (see DETAILS_WIDTHS) */
#files [data-testid=status-tracker] span.error { white-space: normal; max-width: 90%; text-align: center;
  overflow-wrap: anywhere; border-radius: 8px; font-weight: normal; }  /* why files were refused: ANNOUNCE_RESULTS */
/* dark mode (the browser's prefers-color-scheme: Gradio sets .dark): the colours above are for a light page.
   One selector a rule: Gradio prefixes a rule's first .dark only */
.dark #files .or { color: #d4d4d8 !important; }
.dark #files .label-clear-button { color: #d4d4d8 !important; }
.dark #threshold .info-text { color: #d4d4d8 !important; }
.dark #threshold .min_value { color: #d4d4d8 !important; }
.dark #threshold .max_value { color: #d4d4d8 !important; }
.dark #url textarea::placeholder { color: #a1a1aa !important; }
.dark #url textarea { border-color: #a1a1aa !important; }
.dark input[type=checkbox] { border-color: #a1a1aa !important; }
.dark #filter input[type=radio] { border-color: #a1a1aa !important; }
.dark #gallery caption.caption { color: #e4e4e7 !important; }
.dark #medimg-busy { color: #e4e4e7 !important; }
.dark #stop[data-float] { border-color: #d4d4d8 !important; }
.dark input[type=checkbox]:focus-visible { outline-color: #93c5fd !important; }
.dark #filter input[type=radio]:focus-visible { outline-color: #93c5fd !important; }
.dark #gallery .thumbnail-item:focus-visible { outline-color: #93c5fd !important; }
.dark #threshold input:focus-visible { outline-color: #93c5fd !important; }
.dark #url textarea:focus-visible { outline-color: #93c5fd !important; }
.dark .fit .body-cell:focus-visible { outline-color: #93c5fd !important; }
@media (max-width: 640px) {
  #gallery .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important;
    grid-auto-rows: auto !important; }
  /* each caption under its image, not over it (a web address's covered the whole image) */
  #gallery .thumbnail-lg { aspect-ratio: auto !important; height: auto !important; display: flex;
    flex-direction: column; }
  #gallery .thumbnail-lg > img { aspect-ratio: 1; height: auto !important; flex: none; }
  #gallery .thumbnail-lg .caption-label { position: static !important; max-width: none !important; border: 0 !important;
    opacity: 1 !important; }
  /* no box of its own to scroll in: the page scrolls */
  #gallery .grid-wrap, .fit .virtual-table-viewport { max-height: none !important; overflow-y: visible !important; }
  /* the tables fit the screen: each row's cells wrap onto lines of the table's width; columns less needed
     here are left out (the gallery's captions and an image's details have them). No selector lists inside
     :is(): Gradio prefixes each selector of a list, and would break them */
  .fit .header-table, .fit thead, .fit .virtual-body { display: block; width: 100% !important; }
  .fit .sizing-body { display: none; }
  .fit thead tr, .fit .virtual-row { display: flex; flex-wrap: wrap; padding: 0; }
  .fit th, .fit .body-cell { display: block; flex: 1 1 30% !important; width: auto !important;
    min-width: 0 !important; max-width: none !important; }
  #table [data-heading="1"], #table [data-col="1"] { flex-basis: 100% !important; }  /* the file: a line of its own */
  #problems [data-heading="1"], #problems [data-col="1"], #details [data-heading="1"], #details [data-col="1"] {
    flex-grow: 2 !important; }  /* why; value */
  #table [data-heading="0"], #table [data-col="0"], #table [data-heading="4"], #table [data-col="4"],
  #table [data-heading="6"], #table [data-heading="7"], #table [data-col="7"],
  #problems [data-heading="2"] { display: none !important; }
  /* where in its file an image is (a PDF's page, a web page's img #): a line of its own under the rest, as
     the rows of one PDF are told apart by it alone; none for a file that is one image */
  #table [data-col="6"], #problems [data-col="2"] { flex-basis: 100% !important; }
  #table [data-col="6"]:has(span:empty), #problems [data-col="2"]:has(span:empty) { display: none !important; }
}
"""

def theme() -> gr.themes.Base:
    """Gradio's default look, with a primary button dark enough for its white text (5:1, WCAG AA), in dark mode
    too."""
    return gr.themes.Default().set(button_primary_background_fill="*primary_700",
                                   button_primary_background_fill_hover="*primary_800",
                                   button_primary_text_color="white",
                                   # and in dark mode (Gradio's: 3.6:1), with links readable there (4.0:1)
                                   button_primary_background_fill_dark="*primary_700",
                                   button_primary_background_fill_hover_dark="*primary_800",
                                   button_primary_text_color_dark="white",
                                   link_text_color_dark="*secondary_400",
                                   link_text_color_hover_dark="*secondary_300",
                                   link_text_color_visited_dark="*secondary_400",
                                   link_text_color_active_dark="*secondary_300")


# Gradio's keys it has no text for (the file list's upload button, its screen-reader status after each event:
# read out as "common.upload", "common.complete"); and the upload box's text in the order of its accessible name
# ("Click to upload or drop files")
I18N = gr.I18n(en={"common.upload": "Add files", "common.complete": "Done",
                   "upload_text.drop_file": "Click to upload", "upload_text.or": "or",
                   "upload_text.click_to_upload": "drop files"})

# Once the page is loaded, for screen readers and the keyboard (checked against Gradio 6.31's markup, see
# test_ui_browser): the counts line is said aloud (politely) when results arrive, but not Gradio's progress timer
# beside it (a text every 100 ms); a thumbnail is named by its caption, not "Thumbnail 2 of 5"; the file list's
# "Add files" is one Tab stop (its outer button did nothing); the Show radios are one named group (arrow keys);
# files refused as they were dropped keep saying why in their box (Gradio's toast goes).
# Gradio renders these again as results come: an observer applies it each time.
ANNOUNCE_RESULTS = """() => {
  const counts = document.querySelector("#counts [data-testid=markdown]");
  if (counts) { counts.setAttribute("role", "status"); counts.setAttribute("aria-live", "polite"); }
  const tracker = document.querySelector("#counts [data-testid=status-tracker]");
  if (tracker) tracker.setAttribute("aria-hidden", "true");
  const fix = () => {
    document.querySelectorAll("#gallery .thumbnail-item").forEach(b => {
      const img = b.querySelector("img"); if (!img) return;
      if (img.getAttribute("alt")) { b.dataset.caption = img.getAttribute("alt"); img.setAttribute("alt", ""); }
      else if (img.title && b.dataset.caption !== img.title) b.dataset.caption = img.title;  /* the preview's strip */
      const label = b.getAttribute("aria-label") || "", cap = b.dataset.caption;
      if (cap && label.startsWith("Thumbnail ")) b.setAttribute("aria-label", `${cap} (image ${label.slice(10)})`);
    });
    document.querySelectorAll('#files button[aria-label="Add files"]').forEach(outer => {
      const inner = outer.querySelector("button");  /* the one that opens the file chooser */
      if (inner && inner.getAttribute("aria-label") !== "Add files") {
        outer.tabIndex = -1; inner.setAttribute("aria-label", "Add files");
      }
    });
    /* a listed file's download link and × say which file: each read "477.0 B ⇣" and "Remove this file" */
    document.querySelectorAll("#files .file-preview tr.file").forEach(tr => {
      const name = tr.querySelector("td.filename")?.getAttribute("aria-label");
      if (!name) return;
      const link = tr.querySelector("a.download-link"), rm = tr.querySelector("button.label-clear-button");
      const size = link ? link.innerText.replace(/[\\s\\u21e3]+$/, "").replace(/\\s+/g, " ").trim() : "";
      if (link && link.getAttribute("aria-label") !== `Download ${name} (${size})`)
        link.setAttribute("aria-label", `Download ${name} (${size})`);
      if (rm && rm.getAttribute("aria-label") !== `Remove ${name}`) rm.setAttribute("aria-label", `Remove ${name}`);
    });
    /* files refused as they were added (too large: Gradio checks before sending, or the upload failed): the
       box says only "Error", and why is in a toast that goes after 10 s; it says why until the box is cleared */
    const refused = document.querySelector("#files [data-testid=status-tracker] span.error");
    const why = [...document.querySelectorAll("[data-testid=toast-body].error [data-testid=toast-text]")].pop();
    if (refused && why && !refused.dataset.why) {
      refused.dataset.why = "1";
      refused.setAttribute("role", "alert");
      refused.textContent = `None of these files were added: ${why.innerText.trim().replace(/[.]$/, "")}. ` +
                            "Press × to clear this box, then add files again.";
    }
    /* the results' section titles are headings (H in a screen reader goes from one to the next) */
    document.querySelectorAll("#gallery > [data-testid=block-label], :is(#details, #table, #problems) .label p")
      .forEach(h => { if (h.getAttribute("role") !== "heading") { h.setAttribute("role", "heading");
                                                                   h.setAttribute("aria-level", "2"); } });
    /* help said with the control it is about: the threshold's (both its inputs), the file box's kinds of files */
    const describe = (text, id, controls) => {
      if (!text) return;
      if (!text.id) text.id = id;
      controls.forEach(c => { if (c.getAttribute("aria-describedby") !== id) c.setAttribute("aria-describedby", id); });
    };
    describe(document.querySelector("#threshold .info-text"), "threshold-help",
             document.querySelectorAll("#threshold input"));
    describe(document.querySelector("#files > [data-testid=block-label]"), "files-label",
             document.querySelectorAll("#files button.upload-container"));
    const group = document.getElementById("filter");
    if (group) {
      const legend = group.querySelector("[data-testid=block-info]");
      if (legend && !legend.id) legend.id = "filter-legend";
      if (group.getAttribute("role") !== "radiogroup") {
        group.setAttribute("role", "radiogroup"); group.setAttribute("aria-labelledby", "filter-legend");
      }
      group.querySelectorAll("input[type=radio]").forEach(r => {
        if (r.name !== "medimg-filter") r.name = "medimg-filter";
      });
    }
  };
  fix();
  new MutationObserver(fix).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                    attributeFilter: ["name", "aria-label", "alt", "title"]});
}"""

# Where the keyboard's focus goes when Gradio removes the element that had it (it would go to the page's start):
# after files are added (the drop box is replaced by the list), to "Add files"; after a file is removed, to the
# next file's × (the drop box once none is left); after an image's preview is closed (Esc or Close), to its
# thumbnail. And said politely, once things settle: how many files are ready, and that an opened image's details
# are shown under the gallery (Gradio adds them silently).
KEEP_FOCUS = """() => {
  const PROGRESS_EVERY = 5000;
  let last = null;  /* the element focused last, and where it was */
  const removers = () => [...document.querySelectorAll("#files .label-clear-button")];
  const opened = () => [...document.querySelectorAll("#gallery .preview .thumbnail-item")]
    .findIndex(b => b.classList.contains("selected"));
  document.addEventListener("focusin", e => {
    const el = e.target;
    last = {el, where: el.closest("#files") ? "files" : el.closest("#gallery .preview") ? "preview" : null,
            index: removers().indexOf(el), image: opened()};
  });
  /* the image shown may change with the focus staying (a click on the large image): as it closes, it is this */
  const closing = e => { if (last && last.where === "preview" && e.target.closest?.("#gallery .preview"))
                           last.image = opened(); };
  document.addEventListener("click", closing, true);
  /* not while a key is down: Gradio removes a file on Enter's keydown, and the click that follows (keypress)
     would press whatever has the focus then */
  let down = 0;
  document.addEventListener("keydown", e => { down = performance.now(); closing(e); }, true);
  document.addEventListener("keyup", () => { down = 0; setTimeout(keep, 0); }, true);
  const target = () => {
    if (last.where === "files") {
      const rm = removers();
      if (last.index >= 0 && rm.length) return rm[Math.min(last.index, rm.length - 1)];
      return document.querySelector("#files button.upload-container:not([tabindex='-1'])");
    }
    if (last.where === "preview" && !document.querySelector("#gallery .preview"))
      return document.querySelectorAll("#gallery .thumbnail-lg")[Math.max(last.image, 0)];
    return null;
  };
  const said = document.createElement("div");
  said.id = "medimg-said"; said.className = "medimg-sr"; said.setAttribute("role", "status");
  said.setAttribute("aria-live", "polite");
  document.body.appendChild(said);
  let pending = null, told = {};
  const say = (key, text) => {
    if (!text || told[key] === text) return;
    told[key] = text;
    clearTimeout(pending);
    pending = setTimeout(() => { said.textContent = ""; setTimeout(() => { said.textContent = text; }, 50); }, 400);
  };
  /* a run's progress (Gradio's, over the counts line, hidden from screen readers: its timer changes every 100 ms),
     said at its start and then at most every PROGRESS_EVERY ms while it changes; the results line says the end */
  let spoken = 0, progressSaid = "";
  const progress = () => {
    const tracker = document.querySelector("#counts [data-testid=status-tracker]");
    const level = tracker && tracker.querySelector(".progress-level");
    if (!level || !level.offsetParent) {
      if (progressSaid) { progressSaid = ""; spoken = 0; clearTimeout(pending); }  /* over: nothing stale said */
      return;
    }
    /* "1 image classified - 0.0%", "0/2 inputs read | 6.8s": without the timer and Gradio's percentage */
    const parts = [...tracker.querySelectorAll(".progress-level-inner, .progress-text")]
      .map(e => e.innerText.replace(/\\s*\\|\\s*[\\d.]+s\\b/g, "").replace(/\\s*-\\s*[\\d.]+%/g, "").trim())
      .filter(Boolean);
    const text = parts.length ? `Running: ${[...new Set(parts)].join(", ")}.` : "Running…";
    const now = performance.now();
    if (text === progressSaid || (progressSaid && now - spoken < PROGRESS_EVERY)) return;
    progressSaid = text; spoken = now;
    clearTimeout(pending);
    said.textContent = ""; setTimeout(() => { said.textContent = text; }, 50);
  };
  setInterval(progress, 1000);  /* Gradio changes the texts in place, which the observer below does not see */
  /* Gradio's toasts (a warning, an error, Stop's note) each come as a new live region with its text already in,
     which screen readers often do not read. Said here instead, by regions there from the start: a warning's or
     an error's at once (role=alert) */
  const alarm = document.createElement("div");
  alarm.id = "medimg-alert"; alarm.className = "medimg-sr"; alarm.setAttribute("role", "alert");
  document.body.appendChild(alarm);
  /* each message: Gradio puts a second one of a kind (a second warning) into the toast already shown */
  const toasts = new WeakSet();
  const tellToasts = () => document.querySelectorAll("[data-testid=toast-body]").forEach(t => {
    t.removeAttribute("role"); t.removeAttribute("aria-live");  /* said once, here */
    const kind = t.classList.contains("error") ? "Error" : t.classList.contains("warning") ? "Warning" : "";
    const region = kind ? alarm : said;
    t.querySelectorAll("[data-testid=toast-text]").forEach(m => {
      const text = m.innerText.trim();
      if (toasts.has(m) || !text) return;
      toasts.add(m);
      region.textContent = ""; setTimeout(() => { region.textContent = kind ? `${kind}: ${text}` : text; }, 50);
    });
  });
  const keep = () => {
    if (last && !last.el.isConnected && (!document.activeElement || document.activeElement === document.body)
        && !(down && performance.now() - down < 1000)) {
      const t = target();
      if (t) t.focus();
    }
  };
  new MutationObserver(() => {
    keep();
    tellToasts();
    const ready = document.querySelector("#ready [data-testid=markdown]");  /* not the timer over it */
    const files = ready && ready.offsetParent ? ready.innerText.trim() : "";
    say("ready", files);
    if (!files) told.ready = "";
    const details = document.querySelector("#details");
    const rows = details && details.offsetParent ? [...details.querySelectorAll("[role=row][data-index]")] : [];
    const value = field => { const row = rows.find(r => r.querySelector("[data-col='0']")?.innerText.trim() === field);
                             return row ? row.querySelector("[data-col='1']").innerText.trim() : ""; };
    const file = value("file"), where = value("where");
    const place = where && where !== "—" ? ` · ${where}` : "";
    say("details", file && `Details of ${file}${place} shown under the gallery.`);
    if (!file) told.details = "";
  }).observe(document.body, {subtree: true, childList: true});
}"""

# The threshold's number box sends each value as it is typed, and the page sets one outside the slider's range back
# into it at once, with a warning: typing 0.75 sent 0 (set back to 0.5, so the box read 0.575), and emptying the
# box to type anew put the model's threshold in. A value out of range (or no number yet) waits in the box until
# Enter or leaving it; one in range goes at once, as before.
TYPED_THRESHOLD = """() => {
  const held = new WeakSet();
  let passing = false;
  const box = el => el?.matches?.("#threshold input[type=number]") ? el : null;
  document.addEventListener("input", e => {
    const b = box(e.target);
    if (!b || passing) return;
    const v = b.valueAsNumber;
    if (v >= Number(b.min) && v <= Number(b.max)) { held.delete(b); return; }
    e.stopImmediatePropagation(); held.add(b);
  }, true);
  const pass = b => { if (!b || !held.has(b)) return;
                      held.delete(b); passing = true; b.dispatchEvent(new Event("input", {bubbles: true}));
                      passing = false; };
  document.addEventListener("keydown", e => { if (e.key === "Enter") pass(box(e.target)); }, true);
  document.addEventListener("blur", e => pass(box(e.target)), true);
}"""

# A run going, as the page knows it: set as a run's event starts (it also scrolls to where its progress and results
# show), cleared when its results are shown. Gradio drops a click on Run (or Enter in the address box) while that
# event is still going, without a word; Run, Enter or an example then is told here, beside the buttons, instead.
# After Stop (or as the results come), it waits for the run to end (about 50 ms) and starts then. While a run goes
# and the buttons are scrolled out of view (a phone shows the progress in their place), Stop stays at the bottom
# right of the screen.
RUNS = """() => {
  const runs = window.medimgRuns = {going: new Set(), stopping: false, queued: null};
  const note = document.createElement("div");
  note.id = "medimg-busy"; note.setAttribute("role", "status"); note.setAttribute("aria-live", "polite");
  const row = () => document.querySelector("#run")?.parentElement;  /* Run and Stop */
  const tell = text => { const r = row(); if (r && note.previousElementSibling !== r) r.after(note);
                         note.textContent = text; };
  /* Gradio hides the progress as the run ends, a moment before it takes a click on Run again: it counts as going
     until its end is seen. One whose end never came (the connection was lost) is forgotten 3 s after. */
  let hidden = 0;
  const showing = () => { const t = document.querySelector("#counts [data-testid=status-tracker]");
                          return !!t && !t.classList.contains("hide"); };
  const busy = () => {
    if (!runs.going.size) return false;
    if (showing()) { hidden = 0; return true; }
    hidden = hidden || performance.now();
    if (performance.now() - hidden < 3000) return true;
    runs.going.clear(); runs.queued = null; runs.stopping = false; return false;
  };
  let seen = true, watched = null;
  const float = () => {
    const r = row(), stop = document.querySelector("#stop");
    if (r && r !== watched) {
      watched = r;
      new IntersectionObserver(e => { seen = e[e.length - 1].isIntersecting; float(); }).observe(r);
    }
    if (stop) stop.toggleAttribute("data-float", busy() && !seen);
  };
  setInterval(float, 1000);
  const scroll = () => {
    const el = document.getElementById("counts");
    const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
    if (el && el.getBoundingClientRect().top > window.innerHeight * 0.7)
      el.scrollIntoView({behavior: still ? "auto" : "smooth"});
  };
  let starts = 0;
  runs.start = key => { starts += 1; runs.going.add(key); runs.stopping = false; hidden = 0; note.textContent = "";
                        scroll(); setTimeout(float, 50); };
  /* Gradio takes a click on Run again a moment after the run's end is seen here: one in between would be dropped,
     so it is made again until its run starts */
  let ended = -1e9, passing = false;
  const again = (button, tries, from = starts) => setTimeout(() => {
    if (starts !== from || runs.going.size || tries > 20) return;  /* started (and maybe ended) since */
    passing = true; button.click(); passing = false;
    again(button, tries + 1, from);
  }, tries ? 500 : 50);
  runs.end = key => {
    runs.going.delete(key);
    if (runs.going.size) return;
    ended = performance.now(); runs.stopping = false; note.textContent = ""; float();
    if (runs.queued) { again(runs.queued, 0); runs.queued = null; }
  };
  const held = (e, button) => {
    if (passing) return;
    if (busy()) {
      if (runs.stopping) { runs.queued = button; tell("Stopping the run: yours starts as soon as it has stopped."); }
      else if (!showing()) runs.queued = button;  /* its results are coming: this one starts then */
      else tell("A run is going: wait for its results, or press Stop first.");
    } else if (performance.now() - ended < 1000) again(button, 0);
    else return;
    e.preventDefault(); e.stopImmediatePropagation();
  };
  document.addEventListener("click", e => {
    if (e.target.closest?.("#stop")) { if (busy()) runs.stopping = true; return; }
    const button = e.target.closest?.("#run, button[id^=example-]");
    if (button) held(e, button);
  }, true);
  document.addEventListener("keydown", e => {  /* Enter runs (Shift+Enter is a new line) */
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.target.closest?.("#url"))
      held(e, document.querySelector("#run"));
  }, true);
}"""


JOBS = "classify"  # the Gradio queue's concurrency id of the page's runs


def _marks(what: str, key: str) -> str:
    """The JS, run before an event's handler, that tells RUNS a run starts (or its results are shown): it passes
    the event's inputs on as they are."""
    return f"(...inputs) => {{ window.medimgRuns?.{what}({key!r}); return inputs; }}"


INTRO = """# medimg — find the medical images
Drop files (images, DICOM, volumes such as NIfTI or an .mhd with its .raw, whole slides, microscopy stacks, videos, PDF, Word/PowerPoint/Excel, e-mails, zip — many at once) or give a web address. Every image inside is found
and labelled **medical** (x-ray, CT, MRI, ultrasound, histology, dermoscopy, fundus, endoscopy) or
**non-medical** (photo, graphic, document), with how sure the model is. Your files and results are kept
on this server, in a private folder, until you close this page (an hour after your last run at most).
Programs can use the same service through the [JSON API]({root}/docs)."""


def build_ui(worker: Worker, examples: dict[str, list[Path]] | None = None, scratch: Path | None = None) -> gr.Blocks:
    """The page. Each browser session's thumbnails, downloads and uploads (kept for a re-run) live in its own
    folder under `scratch` (private to this process), which Gradio serves as is rather than copying into its
    shared cache; the folder goes when the page is closed, and `scratch` when the caller removes it."""
    cfg = worker.config
    t0 = worker.classifier.threshold  # as the API and the CLI use it (a labels.json may say 0.625)
    if scratch is None:
        scratch = Path(tempfile.mkdtemp(prefix="medimg-ui-"))
        atexit.register(shutil.rmtree, scratch, True)
    gr.set_static_paths([scratch])
    upload_root = Path(gr.utils.get_upload_folder()).resolve()
    key = secrets.token_bytes(16)

    def home(request: gr.Request | None) -> Path:
        """This browser session's folder (named by a keyed hash: another session cannot work it out)."""
        session = str(getattr(request, "session_hash", None))
        return scratch / hmac.new(key, session.encode(), "sha256").hexdigest()[:32]

    busy: set[str] = set()  # sessions with a run going: one at a time each (a double click, Enter then a click)
    busy_lock = threading.Lock()
    last_run: dict[str, float] = {}  # when each session's last run ended (time.monotonic)
    held: set[str] = set()  # sessions whose run Stop reached while it waited for a job slot: it is not started
    listed: dict[str, list[Path]] = {}  # each session's file list as the page shows it now (see ready_now)

    def forget_idle() -> None:
        """Gradio's whole session for each page whose last run ended EXPORT_MAX_AGE ago (its results are gone
        by then): a script's runs have no heartbeat, so close() never comes for them. Under busy_lock."""
        now, holder = time.monotonic(), getattr(demo, "state_holder", None)
        for session, ended in list(last_run.items()):
            if now - ended > EXPORT_MAX_AGE and session not in busy:
                del last_run[session]
                held.discard(session)
                listed.pop(session, None)
                if holder is not None:
                    _forget(holder, session)

    def one_at_a_time(handler):
        """`handler` unless this page already has a run going: then a toast, and nothing changes. It keeps the
        handler's signature, by which Gradio passes the request and progress among the arguments. A run that
        Stop reached while it waited for a job slot (`stop_run`) is not started."""
        @wraps(handler)
        def guarded(*args):
            session = next(a for a in args if isinstance(a, gr.Request)).session_hash
            with busy_lock:
                if session in busy:
                    gr.Warning("Already running: wait for the results, or press Stop.", duration=None)
                    return gr.skip()
                if session in held:
                    held.discard(session)
                    return gr.skip()  # told when Stop was pressed
                forget_idle()
                busy.add(session)
                running[session] = stop = threading.Event()  # set by Stop, or when the page closes
            try:
                return handler(*args)
            finally:
                with busy_lock:
                    busy.discard(session)
                    if running.get(session) is stop:  # the run is over: nothing left to stop
                        del running[session]
                    last_run[session] = time.monotonic()
        return guarded

    def classify(file_paths, url, render, threshold, show, previous, request: gr.Request, progress=gr.Progress()):
        t, fix_threshold = _in_range(threshold, t0)
        given = [(Path(f["path"]), f.get("orig_name")) if isinstance(f, dict) else (Path(f), None)
                 for f in (file_paths or [])]  # FileData, unprocessed
        paths = [p for p, _ in given]
        url = (url or "").strip()
        if not paths and not url:
            gr.Warning("Drop one or more files, or enter a web address, first.", duration=None)
            return gr.skip()
        folder = home(request)
        early: list[Record] = []
        theirs = [p for p in paths if not _mine(p, upload_root, folder)]
        for p in theirs:
            early.append(Record(input=p.name, locator="", error="not a file uploaded on this page"))
        paths = [p for p in paths if p not in theirs]
        names = _names(paths, folder, dict(given))
        inputs: list = []
        data_of: dict[str, str] = {}  # the data files a header among the uploads reads (a.raw: a.mhd)
        if paths:
            inputs.append(_blobs(paths, cfg.limits().max_input_bytes, names, data_of))
        fix_url, fetch = gr.skip(), []
        if url:
            given = _addresses(url)
            if len(given) > MAX_ADDRESSES:
                gr.Warning(f"At most {MAX_ADDRESSES} web addresses at once: the first {MAX_ADDRESSES} are read.",
                           duration=None)
                given = given[:MAX_ADDRESSES]
            fetch, written = [], {a: _web_address(a) for a in given}  # as typed → (URL, problem)
            for address, problem in dict.fromkeys(written.values()):
                problem = problem or url_problem(address, cfg.allow_private, cfg.offline)
                if problem:
                    early.append(Record(input=address, locator="", error=problem))
                else:
                    fetch.append(address)
            fetch = list(once(fetch, fragments=bool(render)))  # spelt twice (HTTP://, /./, #…): read once, as the API
            shown = "\n".join(written[a][0] for a in given)
            if shown != url:
                fix_url = gr.update(value=shown)
            if fetch:
                inputs.append(fetch)
        total = len(paths) + len(fetch)  # the files and addresses read
        found, begun = [0], set()

        def report() -> None:
            """Records come input by input: the one giving them now may have more to come, so it counts as read
            once the next one gives its first (the bar never says 100% while a run goes). One input: no bar."""
            images = f"image{'s' * (found[0] != 1)} classified"
            if total > 1:
                progress((max(len(begun) - 1, 0), total), desc=f"{found[0]} {images}", unit="inputs read")
            else:  # "12 images classified" and the time
                progress((found[0], None), unit=images)

        report()

        def tick(rec: Record) -> None:
            begun.add(rec.source)
            found[0] += rec.ok
            report()

        stop = running.get(request.session_hash)
        if stop is None:  # the page closed while the run was starting
            return gr.skip()
        run_folder = _new_folder(folder)
        try:
            out = worker.run(_chain(inputs), cfg.limits(render=bool(render)), thumbnails=cfg.thumbnail_size,
                             on_record=tick, stop=stop)
        finally:  # into this session's folder: there for a re-run (unless the page has gone: see close)
            closed = gone(request, stop)
            kept_in, kept = (folder, []) if closed else _keep_uploads(paths, folder, upload_root, names)
        if closed:  # nobody is left to see the results, and the session's folder is gone
            shutil.rmtree(folder, ignore_errors=True)
            return gr.skip()
        _drop(previous)
        try:
            results = _keep(early + out.records + _unread([*names, *fetch], begun, stop.is_set(), out.note, data_of),
                            run_folder, stopped=stop.is_set(), note=out.note)
        except OSError:
            if gone(request, stop):  # the page closed meanwhile and took its folder: nobody to tell
                return gr.skip()
            raise
        files_now = gr.update(value=[str(p) for p in _listed_now(paths, kept, listed.get(request.session_hash),
                                                                   upload_root, folder)] or None)
        return (*_views(results, t, show, new=True), fix_threshold, results, files_now, fix_url, str(kept_in),
                (t, show))

    def run_example(name):
        def go(threshold, show, previous, request: gr.Request, progress=gr.Progress()):
            t, fix_threshold = _in_range(threshold, t0)
            progress(0, desc="Looking for images…")
            limits = cfg.limits()
            stop = running.get(request.session_hash)
            if stop is None:  # the page closed while the run was starting
                return gr.skip()
            out = worker.run(_blobs(examples[name], limits.max_input_bytes), limits, thumbnails=cfg.thumbnail_size,
                             stop=stop)
            if gone(request, stop):
                shutil.rmtree(home(request), ignore_errors=True)
                return gr.skip()
            _drop(previous)
            try:
                results = _keep(out.records, _new_folder(home(request)), stopped=stop.is_set(), note=out.note,
                                example=name)
            except OSError:
                if gone(request, stop):  # the page closed meanwhile and took its folder
                    return gr.skip()
                raise
            return (*_views(results, t, show, new=True), fix_threshold, results, gr.skip(), gr.skip(), gr.skip(),
                    (t, show))
        return one_at_a_time(go)

    def refresh(results, threshold, show, opened=None):
        t, fix_threshold = _in_range(threshold, t0)
        return (*_views(results, t, show, opened), fix_threshold)

    def follow(results, threshold, show, used, opened):
        """After a run: its results at the threshold and filter shown now, if they changed while it went (else
        nothing, so that this cannot land after a change made just after the results came)."""
        t, _ = _in_range(threshold, t0, warn=False)
        if used is None or (round(t, 4), show) == (round(used[0], 4), used[1]):
            return gr.skip()
        return refresh(results, threshold, show, opened)

    def _views(results: Results | None, threshold: float, show: str, opened: int | None = None, new: bool = False):
        """What the page shows of `results` (`new`: a run's). `opened` is the image opened in the gallery (its
        record's index): it stays open, with its details at this threshold, while it is still shown; otherwise
        the gallery's preview is closed (left open, it would show whichever image now has its place)."""
        records = results.records if results else []
        recs = relabeled(records, threshold)
        number = {i: n for n, i in enumerate((i for i, r in enumerate(recs) if r.ok), 1)}  # images only
        shown = [i for i, r in enumerate(recs) if r.ok and (show == "all" or r.verdict == show)]
        pictured = [i for i in shown if results.thumbs[i]]  # gallery position → record index
        gallery = [(results.thumbs[i], _caption(recs[i], threshold)) for i in pictured]
        table = [_row(number[i], recs[i], threshold) for i in shown]
        # errors first, then what was passed over (no image in it, decoration, a header's data file), with why
        problems = ([[r.input, r.error, r.locator] for r in recs if not r.ok and not r.skipped]
                    + [[r.input, r.error, r.locator] for r in recs if r.skipped])
        has = bool(records)
        # none when the run's folder has gone (its page was closed): nothing is written for a closed page
        exports = _write_exports(recs, threshold, worker.model_info(), results.folder, _stop_note(results)) \
            if has else None
        has = exports is not None
        csv_path, json_path = exports or ("", "")
        keep = opened in pictured
        if keep:
            pictures = gr.update(value=gallery, visible=bool(gallery), selected_index=pictured.index(opened))
        elif new or opened is not None:  # a component: an update leaves out a None, which closes the preview
            pictures = gr.Gallery(value=gallery, visible=bool(gallery), selected_index=None)
        else:
            pictures = gr.update(value=gallery, visible=bool(gallery))  # no empty box between counts and problems
        return (
            _counts(recs, threshold, show, len(shown), stopped=bool(results and results.stopped),
                    note=results.note if results else None, example=results.example if results else None),
            pictures,
            gr.update(value=_frame(table, (1, 6)), visible=bool(table)),
            gr.update(value=_frame(problems, (0, 2)), visible=bool(problems)),
            pictured,
            gr.update(value=_frame(_details(recs[opened], threshold), (1,)), visible=True) if keep else
            gr.update(value=None, visible=False),
            gr.update(value=str(csv_path) if has else None, interactive=has),
            gr.update(value=str(json_path) if has else None, interactive=has),
            opened if keep else None,
        )

    def select(results, pictured, threshold, evt: gr.SelectData):
        """The details of the image opened, and which it is (its record's index: see _views)."""
        try:
            t = _in_range(threshold, t0, warn=False)[0]
            i = pictured[evt.index]
            rec = relabeled([results.records[i]], t)[0]
        except (AttributeError, IndexError, TypeError, KeyError):
            return gr.update(value=None, visible=False), None
        return gr.update(value=_frame(_details(rec, t), (1,)), visible=True), i

    running: dict[str, threading.Event] = {}  # each session's run going, stopped when its page closes

    def ready_now(file_paths, request: gr.Request):
        """The line under the file list; and the list, kept for the end of a run that goes (see _listed_now)."""
        session = request.session_hash
        with busy_lock:
            listed.pop(session, None)
            listed[session] = [Path(f["path"] if isinstance(f, dict) else f) for f in (file_paths or [])]
            while len(listed) > STATE_SESSIONS:  # the oldest: pages closed without a word (scripts)
                listed.pop(next(iter(listed)))
        return _ready(file_paths)

    def gone(request: gr.Request, stop: threading.Event) -> bool:
        """The run's page has closed (close() took its stop event away and set it): nobody to show it to."""
        return stop.is_set() and running.get(request.session_hash) is not stop

    def waiting(session: str) -> bool:
        """Whether the page has a run waiting in Gradio's queue for a job slot (False where that queue is not
        shaped as Gradio 6 has it)."""
        try:
            line = demo._queue.event_queue_per_concurrency_id.get(JOBS)
            return line is not None and any(e.session_hash == session for e in list(line.queue))
        except (AttributeError, TypeError):
            return False

    def stop_run(request: gr.Request):
        """Stop the page's run: the one going, with what it has found so far; or one still waiting for a job slot
        (the server busy with other pages' runs): it will not start."""
        session, said = request.session_hash, "Nothing is running."
        with busy_lock:
            stop = running.get(session) if session in busy else None
            if stop is not None:
                stop.set()  # the run ends at its next image (or before its first), with what it has found so far
                said = "Stopping: the images found so far are shown."
            elif waiting(session):  # it reaches `guarded` later, under this lock: held there
                held.add(session)
                said = "Stopped before it started (it was waiting for other runs to end): nothing was read."
        gr.Info(said)

    def close(request: gr.Request):
        with busy_lock:
            last_run.pop(request.session_hash, None)
            held.discard(request.session_hash)
            listed.pop(request.session_hash, None)
        stop = running.pop(request.session_hash, None)
        if stop is not None:
            stop.set()  # nobody is left to see it: downloads in progress end now
        shutil.rmtree(home(request), ignore_errors=True)
        # and the whole session Gradio holds for it: its gr.State (results, uploads list, gallery map) stays for
        # an hour, and an event sent with the session's hash (a refresh, a select) would show them, write the
        # downloads again and serve them; its components' values (the table with the file names, the counts)
        # stay until 10,000 newer sessions push them out
        holder = getattr(demo, "state_holder", None)
        if holder is not None:
            _forget(holder, request.session_hash)

    # uploads leave Gradio's upload area after UPLOAD_MAX_AGE (a classified one is linked into its session first)
    with gr.Blocks(title="medimg", delete_cache=(60, UPLOAD_MAX_AGE)) as demo:
        demo.state_session_capacity = STATE_SESSIONS
        records_state = gr.State(None, time_to_live=EXPORT_MAX_AGE, delete_callback=_drop)
        uploads_state = gr.State(None, time_to_live=EXPORT_MAX_AGE, delete_callback=_remove)  # kept uploads
        pictured_state = gr.State([])
        opened_state = gr.State(None)  # the image opened in the gallery: its record's index
        used_state = gr.State(None)  # the threshold and filter the last run's results were shown at
        gr.Markdown(INTRO.format(root=worker.config.root_path.rstrip("/")))
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                files = gr.File(label="Files: images, DICOM, volumes, slides, microscopy, video, PDF, Office, e-mail, zip, 7z, tar", file_count="multiple",
                                type="filepath", elem_id="files")
                # an --offline server fetches nothing: no web address to offer
                url = gr.Textbox(label="…or a web address (Enter runs; Shift+Enter starts a new line: one "
                                       "address per line)", placeholder="https://…",
                                 elem_id="url",
                                 visible=not cfg.offline)
                render = gr.Checkbox(label="Run the page's JavaScript before looking (slower)", value=False,
                                     visible=not cfg.offline and available() is None, container=False)
                with gr.Row():
                    go = gr.Button("Find and classify images", variant="primary", elem_id="run", scale=3)
                    stop_btn = gr.Button("Stop", variant="secondary", elem_id="stop", scale=1, min_width=80)
                example_buttons = []
                if examples:
                    with gr.Row():
                        for name in examples:
                            button = gr.Button(f"Example: {name}", size="sm", elem_classes=["example"],
                                               elem_id=f"example-{len(example_buttons)}")
                            example_buttons.append((name, button))
                # how many files are listed (the list shows a few); last in the column, so that its showing up
                # after an upload moves none of the controls above it
                ready = gr.Markdown("", elem_id="ready", visible=False)
            with gr.Column(scale=2, min_width=260):
                threshold = gr.Slider(LOWEST, HIGHEST, value=t0, step=slider_step(t0),
                                      label="How sure before saying medical or not",
                                      info="Below this, an image is 'uncertain' (each caption says how sure: medical "
                                           "99%, non-medical 97%). Changing it re-labels instantly.",
                                      elem_id="threshold")
                show = gr.Radio(FILTERS, value="all", label="Show", elem_id="filter")
                with gr.Row():
                    csv_btn = gr.DownloadButton("Download all (CSV)", interactive=False, elem_id="csv", size="sm")
                    json_btn = gr.DownloadButton("Download all (JSON)", interactive=False, elem_id="json", size="sm")
        counts = gr.Markdown("No results yet.", elem_id="counts")
        # hidden until there are results (empty, it is a box named "Empty value")
        gallery = gr.Gallery(label="Images found (click one: its details show under the gallery)", columns=5,
                             visible=False, height="auto", fit_columns=False, object_fit="contain",
                             elem_id="gallery", interactive=False, buttons=["fullscreen"])
        details = gr.Dataframe(headers=["field", "value"], label="Selected image", visible=False,
                               interactive=False, wrap=True, datatype=["str", "html"], elem_id="details",
                               elem_classes=["fit"], column_widths=DETAILS_WIDTHS)
        table = gr.Dataframe(headers=TABLE_HEADERS, label="All images", visible=False, interactive=False,
                             wrap=True, column_widths=TABLE_WIDTHS, datatype=TABLE_TYPES, elem_id="table",
                             elem_classes=["fit"])
        problems = gr.Dataframe(headers=PROBLEM_HEADERS, label="Not classified: could not be read, or passed over",
                                visible=False, interactive=False, wrap=True, column_widths=PROBLEM_WIDTHS,
                                datatype=["html", "str", "html"], elem_id="problems", elem_classes=["fit"])

        view_outputs = [counts, gallery, table, problems, pictured_state, details, csv_btn, json_btn, opened_state,
                        threshold]
        run_outputs = view_outputs + [records_state, files, url, uploads_state, used_state]
        # inputs unprocessed: Gradio's slider check would put an error over every output for a threshold typed
        # out of range; the handlers bring it back in range with a toast instead
        raw = dict(preprocess=False)
        queue = dict(concurrency_limit=cfg.max_jobs, concurrency_id=JOBS, **raw)
        light = dict(concurrency_limit=None, **raw)  # no model run: never queue behind classification
        # progress over the results only: the file list, address and threshold stay readable while a run goes
        queue.update(show_progress_on=[counts, gallery])
        run = one_at_a_time(classify)
        runs = [(go.click(run, [files, url, render, threshold, show, records_state], run_outputs,
                          js=_marks("start", "run"), **queue), "run"),
                (url.submit(run, [files, url, render, threshold, show, records_state], run_outputs,
                            js=_marks("start", "url"), **queue), "url")]
        for i, (name, button) in enumerate(example_buttons):
            runs.append((button.click(run_example(name), [threshold, show, records_state], run_outputs,
                                      js=_marks("start", f"example-{i}"), **queue), f"example-{i}"))
        for event, which in runs:  # a threshold or filter changed while the run went: the results follow it now
            event.then(follow, [records_state, threshold, show, used_state, opened_state], view_outputs,
                       js=_marks("end", which), **light)
        stop_btn.click(stop_run, None, None, **light)
        threshold.change(refresh, [records_state, threshold, show, opened_state], view_outputs,
                         trigger_mode="always_last", **light)
        show.change(refresh, [records_state, threshold, show, opened_state], view_outputs, **light)
        gallery.select(select, [records_state, pictured_state, threshold], [details, opened_state], **light)
        gallery.preview_close(lambda: None, None, opened_state, **light)
        files.change(ready_now, files, ready, **light)
        demo.load(None, None, None, js=ANNOUNCE_RESULTS)
        demo.load(None, None, None, js=KEEP_FOCUS)
        demo.load(None, None, None, js=TYPED_THRESHOLD)
        demo.load(None, None, None, js=RUNS)
        demo.unload(close)  # the page was closed (or reloaded): its session's files go now
    # events waiting at once, as the API's requests: past it, "the queue is full" at once rather than a wait
    # behind one client's hundred runs
    demo.queue(max_size=WAITING_PER_JOB * cfg.max_jobs + 8)
    return demo


def _ready(file_paths) -> dict:
    """The line under the file list: how many files a run would read (hidden when there are none)."""
    n = len(file_paths or [])
    return gr.update(value=f"{n} file{'s' * (n != 1)} ready to run" if n else "", visible=bool(n))


def _unread(inputs: list[str], begun: set, stopped: bool, note: str | None,
            data_of: dict[str, str] | None = None) -> list[Record]:
    """A row for each input a stopped run (Stop, or its time limit) never came to: said in the table of problems
    and the downloads, not left out of them without a word (a data file whose header it came to: its note)."""
    if not (stopped or note):
        return []
    why = "not read: the run was stopped before it" if stopped else "not read: the time limit was reached before it"
    return unread_rows(inputs, begun, why, data_of)


def _listed_now(ran: list[Path], kept: list[Path], now: list[Path] | None, upload_root: Path,
                folder: Path) -> list[Path]:
    """The file list a run leaves on the page: the list as the page shows it now (files may have been added or
    removed while the run went), each file the run read swapped for its kept copy; the run's kept files alone when
    the page never said its list, or a file could not be kept."""
    if now is None or len(kept) != len(ran):
        return kept
    swap: dict[Path, list[Path]] = {}  # one file listed twice (added twice: one path in Gradio's upload area) has
    for p, k in zip(ran, kept):        # a kept copy for each time, in turn; one swap collapsed them into the last
        swap.setdefault(p, []).append(k)
    return list(dict.fromkeys(swap[p].pop(0) if swap.get(p) else p for p in now
                              if p in swap or _mine(p, upload_root, folder)))


def _forget(holder, session: str | None) -> None:
    """Drop everything Gradio's StateHolder keeps for a session: its gr.State values (through delete_state, so
    their delete callbacks run) and then the session itself (`session_data`: the components' values as last
    shown, `time_last_used`), so nothing of it is left to show, to an event or to /gradio_api/deep_link. An
    event sent with the hash afterwards gets a new, empty session."""
    if not session:
        return
    if session in holder:
        holder.delete_state(session)
    with holder.lock:
        holder.session_data.pop(session, None)
        getattr(holder, "time_last_used", {}).pop(session, None)


def slider_step(threshold: float) -> float:
    """The threshold slider's step: 0.01, or as fine as the model's own threshold needs to be on it (0.001 for a
    labels.json's 0.625), so that the page starts at the threshold the API and the CLI use, not a rounded one."""
    for places in range(2, 7):
        if round(threshold, places) == threshold:
            return 10.0 ** -places
    return 1e-6


def _in_range(value, default: float, warn: bool = True) -> tuple[float, dict]:
    """The threshold to use, and the slider's update: unchanged, or set back into its range."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = math.nan
    if LOWEST <= t <= HIGHEST:
        return t, gr.skip()
    use = min(max(t, LOWEST), HIGHEST) if math.isfinite(t) else default
    if warn:
        text = "" if value is None else str(value).strip()
        given = "an empty box" if not text else text if math.isfinite(t) else f"“{text[:20]}”"
        gr.Warning(f"The threshold goes from {LOWEST:g} to {HIGHEST:g}, so {use:g} is used instead of {given}.",
                   duration=None)
    return use, gr.update(value=use)


MAX_ADDRESSES = 20  # web addresses in the box at once (each is a whole page to fetch)
_HOST = re.compile(r"(localhost|[\w-]+(\.[\w-]+)+)(:\d+)?([/?#].*)?", re.IGNORECASE)  # a space in the path too
# a run of spaces (from its start: a long run is not tried again from each of its spaces) before a scheme or www.
_NEXT_ADDRESS = re.compile(r"(?<!\s)\s++(?=[A-Za-z][A-Za-z0-9+.-]*+://|www\.)", re.IGNORECASE)


def _addresses(text: str) -> list[str]:
    """The web addresses typed: one per line, or several on a line where each starts with its scheme (or www.);
    other spaces are part of an address (`…/my cases.html`, fetched as `my%20cases.html`, as a browser does)."""
    return [a.strip() for line in text.splitlines() for a in _NEXT_ADDRESS.split(line) if a.strip()]


def _web_address(text: str) -> tuple[str, str | None]:
    """The URL to fetch and any problem: a host name typed without its scheme gets https://; a data: URI is read
    as the API and the command line read one. A long text is quoted by its start."""
    if "://" in text or text[:5].lower() == "data:":
        return text, None
    if _HOST.fullmatch(text):
        return "https://" + text, None
    shown = text if len(text) <= 80 else text[:60] + "…"
    return text, f"“{shown}” is not a web address: give one such as https://example.org/page"


def _blobs(paths: Iterable[Path], cap: int, names: list[str] | None = None,
           data_of: dict[str, str] | None = None) -> Iterator[Blob]:
    """Uploaded files by their own names (not the temporary paths), read one at a time; each can read
    another of them by name (a detached header's data file). Their results go by `names` if given. `data_of` is
    filled with {a data file's name: its header's}, by those names, once the first file is read."""
    paths = list(paths)
    claims: dict[str, str] = {}
    blobs = blobs_together([(p.name, partial(_read_head, p), None) for p in paths], cap, claims)
    given = unique_names([p.name for p in paths])
    named = dict(zip(given, given if names is None else names))  # the name blobs_together gives → ours
    for b in blobs:
        if data_of is not None and claims:
            data_of.update((named[k], named.get(v, v)) for k, v in claims.items())
            claims = {}
        yield b if names is None else replace(b, origin=named[b.name], name=named[b.name],
                                              data_of=named.get(b.data_of, b.data_of))


def _names(paths: list[Path], folder: Path, given: dict[Path, str | None] | None = None) -> list[str]:
    """The names the uploads' results go by. One kept from the session's last run keeps the name it had then
    (in its sub-folder's: see _keep_uploads), so that removing one of two scan.png renames neither; a new upload
    goes by the name the browser gave (`given`: see _given_name); each gets one that no other has (scan (2).png)."""
    mine, given = folder.resolve(), given or {}
    return unique_names([p.parent.name[3:] if p.parent.name.startswith("as ") and mine in p.resolve().parents
                         else _given_name(p, given.get(p)) for p in paths])


def _given_name(path: Path, orig: object) -> str:
    """The file's own name, as the browser sent it, where Gradio stored the upload under a shortened or stripped
    one (at most 200 bytes; no ? ! $ { } : * " < > |), so that the results (and the API's, and the CLI's) go by
    the name in the user's folder. Only a name Gradio would have stored as this very file's is taken."""
    if not (isinstance(orig, str) and orig != path.name and orig.isprintable() and "/" not in orig
            and "\\" not in orig and orig.strip(" .") and len(os.fsencode(orig)) <= 1000):
        return path.name
    try:
        from gradio_client.utils import strip_invalid_filename_characters as stored
        # a browser sends a name's " as %22 in the upload's form (HTML's multipart encoding): Gradio keeps that
        return orig if path.name in (stored(orig), stored(orig.replace('"', "%22"))) else path.name
    except (ImportError, ValueError, TypeError):
        return path.name


def _read_head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _chain(groups: list) -> Iterator:
    for group in groups:
        yield from group


def _mine(path: Path, upload_root: Path, folder: Path) -> bool:
    """A file uploaded on this page: in Gradio's upload area, or kept in this session's folder for a re-run, as
    named and as it resolves (not a link there, such as /proc/self/fd/N: see guard.py)."""
    try:
        given, p = Path(os.path.abspath(path)), path.resolve()
        roots = {upload_root, upload_root.absolute(), folder.absolute(), folder.resolve()}
    except (OSError, RuntimeError):  # a symbolic link in a loop: Python 3.11–3.12 raise RuntimeError
        return False
    return p.is_file() and any(r in p.parents for r in roots) and any(r in given.parents for r in roots)


def _keep_uploads(paths: list[Path], home: Path, upload_root: Path,
                  names: list[str] | None = None) -> tuple[Path, list[Path]]:
    """Take this run's uploads into a new uploads folder of the session, readable by this process alone: each
    under its own name in a sub-folder "as <the name its results go by>" (`names`), so two of one name stay
    apart and each keeps its results' name in the next run; then delete the session's earlier uploads folder,
    with any file no longer listed. A file in Gradio's upload area is linked (or copied), never moved: that
    area is shared and named by content, so another page may have uploaded the very same file; Gradio deletes
    it there after UPLOAD_MAX_AGE. One kept from the session's last run is moved."""
    into = _new_folder(home, "uploads-")
    kept = []
    for i, (p, name) in enumerate(zip(paths, names or unique_names([p.name for p in paths]))):
        try:
            sub = f"as {name}" if len(os.fsencode(f"as {name}")) <= 255 else str(i)  # a name near the limit
            dest = into / sub / p.name
            dest.parent.mkdir(mode=0o700)
            if upload_root in p.resolve().parents:
                try:
                    os.link(p, dest)
                except OSError:
                    shutil.copyfile(p, dest)
            else:
                shutil.move(p, dest)
            dest.chmod(0o600)
            kept.append(dest)
        except OSError:
            pass
    for old in home.glob("uploads-*"):
        if old != into:
            shutil.rmtree(old, ignore_errors=True)
    return into, kept


def _where(r: Record) -> str:
    return f"{r.input} · {r.locator}" if r.locator else r.input


def _position(r: Record) -> str:
    """The locator, plus where on the page an image sits when the source says (PDF points from top left)."""
    box = (r.metadata or {}).get("bbox")
    if not (isinstance(box, (list, tuple)) and len(box) == 4):
        return r.locator
    x0, y0, x1, y1 = (float(v) for v in box)
    return f"{r.locator} · at x {x0:.0f}, y {y0:.0f} pt, {x1 - x0:.0f}×{y1 - y0:.0f} pt"


def _caption(r: Record, threshold: float | None = None) -> str:
    """Verdict with how sure the model is of it (the number the threshold is held against: p(medical), or
    1 − p(medical) for non-medical), then the label's own confidence and where the image came from. Given the
    threshold, the number keeps the decimals it needs to stay on its verdict's side of it (an uncertain 96.8% at
    0.97, not 97%)."""
    t = threshold
    if r.verdict == "medical":
        sure = f"medical {_percent(r.p_medical, lambda v: t is None or v >= t)}"
    elif r.verdict == "non-medical":
        sure = f"non-medical {_percent(1 - r.p_medical, lambda v: t is None or v >= t)}"
    else:
        # as verdict_for decides (p + t ≤ 1, not p ≤ 1 − t: 1 − 0.8 < 0.2), so 20% at 0.8 is not called uncertain
        between = _percent(r.p_medical, lambda v: t is None or verdict_for(v, t) == "uncertain")
        sure = f"{r.verdict} (medical {between})"
    return f"{sure} · {r.label} {r.confidence:.0%} · {_where(r)}"


def _percent(p: float, fits) -> str:
    """p as a whole percent, or with the fewest decimals whose rounded value still `fits` (as many as a float
    holds: an uncertain 0.9999999 at threshold 1 is 99.99999%, not 100%). The value is read as typed (53.3e-2 is
    the 0.533 a threshold typed so is; 53.3 / 100 is below it in floats)."""
    for places in range(16):
        text = f"{p * 100:.{places}f}"
        if fits(float(text + "e-2")):
            break
    return text + "%"


def _frame(rows: list[list], names: tuple[int, ...]) -> dict | None:
    """A table's value: its rows as they are, shown with the columns `names` (file names, places, web
    addresses) as HTML that may wrap after / _ - : ? & = or before a dot (not within a number, not before the
    extension), rather than mid-word."""
    if not rows:
        return None
    shown = [[_breakable(v) if j in names else str(v) for j, v in enumerate(row)] for row in rows]
    return {"data": rows, "metadata": {"display_value": shown}}


def _breakable(text: object) -> str:
    parts = re.split(r"(?<=[/_:?&=])|(?<=-)(?=\D)|(?=\.\D)(?!\.[^./]*$)", str(text))  # not before the extension
    return "<wbr>".join(html.escape(part) for part in parts)


def _row(n: int, r: Record, threshold: float) -> list:
    """A table row; p(medical) stays on its verdict's side of the threshold (an uncertain 0.95999 at 0.96)."""
    return [n, r.input, r.verdict, r.label, f"{r.confidence:.3f}", p_text(r.p_medical, threshold), _position(r),
            f"{r.width}×{r.height}"]


def _counts(recs: list[Record], threshold: float, show: str = "all", n_shown: int = 0, stopped: bool = False,
            note: str | None = None, example: str | None = None) -> str:
    if not recs:
        return "Stopped before any image was found." if stopped else "No results yet."
    s = summarize(recs)
    v = s["verdicts"]
    # an example's: not the files listed above, which stay there for a run of their own
    whose = f" in the example “{example}” (not your files)" if example else ""
    parts = [f"**{s['images']} image{'s' * (s['images'] != 1)}**{whose}", f"{v.get('medical', 0)} medical",
             f"{v.get('non-medical', 0)} non-medical", f"{v.get('uncertain', 0)} uncertain"]
    if s["errors"]:
        parts.append(f"{s['errors']} could not be read" + ("" if s["skipped"] else " (why: see below)"))
    # an input read in part (a cap, its time): not one with nothing in it, which a curator may pass over too
    cut = sum(1 for r in recs if r.skipped and cut_short(r.error))
    if cut:
        parts.append(f"{cut} not read to the end (why: see below)")
    if s["skipped"] > cut:
        parts.append(f"{s['skipped'] - cut} passed over (no image in it, or too small to matter: see below)")
    shown_t = f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:g}"  # 0.60; a typed 0.955 whole
    text = " · ".join(parts) + f" (threshold {shown_t})"
    if stopped:
        text = "Stopped: " + text
    if note:  # the time limit
        text += f" — {note}"
    return text if show == "all" else text + f" — showing the {n_shown} {show}"


def _details(r: Record, threshold: float) -> list[list[str]]:
    rows = [["file", r.input], ["where", _position(r) or "—"], ["verdict", r.verdict], ["label", r.label],
            ["label confidence", f"{r.confidence:.3f}"], ["p(medical)", p_text(r.p_medical, threshold)],
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
    stopped: bool = False  # Stop was pressed before the run's end
    note: str | None = None  # why the run stopped short on its own (the time limit)
    example: str | None = None  # the example these are the results of


def _new_folder(home: Path, prefix: str = "") -> Path:
    """A fresh folder (for one run's results, or the uploads kept for a re-run) in a session's folder, both
    0700; session folders of pages that went away without a word are swept after an hour."""
    root = home.parent
    now = time.time()
    for old in root.iterdir():
        try:
            if old != home and now - old.stat().st_mtime > EXPORT_MAX_AGE:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    home.mkdir(mode=0o700, exist_ok=True)
    folder = home / (prefix + uuid.uuid4().hex)
    folder.mkdir(mode=0o700)
    return folder


def _keep(records: list[Record], folder: Path, stopped: bool = False, note: str | None = None,
          example: str | None = None) -> Results:
    """Move thumbnails out of memory into files in `folder`, readable by this process alone; names that are
    not UTF-8 are kept readable (see export.readable), as the page and its downloads show them."""
    thumbs: list[str | None] = []
    for i, r in enumerate(records):
        path = None
        if r.thumbnail is not None:
            path = folder / f"{i:05d}.jpg"
            buf = io.BytesIO()
            r.thumbnail.save(buf, "JPEG", quality=88)
            _write_private(path, buf.getvalue())
            r.thumbnail = None
        thumbs.append(str(path) if path else None)
    return Results([readable(r) for r in records], thumbs, folder, stopped, note, example)


def _write_private(path: Path, data: bytes) -> None:
    """A new file only this process's user can read (0600, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _drop(results: Results | None) -> None:
    if isinstance(results, Results):
        shutil.rmtree(results.folder, ignore_errors=True)


def _remove(folder: str | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _stop_note(results: Results) -> str | None:
    """Why a run's downloads may hold fewer results than its inputs: it was stopped."""
    if results.note:
        return results.note
    return "stopped with Stop: these are the results found until then" if results.stopped else None


def _write_exports(recs: list[Record], threshold: float, model: dict, folder: Path,
                   note: str | None = None) -> tuple[Path, Path] | None:
    """CSV and JSON of these results at this threshold, in a new sub-folder of the run's folder (each download
    is its own file); None when that folder has gone (the page was closed): it is never made again. The CSV
    starts with a byte-order mark, by which spreadsheets (Excel) know it is UTF-8."""
    out = folder / f"export-{uuid.uuid4().hex[:8]}"
    try:
        out.mkdir(mode=0o700)
    except FileNotFoundError:
        return None
    name = f"medimg-results-threshold-{threshold:g}"  # downloads at two thresholds differ in their verdicts
    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    _write_private(csv_path, to_csv(recs, threshold).encode("utf-8-sig"))
    _write_private(json_path, to_json(recs, threshold, model, note).encode("utf-8"))
    # the two latest stay (one may be downloading as the page changes its links); each change of the
    # threshold or filter wrote a new pair, and nothing else removed them until the next run
    for old in sorted(folder.glob("export-*"), key=_made, reverse=True)[EXPORTS_KEPT:]:
        shutil.rmtree(old, ignore_errors=True)
    return csv_path, json_path


def _made(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
