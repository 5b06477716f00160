"""The corpus `<label>/<source>/<file>`: scan it, split it by source, and cache it decoded as uint8."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import posixpath
import time
import unicodedata
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model.preprocess import resize_rgb

HERE = Path(__file__).parent
GROUPS_CSV = HERE / "label_groups.csv"
EXCLUDE_CSV = HERE / "exclude.csv"
OWN_GROUPS, OWN_EXCLUDE = "label_groups.csv", "exclude.csv"  # a corpus's own, beside its label folders
# single images, read as `classify` reads them (a file's first image: page 1, frame 1, the middle slice)
IMAGE_EXT = {".webp", ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".jp2", ".j2k",
             ".jxl", ".heic", ".heif", ".avif", ".dcm", ".dicom"}
IMAGE_KINDS = {"image", "jxl", "dicom", "microscopy", "slide"}  # sources whose files are images
KEEP_CACHES = 3  # corpora whose decoded sources the cache folder keeps, the most recently used
ABANDONED_AFTER = 3600  # seconds untouched after which a cache no kept corpus names, or a dead run's temporary file, goes
DECODER = "sources-1"  # in the cache key: a change to how files are decoded for training is a new cache


class Note(str):
    """A note about the corpus (files not read, left out, unreadable): every fold scans and loads the corpus
    again, so a log may print each only once."""


class CorpusError(ValueError):
    """The corpus cannot be trained on as it is (its layout, its labels, nothing readable in a label or a
    fold): said to the user as a usage error, before or instead of training."""


def label_groups(path: Path = GROUPS_CSV) -> dict[str, bool]:
    """label → is medical, from the label config (a new corpus label needs a row there)."""
    groups = {}
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel's "CSV UTF-8" starts with a BOM
        rows = csv.DictReader(f)
        rows.fieldnames = _header(rows.fieldnames)
        if not {"label", "group"} <= set(rows.fieldnames):
            raise CorpusError(f"{path}: give a header row label,group")
        for r in rows:
            group = (r.get("group") or "").strip().lower()
            if group not in ("medical", "non-medical"):
                raise CorpusError(f"{path}: label {r.get('label')!r} has group {r.get('group')!r}; "
                                 "write medical or non-medical")
            groups[unicodedata.normalize("NFC", (r.get("label") or "").strip())] = group == "medical"
    return groups


def excluded(path: Path = EXCLUDE_CSV) -> dict[str, str]:
    """path (relative to the corpus) → why it is left out, from an exclude file (header path,reason, or path
    alone; an empty reason reads "listed in exclude.csv")."""
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.DictReader(f)
        rows.fieldnames = _header(rows.fieldnames)
        if "path" not in rows.fieldnames:
            raise CorpusError(f"{path}: give a header row path,reason (or path)")
        out, line = {}, rows.line_num
        for r in rows:
            if any("\n" in v or "\r" in v for v in r.values() if isinstance(v, str)):  # the rows after it: one field
                raise CorpusError(f"{path}, line {line + 1}: a quote (\") opened there is not closed, so every row "
                                  "after it would be read as one field and none of them left out: close it or take "
                                  "it out")
            line = rows.line_num
            if (r["path"] or "").strip():
                out[_rel(r["path"])] = (r.get("reason") or "").strip() or f"listed in {path.name}"
        return out


def _header(names) -> list[str]:
    """A CSV header as read: `Path, Reason` (a spreadsheet's) is path,reason."""
    return [(c or "").strip().lower() for c in names or []]


def _rel(path: str) -> str:
    """A path as the corpus's are compared (photo/b/0.png): `./photo/b/0.png` and `photo\\b\\0.png` are it too."""
    return posixpath.normpath(path.strip().replace("\\", "/"))


def corpus_groups(root: str | Path) -> dict[str, bool]:
    """The shipped label groups, and a corpus's own from `label_groups.csv` beside its label folders (a file of
    that name with other columns is the data's own, not ours: passed over)."""
    own = Path(root) / OWN_GROUPS
    return label_groups() | (label_groups(own) if _ours(own, {"label", "group"}) else {})


def corpus_excluded(root: str | Path) -> dict[str, str]:
    """The files left out: the shipped corpus's list, and a corpus's own `exclude.csv` (`own_excluded`)."""
    return excluded() | own_excluded(root)[0]


def own_excluded(root: str | Path) -> tuple[dict[str, str], str | None]:
    """A corpus's own `exclude.csv` beside its label folders: its rows, and a note of what was made of it
    when that is not plain. Read when its header is path,reason or path alone (more columns beside those two
    are fine); any other header with a path column, such as a data list's (path,label,source,license), is the
    data's own and is passed over, as is a file without a path column (a list with no header row)."""
    path = Path(root) / OWN_EXCLUDE
    cols = _columns(path)
    if cols is None:
        return {}, None
    if _exclude_list(cols):
        rows = excluded(path)
        note = (f"{OWN_EXCLUDE} has a path column and no reason: its {len(rows)} rows are read as files to leave "
                f"out (reason 'listed in {OWN_EXCLUDE}')") if "reason" not in cols and rows else None
        return rows, note
    said = ", ".join(sorted(cols)) or "none"
    return {}, (f"{OWN_EXCLUDE} is not read as files to leave out: its header ({said}) is not path,reason or path "
                "alone, so it reads as the data's own list; nothing is left out by it (to leave files out, give it "
                "a first row path or path,reason)")


def settings_files(root: str | Path) -> set[str]:
    """The names of the files beside the label folders that are the corpus's settings medimg reads (its own
    `label_groups.csv` and `exclude.csv`, when their headers are ours), not data."""
    root = Path(root)
    own = {OWN_GROUPS} if _ours(root / OWN_GROUPS, {"label", "group"}) else set()
    return own | ({OWN_EXCLUDE} if _exclude_list(_columns(root / OWN_EXCLUDE) or set()) else set())


def _exclude_list(cols: set[str]) -> bool:
    """Whether an exclude.csv header (`_columns`) is one of ours: path and reason, or path alone."""
    return "path" in cols and ("reason" in cols or cols == {"path"})


def _columns(path: Path) -> set[str] | None:
    """The named columns of a CSV file's header (`_header`), or None when there is no such file."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            return set(_header(next(csv.reader(f), []))) - {""}
    except OSError:
        return None


def _ours(path: Path, columns: set[str]) -> bool:
    """Whether `path` is a CSV file whose header holds `columns`."""
    return columns <= (_columns(path) or set())


def default_cache() -> str:
    """Where decoded corpora are cached between runs: $XDG_CACHE_HOME/medimg, else ~/.cache/medimg."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "medimg")

@dataclass
class Corpus:
    root: Path
    paths: list[str]  # relative to root
    labels: list[str]  # ordered label set
    y: np.ndarray  # label index per file
    source: list[str]  # "label/source" per file
    medical: dict[str, bool]

    @property
    def sources(self) -> list[str]:
        return sorted(set(self.source))

    def summary(self) -> dict:
        out: dict = {}
        for s in self.source:
            out[s] = out.get(s, 0) + 1
        return dict(sorted(out.items()))


def scan(root: str | Path, exclude: dict[str, str] | None = None, groups: dict[str, bool] | None = None,
         per_source: int | None = None, seed: int = 0, log=None) -> Corpus:
    """Every image under root/<label>/<source>/…; labels are the folder names. Hidden files and folders
    (a dot first) are left out; `log` hears about files left out for another reason. ValueError says what
    is wrong with the layout (no labels, a label without images, a label the config does not know)."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root} is not a folder")
    exclude = corpus_excluded(root) if exclude is None else exclude
    groups = corpus_groups(root) if groups is None else groups
    dirs = _label_dirs(root)
    labels = sorted(dirs)
    unknown = [lb for lb in labels if lb not in groups]
    if unknown and len(unknown) == len(labels) and root.resolve().name.lower() in {g.lower() for g in groups}:
        raise CorpusError(f"{root} is itself the label folder {root.resolve().name}/ (its folders are its sources): "
                          f"give the folder that holds the label folders ({root.resolve().parent})")
    if unknown:
        hints = [f"{lb!r} (did you mean {known!r}?)" for lb in unknown
                 for known in groups if known.lower() == lb.lower()]
        raise CorpusError(f"labels {', '.join(hints) or unknown} are not medimg's: rename the folders, or say "
                          f"which are medical in {root / OWN_GROUPS} (a header label,group, then a row a label; "
                          "group medical or non-medical)")
    if not labels:
        loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXT]
        raise CorpusError(f"no label folders in {root}" + (f": its {len(loose)} images lie directly in it; lay them "
                                                           "out as <label>/<source>/<image>" if loose else ""))
    beside = sorted(p.name for p in root.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.name not in (OWN_GROUPS, OWN_EXCLUDE))
    if beside and log:  # a MANIFEST.csv is not read: a file missing from it or mislabelled in it changes nothing
        log(Note(f"{len(beside)} files beside the label folders are not read ({', '.join(beside[:3])}"
                 f"{', …' if len(beside) > 3 else ''}): labels and sources are the folders' names"))
    found_in: dict[tuple[str, str], list[Path]] = {}  # (label, source) → its image files, links followed
    reals: dict[str, str] = {}  # each folder walked → its real path, as the walk found it
    matched: set[str] = set()
    if log:  # a label or source folder on a drive not mounted: neither folder nor file, so would go unseen
        for folder, what in [(root, "beside the label folders"), *((dirs[lb], f"in {lb}/") for lb in labels)]:
            dead = sorted(d.name for d in folder.iterdir()
                          if d.is_symlink() and not d.exists() and not d.name.startswith("."))
            if dead:
                log(Note(f"links {what} that lead nowhere are not read: {', '.join(dead[:3])}"
                         f"{', …' if len(dead) > 3 else ''}"))
    for lb in labels:
        loose = [p.name for p in dirs[lb].iterdir() if p.is_file() and not p.name.startswith(".")]
        if loose and log:
            log(Note(f"{lb}/: {len(loose)} files directly in the label folder are not read (e.g. {loose[0]}); "
                     f"put them in a <source>/ folder"))
        for src in sorted(d for d in dirs[lb].iterdir() if d.is_dir() and not d.name.startswith(".")):
            found, broken, unreadable = _files(src, reals)
            if broken and log:
                log(Note(f"{lb}/{src.name}: links that lead nowhere are not read: {len(broken)} (e.g. {broken[0]})"))
            if unreadable and log:
                log(Note(f"{lb}/{src.name}: files or folders that could not be read are left out: {len(unreadable)} "
                         f"(e.g. {unreadable[0]})"))
            files = [p for p in found if p.suffix.lower() in IMAGE_EXT or _dicom(p)]
            if log and len(files) < len(found):
                kept = set(files)
                other = sorted({p.suffix.lower() or p.name for p in found if p not in kept})
                log(Note(f"{lb}/{src.name}: {len(found) - len(files)} files that are not {'/'.join(sorted(IMAGE_EXT))} "
                         f"(or DICOM) are not read ({', '.join(other[:5])})"))
            listed = {p.relative_to(root).as_posix() for p in files} & exclude.keys()
            matched |= listed
            found_in[(lb, src.name)] = [p for p in files if p.relative_to(root).as_posix() not in listed]
    _once(root, found_in, log, reals)
    rng = np.random.default_rng(seed)
    paths, ys, srcs = [], [], []
    for i, lb in enumerate(labels):
        n_label = 0
        for (label, src), files in found_in.items():
            if label != lb:
                continue
            n_label += len(files)
            if per_source and len(files) > per_source:
                files = [files[j] for j in sorted(rng.choice(len(files), per_source, replace=False))]
            for p in files:
                paths.append(p.relative_to(root).as_posix())
                ys.append(i)
                srcs.append(f"{lb}/{src}")
        if not n_label:
            raise CorpusError(f"label folder {dirs[lb].name}/ has no images in <source>/ folders under it "
                             f"({', '.join(sorted(IMAGE_EXT))}): add some, or remove the folder")
    if log:
        _say_excluded(root, matched, log)
    return Corpus(root, paths, labels, np.array(ys, np.int64), srcs, {lb: groups[lb] for lb in labels})


def _label_dirs(root: Path) -> dict[str, Path]:
    """label → its folder. A label is its folder's name in Unicode's composed form (NFC): a corpus copied from a
    Mac or out of a zip made there spells `Röntgen/` decomposed, as `label_groups.csv` and labels.json do not."""
    dirs: dict[str, Path] = {}
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            lb = unicodedata.normalize("NFC", d.name)
            if lb in dirs:
                raise CorpusError(f"{root}: the folders {dirs[lb].name!r} and {d.name!r} are one label {lb!r} spelt "
                                  "in two Unicode forms: put their sources in one folder")
            dirs[lb] = d
    return dirs


def _once(root: Path, found_in: dict[tuple[str, str], list[Path]], log, reals: dict[str, str] | None = None) -> None:
    """Each file once, though links reach it twice (`xray/b` a link to `xray/a`, `ct/a/x.png` a link into
    `photo/`): kept where it lies, when it lies under a source folder without a link on the way, else where it is
    first found; the other ways to it are dropped from `found_in`, so no image is both trained on and held out,
    or trained on under two labels. `reals`: the folders' real paths the walk found (`_files`)."""
    top = os.path.realpath(root)
    real, here = _real_paths([p for files in found_in.values() for p in files], root, top, reals)
    lies = {r for p, r in real.items() if r == here[p]}
    kept: dict[str, Path] = {}  # real path → the way to it kept
    dropped = []
    for key, files in found_in.items():
        keep = []
        for p in files:
            r = real[p]
            if r in kept or (r in lies and r != here[p]):
                dropped.append(p)
            else:
                kept[r] = p
                keep.append(p)
        found_in[key] = keep
    if dropped and log:  # the file lying where it is comes later in the walk at worst: kept by now
        p = dropped[0]
        log(Note(f"{len(dropped)} files reached a second way, through links, are read once, where they lie (e.g. "
                 f"{p.relative_to(root).as_posix()}, the same file as {kept[real[p]].relative_to(root).as_posix()})"))


def _real_paths(paths: list[Path], root: Path, top: str, reals: dict[str, str] | None = None
                ) -> tuple[dict[Path, str], dict[Path, str]]:
    """Each path's os.path.realpath, and where under `top` (root's real path) it would be with no link on the
    way: each folder resolved once, or taken from `reals` (the walk's real path of it), a file that is no link
    being its real folder's (realpath and relative_to of every file took half of a 15,000-file scan)."""
    reals = reals or {}
    folders: dict[str, tuple[str, str]] = {}
    real, here = {}, {}
    for p in paths:
        path = os.fspath(p)
        folder, name = os.path.split(path)
        if folder not in folders:
            folders[folder] = (reals.get(folder) or os.path.realpath(folder or "."),
                               os.path.join(top, Path(folder).relative_to(root)))
        real[p] = os.path.realpath(path) if os.path.islink(path) else os.path.join(folders[folder][0], name)
        here[p] = os.path.join(folders[folder][1], name)
    return real, here


def _say_excluded(root: Path, matched: set[str], log) -> None:
    """How many files the exclude lists left out, and the rows of the corpus's own that name no file (a typo,
    a path from another folder), which would otherwise leave nothing out without a word."""
    own, note = own_excluded(root)
    if note:
        log(Note(note))
    if matched:
        log(Note(f"{len(matched)} files left out as listed ({OWN_EXCLUDE} or the shipped list)"))
    missing = sorted(set(own) - matched)
    if missing:
        log(Note(f"{OWN_EXCLUDE}: rows that name no image file under the label folders: {len(missing)} (e.g. "
                 f"{missing[0]}); give paths from the corpus folder, as label/source/file"))


def _files(src: Path, reals: dict[str, str] | None = None) -> tuple[list[Path], list[str], list[str]]:
    """The files under `src`, through linked folders as `evaluate` and `classify` go (each folder once), the
    links that lead nowhere, and the files and folders that could not be read (a PermissionError from one, a link
    into /proc, stopped the scan with a traceback; an unreadable folder was passed over unsaid); hidden files and
    folders are left out. Walked as os.walk would, without its recursion (a folder 1,000 deep was a RecursionError
    that stopped the scan). `reals`, when given, is told each folder's real path, as the walk found it."""
    from ..sources.files import walk

    files, broken, unreadable, seen = [], [], [], set()

    def cannot(exc: OSError) -> None:
        unreadable.append(Path(os.path.relpath(exc.filename or src, src)).as_posix())

    for top, real, _above, dirs, names in walk(src, cannot):
        try:
            st = os.stat(top)
        except OSError as exc:
            cannot(exc)
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # a link back up, or a second link to one folder
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        if reals is not None:
            reals[os.fspath(Path(top))] = real  # as _real_paths splits its files' paths
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            p = Path(top, name)
            if name.startswith("."):
                continue
            try:
                if p.is_file():
                    files.append(p)
                elif p.is_symlink() and not p.exists():
                    broken.append(p.relative_to(src).as_posix())
            except OSError:
                unreadable.append(p.relative_to(src).as_posix())
    return sorted(files), broken, unreadable


def _dicom(path: Path) -> bool:
    """Whether a file named otherwise is DICOM by its first bytes, as `classify` finds it: PACS exports name
    files `IM000001` or by a UID (`1.2.840….320`, whose last part looks like an extension)."""
    from ..sources.base import Blob
    from ..sources.dicom import accepts

    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return accepts(head, Blob(str(path), head, name=path.name))


def first_image(path: str | Path, decode_side: int | None = None):
    """The file's first image as `classify` decodes it (EXIF turn, colour profile, MinIsWhite, DICOM windowing,
    microscope channels, the same caps): an ImageItem, or the reason there is none (a string)."""
    from ..sources import ImageItem, Limits, open_input, registry
    from ..sources.base import Blob

    try:
        with open(path, "rb") as f:
            head = f.read(registry.HEAD_BYTES)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not head:  # as classify says it
        return "the file is empty"
    kind = registry.find(Blob(str(path), head, name=Path(path).name))
    if kind is None or kind.name not in IMAGE_KINDS:  # a zip, a PDF or a saved page named .png: not one image
        return f"not an image file ({kind.name if kind else 'content medimg does not read'}), whatever its name says"
    items = open_input(str(path), Limits(decode_side=decode_side, offline=True))  # never fetches
    try:
        for item in items:
            return item if isinstance(item, ImageItem) else item.error  # an error first: no first image
        return "no image in it"
    except Exception as exc:  # one bad file is reported with the others, not a crash of the whole run
        return f"{type(exc).__name__}: {exc}"
    finally:
        items.close()


def _load(args: tuple[str, int]) -> tuple[np.ndarray | None, tuple[int, int] | str]:
    """(pixels, (w, h)) of the file's first image, or (None, why not) for a file that cannot be read."""
    path, size = args
    item = first_image(path, 2 * size)  # classify's decode_side for this input size
    if isinstance(item, str):
        return None, item
    try:
        return resize_rgb(item.image, size), (item.width, item.height)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def stamp(path: Path) -> tuple[int, int, int]:
    """A file as it is now: byte size, modification and change times (a file copied over another with its old
    mtime, as `cp -p` or `rsync -a` do, still counts as changed); (-1, -1, -1) when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return -1, -1, -1
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def fingerprint(corpus: Corpus) -> str:
    """Identifies the corpus's files as they are now (path and `stamp`) and how they are decoded, so a checkpoint
    made from other pixels is not taken for this one (the decode cache is keyed per source: `_parts`). The None
    stood for a size when the cache was keyed by this too: kept, so earlier checkpoints still match."""
    stats = [(p, *stamp(corpus.root / p)) for p in corpus.paths]
    return hashlib.sha1(json.dumps([str(corpus.root.resolve()), stats, None, DECODER]).encode(
        "utf-8", "surrogateescape")).hexdigest()[:16]


def load_images(corpus: Corpus, size: int, cache_dir: str | Path | None = None, workers: int = 2,
                log=print) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(N, size, size, 3) uint8 pixels exactly as preprocess.prepare sees them, original (w, h), and the
    files that could not be read (index → why; their pixels are zeros). Each source (`label/source`) is cached
    on its own in cache_dir, so a file changed, added or removed decodes its source again, not the corpus."""
    n = len(corpus.paths)
    x = np.zeros((n, size, size, 3), np.uint8)  # filled in place: one copy of the corpus in memory
    wh = np.zeros((n, 2), np.int32)
    bad: dict[int, str] = {}
    parts = _parts(corpus, size)
    folder = Path(cache_dir) if cache_dir else None
    if folder:  # named before reading: another run's clean-up leaves this corpus's caches alone meanwhile
        _mark_used(folder, size, [name for _, name in parts])
    todo = []
    for idx, name in parts:
        got = _read(folder / name, len(idx), size) if folder else None
        if got is None:
            todo.append((idx, name))
            continue
        x[_at(idx)], wh[_at(idx)] = got[0], got[1]
        bad |= {int(idx[i]): why for i, why in got[2].items()}
    if todo and folder and len(todo) < len(parts):
        log(f"{len(parts) - len(todo)} of {len(parts)} sources read from the cache; decoding the other {len(todo)}")
    if todo:
        _decode(corpus, size, todo, x, wh, bad, folder, workers, log)
    if folder:
        _mark_used(folder, size, [name for _, name in parts])  # again: a long decode may have outlived its mark
        _let_go(folder, KEEP_CACHES)
    return x, wh, bad


def _parts(corpus: Corpus, size: int) -> list[tuple[np.ndarray, str]]:
    """Each source's file indices and the name of its cache, keyed by its files (path and `stamp`), the corpus
    folder, the size and DECODER."""
    root = str(corpus.root.resolve())
    by: dict[str, list[int]] = {}
    for i, s in enumerate(corpus.source):
        by.setdefault(s, []).append(i)
    parts = []
    for src, idx in by.items():
        stats = [(corpus.paths[i], *stamp(corpus.root / corpus.paths[i])) for i in idx]
        key = hashlib.sha1(json.dumps([root, src, stats, size, DECODER]).encode("utf-8", "surrogateescape"))
        parts.append((np.array(idx, np.int64), f"source-{size}-{key.hexdigest()[:16]}.npz"))
    return parts


def _at(idx: np.ndarray) -> slice | np.ndarray:
    """The indices as a slice when they follow each other (as a source's do): a view, not a copy."""
    return slice(int(idx[0]), int(idx[-1]) + 1) if idx[-1] - idx[0] + 1 == len(idx) else idx


def _decode(corpus: Corpus, size: int, todo: list[tuple[np.ndarray, str]], x: np.ndarray, wh: np.ndarray,
            bad: dict[int, str], folder: Path | None, workers: int, log) -> None:
    """Decode the sources in `todo` into x and wh, each cached as soon as its last file is decoded (a stop
    keeps the sources already done)."""
    order = np.concatenate([idx for idx, _ in todo])
    ends = dict(zip((int(e) - 1 for e in np.cumsum([len(idx) for idx, _ in todo])), todo))
    args = [(str(corpus.root / corpus.paths[i]), size) for i in order]
    chunk = max(1, len(args) // 10)
    writable = folder is not None
    with ProcessPoolExecutor(workers) as ex:
        try:
            for j, (arr, s) in enumerate(ex.map(_load, args, chunksize=64)):
                if arr is None:
                    bad[int(order[j])] = s
                else:
                    x[order[j]], wh[order[j]] = arr, s
                if (j + 1) % chunk == 0 or j + 1 == len(args):
                    log(f"decoded {j + 1}/{len(args)}")
                if j in ends and writable:
                    idx, name = ends[j]
                    writable = _write(folder / name, x[_at(idx)], wh[_at(idx)],
                                      {k: bad[int(i)] for k, i in enumerate(idx) if int(i) in bad}, log)
        except BaseException:  # a stop: SIGTERM reaches this process only, and leaving the pool would wait
            # for the whole corpus to be decoded; SIGKILL, as a worker took the handler that raises SystemExit
            for proc in list((ex._processes or {}).values()):
                proc.kill()
            # a worker killed part-way through sending a chunk's pixels leaves the pool's thread waiting for the
            # rest for ever (this process holds the pipe's other end too): closed here, that read ends
            ex._result_queue._writer.close()
            ex.shutdown(cancel_futures=True)
            raise


def _read(path: Path, n: int, size: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]] | None:
    """A source's cache (pixels, sizes, unreadable files by index in the source), or None when there is none
    or it cannot be read (gone meanwhile, cut short): then the source is decoded again."""
    with contextlib.suppress(OSError):  # a shared cache another user wrote: read it all the same
        os.utime(path)  # used now: kept when older caches are let go
    try:
        with np.load(path) as z:
            x, wh, bad = z["x"], z["wh"], json.loads(str(z["bad"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if x.shape != (n, size, size, 3) or wh.shape != (n, 2):
        return None
    return x, wh, {int(i): why for i, why in bad.items()}


def _write(path: Path, x: np.ndarray, wh: np.ndarray, bad: dict[int, str], log) -> bool:
    """Cache one source, written beside its name first (one temporary file per process) then renamed; False,
    said once, when the folder cannot take it (read-only, full): the run goes on uncached."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, x=x, wh=wh, bad=json.dumps(bad))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log(f"decoded sources are not cached: {path.parent} cannot be written ({exc.strerror or exc})")
        return False
    except BaseException:  # a stop (Ctrl-C, SIGTERM): no half-written copy left for good
        tmp.unlink(missing_ok=True)
        raise
    return True


def _mark_used(folder: Path, size: int, names: list[str]) -> None:
    """Write (or touch) the corpus's list of its sources' caches, `corpus-<size>-<key>.json`: the clean-up keeps
    the caches the most recently used lists name."""
    key = hashlib.sha1(json.dumps(names).encode()).hexdigest()[:16]
    path = folder / f"corpus-{size}-{key}.json"
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.json")
    with contextlib.suppress(OSError):  # a read-only shared cache: read, not marked
        if path.exists():
            os.utime(path)
            return
        folder.mkdir(parents=True, exist_ok=True)
        try:
            tmp.write_text(json.dumps({"sources": names}))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def _let_go(folder: Path, keep: int) -> None:
    """Delete the source caches that none of the `keep` most recently used corpora lists name (each changed
    source, size or --per-source makes a new one), unless used within ABANDONED_AFTER (a run going on may read
    it), and whole-corpus caches of earlier versions (`corpus-….npz`) as old; and killed runs' temporary files."""
    lists, caches = [], []
    try:
        entries = list(folder.iterdir())
    except OSError:  # a folder that could not be made (the run went on uncached) or read
        return
    for p in entries:
        name = p.name
        with contextlib.suppress(OSError):  # gone meanwhile (another run's), or not ours to touch
            if not name.startswith(("corpus-", "source-")):
                continue
            if ".tmp." in name:
                if _abandoned(p):  # a killed run's (another run's, being written, stays)
                    p.unlink()
            elif name.endswith(".json"):
                lists.append((p.stat().st_mtime, p))
            elif name.endswith(".npz"):
                caches.append(p)
    lists.sort(reverse=True)
    live: set[str] = set()
    for _, p in lists[:keep]:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            live |= set(json.loads(p.read_text())["sources"])
    for _, p in lists[keep:]:
        with contextlib.suppress(OSError):
            p.unlink()
    for p in caches:
        with contextlib.suppress(OSError):
            if p.name not in live and time.time() - p.stat().st_mtime > ABANDONED_AFTER:
                p.unlink()


def _abandoned(tmp: Path) -> bool:
    """Whether a temporary file (`….<pid>.tmp.npz`, `….<pid>.tmp.json`) was left by a run killed while writing
    it: untouched for ABANDONED_AFTER and its process gone from this machine."""
    pid = tmp.name.rpartition(".tmp.")[0].rpartition(".")[2]
    if not pid.isdigit() or time.time() - tmp.stat().st_mtime < ABANDONED_AFTER:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # alive, another user's; or no such number
        pass
    return False


def load(corpus: Corpus, size: int, cache_dir: str | Path | None = None, log=print) -> tuple[Corpus, np.ndarray, np.ndarray]:
    """The corpus decoded, without the files that cannot be read (each named in the log)."""
    x, wh, bad = load_images(corpus, size, cache_dir, log=log)
    if not bad:
        return corpus, x, wh
    kept, keep = readable(corpus, bad, log)
    return kept, x[keep], wh[keep]


def readable(corpus: Corpus, bad: dict[int, str], log=print) -> tuple[Corpus, np.ndarray]:
    """The corpus without the files that cannot be read (index → why, each named in the log), and the indices
    kept; a CorpusError when a label is left with none."""
    log(Note(f"{len(bad)} files cannot be read and are left out (list them in {corpus.root / OWN_EXCLUDE}, rows "
             "path,reason, to silence this):"))
    for i, why in sorted(bad.items())[:50]:
        log(Note(f"  {corpus.paths[i]}: {why}"))
    keep = np.array([i for i in range(len(corpus.paths)) if i not in bad], np.int64)
    kept = Corpus(corpus.root, [corpus.paths[i] for i in keep], corpus.labels, corpus.y[keep],
                  [corpus.source[i] for i in keep], corpus.medical)
    missing = [lb for j, lb in enumerate(corpus.labels) if not (kept.y == j).any()]
    if missing:
        raise CorpusError(f"no readable images left for label(s) {', '.join(missing)}")
    return kept, keep


def checked_folds(corpus: Corpus, k: int, seed: int = 0) -> np.ndarray:
    """`source_folds`, or a CorpusError when a fold would hold out nothing or everything (too few sources with
    images that can be read)."""
    fold = source_folds(corpus, k, seed)
    bad = next((f for f in range(k) if (fold == f).all() or not (fold == f).any()), None)
    if bad is not None:
        held = "everything" if (fold == bad).all() else "nothing"
        raise CorpusError(f"{len(source_names(corpus))} sources have images that can be read, so fold {bad} of "
                          f"{k} would hold out {held}: use fewer --folds, or add sources")
    return fold


def source_name(source: str) -> str:
    """The source a "label/source" is part of: its folder's name in any case, whatever the label, so
    `ct/hospital-a` and `xray/Hospital-A` are one source (one hospital's CT and X-rays)."""
    return unicodedata.normalize("NFC", source.split("/", 1)[-1]).casefold()


def source_names(corpus: Corpus) -> list[str]:
    """The corpus's sources as the folds count them (`source_name`)."""
    return sorted({source_name(s) for s in corpus.source})


def source_folds(corpus: Corpus, k: int = 3, seed: int = 0) -> np.ndarray:
    """Fold id per file: whole sources go to one fold; each label's sources spread over folds.

    A source's folders under several labels (`ct/hospital-a`, `xray/hospital-a`) go to one fold, the one
    the first label placed it in: no file of a held-out source is trained on. A label with fewer sources
    than k is absent from the held-out set of some folds, and a label with a single source (or whose
    sources all fall in one fold) is unseen in training for the fold that holds it out.
    """
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    placed: dict[str, int] = {}  # source_name → its fold
    load = np.zeros(k)
    for lb in corpus.labels:
        srcs = sorted({s for s in corpus.source if s.split("/")[0] == lb})
        sizes = {s: sum(1 for t in corpus.source if t == s) for s in srcs}
        srcs.sort(key=lambda s: -sizes[s])
        order = list(rng.permutation(k))
        lab_load = np.zeros(k)
        for s in srcs:  # largest first, onto the fold with least of this label (ties: least overall)
            f = placed.setdefault(source_name(s), int(min(order, key=lambda j: (lab_load[j], load[j]))))
            fold_of[s] = int(f)
            lab_load[f] += sizes[s]
            load[f] += sizes[s]
    return np.array([fold_of[s] for s in corpus.source], np.int64)
