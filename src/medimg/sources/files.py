"""Files and folders on disk, and raster image formats (sniffed by magic bytes, never by extension)."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
import stat
import struct
import unicodedata
from dataclasses import replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pillow_heif
from PIL import BmpImagePlugin, IcoImagePlugin, Image, ImageCms, ImageOps, PngImagePlugin, TiffImagePlugin

from ..levels import stretch_levels
from . import deep_jpeg, dicomdir, heif, jpeg2000
from .base import EMPTY_FILE, Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin, reason, unit
from .quiet import hide_warnings, libtiff_errors, quiet_libtiff, quiet_logger
from .registry import HEAD_BYTES, find, register, unknown

pillow_heif.register_heif_opener()  # HEIC/HEIF; Pillow 11.2+ reads AVIF itself
# max_pixels is checked from the header; Pillow's softer warning (89 MP) would only add noise.
# Hidden only while medimg reads (quiet.py): a program's own use of Pillow still gets them.
hide_warnings(category=Image.DecompressionBombWarning, module=r"PIL\.")
# Pillow's own notes on odd files ("Corrupt EXIF data", palette transparency): the image decodes, or its
# item says why; printed warnings would only clutter a CLI run over many files.
hide_warnings(category=UserWarning, module=r"PIL\.")
# Their loggers too: Pillow logs a damaged TIFF's errors ("More samples per pixel than can be decoded") and
# imagecodecs libpng's warnings (an interlaced 16-bit PNG read for _wide_grey_alpha: "Interlace handling should be
# turned on"), which Python printed on stderr when the app set no logging up. An app's own handlers still get them.
for _name in ("PIL", "imagecodecs"):
    quiet_logger(_name)
quiet_libtiff()  # libtiff's errors kept, not printed, while medimg reads: a page they came with is checked again
# An 8-bit grey TIFF with premultiplied alpha (ExtraSamples 1) is a layout Pillow's table lacks, so it was "not
# an image"; it reads RGB ones so (RGBa). Its pixels unpack as La, which _plain_mode un-premultiplies to LA.
for _order in (b"II", b"MM"):
    TiffImagePlugin.OPEN_INFO.setdefault((_order, 1, (1,), 1, (8, 8), (1,)), ("La", "La"))

SNIFF_BYTES = 64 * 1024  # read to pick a source for a file on disk
BLANK_FRAMES = 32  # frames of an animation looked at for one that is not blank

# Files and folders nobody means as input: macOS/Windows litter and hidden entries.
_LITTER = {"__MACOSX", "Thumbs.db", "desktop.ini"}


# what a web address written without its scheme looks like (example.org/page.html, 127.0.0.1:8765/x.png)
_HOST_LIKE = re.compile(r"(?:www\.|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}(?::\d+)?/|"
                        r"\d{1,3}(?:\.\d{1,3}){3}:\d+(?:/|$))", re.IGNORECASE)


# a name read back from CSV or Parquet output, where bytes of a name that are not UTF-8 became U+FFFD
NOT_UTF8_NAME = ("its name holds U+FFFD (\ufffd), which CSV and Parquet output write for bytes of a name that are "
                 "not UTF-8: give the name as JSONL output writes it, which keeps them")


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in _LITTER


# ---------------------------------------------------------------- files and folders


def read_file(path: str | os.PathLike, ctx: Context) -> Blob | ItemError:
    """One file's bytes, refused by size before reading when over `max_input_bytes`."""
    given = os.fspath(path)  # as typed, for a hint (Path makes `http://x` `http:/x`)
    path = Path(path)
    origin = str(path)
    cap = ctx.limits.max_input_bytes
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            return ItemError(origin, "", "is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):  # FIFOs and devices could block or never end
            return ItemError(origin, "", f"not a regular file ({_kind(st.st_mode)}); not read")
        if st.st_size > cap:
            return ItemError(origin, "", f"file is {_mb(st.st_size)}, over the max_input_bytes cap of {_mb(cap)}")
        with open_regular(path) as f:
            # as many bytes as stat said (a buffer of the whole cap costs 4× the read for big files), then
            # whatever it grew by since, up to the cap
            data = f.read(st.st_size + 1)
            if len(data) > st.st_size:
                data += f.read(cap + 1 - len(data))
    except FileNotFoundError:
        if (target := _link_target(path)) is not None:  # listed in its folder, so "not found" puzzled
            return ItemError(origin, "", f"a broken link: it points to {target}, which is not there")
        hint = ("; if it is a web address, it needs http:// or https:// in front" if _HOST_LIKE.match(str(path))
                else "; a list of inputs on standard input is read with --inputs-from -" if str(path) == "-"
                else "; a pattern (* or ?) is not expanded here: leave it unquoted for the shell, or give the folder "
                     "(in Python: glob.glob(pattern))"
                if re.search(r"[*?]", path.name) else f"; {NOT_UTF8_NAME}" if "\ufffd" in str(path)
                else "; a ~ is not expanded here: leave it unquoted for the shell (in Python: os.path.expanduser(path))"
                if origin.startswith("~") else _other_form(origin) or _pasted(given))
        return ItemError(origin, "", "file not found" + hint)
    except PermissionError:
        return ItemError(origin, "", "permission denied")
    except NotRegular as exc:  # put in the file's place since its stat
        return ItemError(origin, "", f"not a regular file ({_kind(exc.mode)}); not read")
    except OSError as exc:
        return ItemError(origin, "", f"could not read file: {exc.strerror or exc}")
    except ValueError as exc:  # a NUL in the name
        return ItemError(origin, "", f"not a usable file name: {exc}")
    if len(data) > cap:
        return ItemError(origin, "", f"file is over the max_input_bytes cap of {_mb(cap)}")
    return Blob(origin=origin, data=data, name=path.name, sibling=partial(_beside, path.parent, ctx))


def _other_form(name: str) -> str:
    """A hint naming the file there whose name is `name` in Unicode's other form: "é" as one character (NFC, as
    most lists and keyboards write it) or as "e" and an accent (NFD, as macOS wrote names); Linux tells them apart."""
    if name.isascii():
        return ""
    for form in ("NFD", "NFC"):
        other = unicodedata.normalize(form, name)
        if other != name and os.path.lexists(other):
            how = "as a letter and its accents (NFD, as macOS writes names)" if form == "NFD" else \
                "with accented letters as one character each (NFC)"
            return f"; a file of this name written {how} is there: {other!r}"
    return ""


def _link_target(path: Path) -> str | None:
    """Where a link points, for a link whose target is missing; None when `path` is no link."""
    try:
        return os.readlink(path)
    except (OSError, ValueError):
        return None


class NotRegular(OSError):
    """What open_regular found is a FIFO, socket, device or folder (its `mode`), not a regular file."""

    def __init__(self, mode: int):
        super().__init__(f"not a regular file ({_kind(mode)})")
        self.mode = mode


def open_regular(path: str | os.PathLike):
    """open(path, "rb") of a regular file only, checked on the open file: a file swapped for a FIFO after its
    stat (a share changing while it is walked) blocked the run for good in open(), which waits for a writer.
    NotRegular for anything else. A file another program holds a lease on (Samba's oplocks) is opened as open()
    would, waiting for the lease to be given up: opened non-blocking, it was "Resource temporarily unavailable"."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
    except BlockingIOError:  # a FIFO opens at once: only a lease refuses so, so it is a regular file
        fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(mode)
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _pasted(name: str) -> str:
    """A hint for a name not found that was pasted with what is not part of it, or from elsewhere."""
    bare = name.strip(" \t\r\n\"'<>")
    if bare and bare != name:
        return f"; it has white space or quotes around it: without them it is {bare!r}"
    if re.match(r"https?:?/+[^/]", name, re.IGNORECASE):
        return "; a web address starts http:// or https://, with two slashes"
    if os.name != "nt" and re.match(r"[A-Za-z]:[\\/]|\\\\", name):
        return "; a Windows path, and this system is not Windows: give the file's path on this one"
    return ""


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for its error."""
    return ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")


def _beside(folder: Path, ctx: Context, name: str) -> bytes:
    """`Blob.sibling` for a file on disk: the file of that bare name in the same folder."""
    found = read_file(folder / name, ctx)
    if isinstance(found, ItemError):
        raise ValueError(found.error)
    return found.data


def read_sibling(name: str, blob: Blob) -> bytes:
    """The data file a header names (.mhd, .nhdr, the .img of a .hdr), read only when the name is a bare
    file name, through `blob.sibling`: beside the header on disk, in the same zip or tar folder or among the
    same request's uploads. A header can never make us read any other path. ValueError says why not."""
    name = name.strip()
    if "%" in name or name.upper().startswith("LIST"):
        raise ValueError(f"the header spreads its data over several files ({name!r}), which is not supported")
    if not name or name in (".", "..") or os.path.basename(name) != name or "\\" in name:
        raise ValueError(f"the header names its data file {name!r}; only a file beside the header is read")
    if blob.sibling is None:
        raise ValueError(f"detached header: its voxels are in {name!r}; give both files together (one "
                         "folder, one zip or tar, or one upload)")
    try:
        return blob.sibling(name)
    except ValueError as exc:
        raise ValueError(f"its data file {name}: {exc}") from None


def data_file_names(head: bytes, name: str) -> tuple[str, ...]:
    """The names a header (.mhd, .nhdr, NIfTI/Analyze .hdr) called `name` looks its data file up by, from its first
    bytes, in the order its reader tries them: the one an .mhd or .nhdr names, exactly (MetaIO and pynrrd open that
    name and no other); a .hdr's .img, then its .img.gz, in the case of its extension and then in the other
    (`nifti.image_file_names`). Empty for anything else."""
    for found in (metaimage.data_file_named, nrrd_volume.data_file_named, nifti.image_file_named):
        try:
            data_file = found(head, name)
        except Exception:
            data_file = None
        if data_file:
            return data_file if isinstance(data_file, tuple) else (data_file,)
    return ()


def reads_as_data(name: str, names: tuple[str, ...], there: Callable[[str], bool]) -> bool:
    """Whether the file `name` is the data file of a header that looks for `names` (`data_file_names`): the first of
    them that is `there` (a.img.gz only when no a.img is beside it). Only such a file is that header's note."""
    for candidate in names:
        if candidate == name:
            return True
        if there(candidate):
            return False
    return False


def blobs_together(files: list[tuple[str, Callable[[int], bytes], str | None]], cap: int,
                   claims: dict[str, str] | None = None) -> Iterator[Blob]:
    """Files given together (one request's uploads) as Blobs, read one at a time: (name, read, content
    type) each, where `read(n)` gives the first n bytes (all of them for -1). A name given again gets one of
    its own (`unique_names`: IM0001, IM0001 (2)). Each can read another by name (`Blob.sibling`): the k-th
    file of a name reads the k-th of the name it asks for, so two series' a.mhd + a.raw pairs each keep their
    own data; a data file that a header among them reads (`.raw`, `.img`, or the `.img.gz` of a `.hdr` given
    without its `.img`) is marked `data_of` that header. `claims`, if given, is filled with {each such data file's
    name: its header's} before the first Blob comes (a run stopped early says which files were read with a header).
    """
    given = [name for name, _, _ in files]
    names = unique_names(given)
    turn: list[int] = []  # the k-th time its name was given
    seen: dict[str, int] = {}
    for name in given:
        seen[name] = seen.get(name, 0) + 1
        turn.append(seen[name])
    by_turn = {(name, k): i for i, (name, k) in enumerate(zip(given, turn))}
    by_name = {name: i for i, name in enumerate(names)}

    def find(name: str, k: int) -> int | None:
        for i in (by_turn.get((name, k)), by_turn.get((name, 1)), by_name.get(name)):
            if i is not None:
                return i
        return None

    def sibling_of(k: int) -> Callable[[str], bytes]:
        def sibling(name: str) -> bytes:
            i = find(name, k)
            if i is None:
                raise ValueError("not among the files given with it")
            data = files[i][1](cap + 1)
            if len(data) > cap:
                raise ValueError(f"over the max_input_bytes cap of {_mb(cap)}")
            return data
        return sibling

    claimed: dict[int, str] = {}
    for i, (name, read, _) in enumerate(files):
        for candidate in data_file_names(read(SNIFF_BYTES), name):
            j = find(candidate, turn[i])
            if j is not None:  # the first there is the one the header reads
                if j != i:
                    claimed.setdefault(j, names[i])
                break
    if claims is not None:
        claims.update((names[j], header) for j, header in claimed.items())
    for i, (_, read, content_type) in enumerate(files):
        yield Blob(origin=names[i], data=read(-1), name=names[i], content_type=content_type,
                   sibling=sibling_of(turn[i]), data_of=claimed.get(i))


def unique_names(names: list[str]) -> list[str]:
    """Names that tell uploads apart: a name sent again (IM0001 from two series' folders) becomes
    `IM0001 (2)`, as a browser saves a second download, so each record says which upload it came from."""
    names_given = UniqueNames(names)
    return [names_given(name) for name in names]


class UniqueNames:
    """Names handed out one at a time, each once: a name given again gets ` (2)`, ` (3)` … before its extension
    (`IM0001 (2)`, `a (2).nii.gz`; in a path, in its last part: `study/a (2).png`), the first number from 2 up
    that is not `reserved` (the names still to come, when they are known) and not handed out already."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.reserved, self.used, self.next = set(reserved), set(), {}

    def __call__(self, name: str) -> str:
        if name not in self.used:
            self.used.add(name)
            return name
        folder, slash, base = name.rpartition("/")
        lead = len(base) - len(base.lstrip("."))
        stem, dot, ext = base[lead:].partition(".")
        n = self.next.get(name, 2)
        while (new := f"{folder}{slash}{base[:lead]}{stem} ({n}){dot}{ext}") in self.used or new in self.reserved:
            n += 1
        self.next[name] = n + 1
        self.used.add(new)
        return new


def iter_folder(path: str | os.PathLike, ctx: Context) -> Iterator[Item]:
    """Every file under a folder, recursively and in sorted order; hidden entries are left out.

    Files no source recognises become skipped notes, not errors: folders hold all sorts of files.
    """
    for task in folder_tasks(path, ctx):
        yield from task()


def folder_tasks(path: str | os.PathLike, ctx: Context,
                 skip: Callable[[str], bool] | None = None) -> Iterator[Callable[[], Iterator[Item]]]:
    """iter_folder as independent units of work, in the same order: one per file (and per listing error)."""
    problems: list[OSError] = []

    def listing_errors() -> Iterator[Callable[[], Iterator[Item]]]:
        for exc in problems:  # one unit each, named by its folder, so a resumed run passes over it
            yield unit(str(exc.filename or ""), _listing_errors, [exc])
        problems.clear()

    files, seen = 0, set()
    for root, real, above, dirs, names in walk(path, problems.append):
        yield from listing_errors()
        if real in seen or (above is not None and _holds(real, above)):
            dirs[:] = []  # a link to a folder read already, or to one holding it (`..`, `/`): a loop
            note = (f"link to a folder read already ({real}); not read again" if real in seen else
                    f"link to a folder above it ({real}), a loop; not read")
            yield unit(root, lambda root=root, note=note: iter([ItemError(root, "", note, skipped=True)]))
            continue
        seen.add(real)
        given = getattr(ctx, "given", None)
        if given is not None and above is not None and real != os.path.join(above, os.path.basename(root)):
            given.folders.add(real)  # a link's folder, read here: a DICOMDIR given after passes over its files
        # real folders first, so a folder is read where it is and a link beside it is the one noted
        dirs[:] = sorted((d for d in dirs if not is_hidden(d)), key=lambda d: (os.path.islink(os.path.join(root, d)), d))
        beside = frozenset(name.lower() for name in names)
        for name in sorted(names):
            if not is_hidden(name):
                files += 1
                yield from file_tasks(Path(root) / name, ctx, member=True, skip=skip, beside=beside)
    if not files and not problems:  # one row still says what became of it
        origin = os.fspath(path)
        yield unit(origin, lambda: iter([ItemError(origin, "", "folder holds no files (hidden ones are left out)",
                                                   skipped=True)]))
    yield from listing_errors()


def walk(top: str | os.PathLike, onerror: Callable[[OSError], None]
         ) -> Iterator[tuple[str, str, str | None, list[str], list[str]]]:
    """os.walk top-down, following links to folders, without recursion (Python 3.11's os.walk recurses once a
    level, so a tree about 1,000 folders deep was a RecursionError that lost the whole folder): (folder, its real
    path, the real path of the folder holding it (None for `top`), its folders, its files). A real path is
    looked up only for `top` and for links: realpath of each folder of a deep tree took minutes."""
    stack: list[tuple[str, str | None, bool]] = [(os.fspath(top), None, True)]  # (folder, real above, a link)
    while stack:
        root, above, link = stack.pop()
        real = os.path.realpath(root) if link or above is None else os.path.join(above, os.path.basename(root))
        try:
            with os.scandir(root) as entries:
                found = list(entries)
        except OSError as exc:
            onerror(exc)
            continue
        dirs, names, links = [], [], set()
        for entry in found:
            try:
                is_dir = entry.is_dir()  # through a link
                if is_dir and entry.is_symlink():
                    links.add(entry.name)
            except OSError:
                is_dir = False
            (dirs if is_dir else names).append(entry.name)
        yield root, real, above, dirs, names  # the caller may prune or sort dirs, as with os.walk
        stack.extend((os.path.join(root, d), real, d in links) for d in reversed(dirs))


def _holds(real: str, inside: str) -> bool:
    """Whether the real folder `real` is or holds the real folder `inside` (a link in it to `..` or `/`)."""
    return inside == real or inside.startswith(real.rstrip(os.sep) + os.sep)


def file_tasks(path: str | os.PathLike, ctx: Context, member: bool = False,
               skip: Callable[[str], bool] | None = None, listed: bool = False, beside: frozenset[str] | None = None
               ) -> Iterator[Callable[[], Iterator[Item]]]:
    """One file as units of work: a container whose source splits (a zip) gives one per member, read
    here; any other file one unit that reads it. `member`: found in a folder (unknown content is a note);
    `listed`: listed by a DICOMDIR given (a DICOMDIR then is the note it is in a folder).
    A file whose path `skip` accepts (done by an earlier run) is passed over before any byte is read, and so is
    one a DICOMDIR given in this run read already (`ctx.given`). `beside`: the names in its folder, as its walk
    listed them, in lower case (as a share may match them; none: each header name it may have is looked up)."""
    path = Path(path)
    if skip is not None and skip(str(path)):  # done before (resuming): not even its first bytes are read
        return
    head = file_head(path)
    given = getattr(ctx, "given", None)
    if given is not None and not listed and given.read_already(path, head, member):
        return
    if listed and dicomdir.is_dicomdir(head):
        member = True
    elif not member and dicomdir.is_dicomdir(head):  # given alone: the export's files it lists
        its_files = dicomdir.tasks(path, ctx, skip, file_tasks, read_file)
        if its_files is not None:
            yield from its_files
            return
    plugin = _sniffed(path, head)
    # a data file beside the header naming it (gzipped, its name still says so: a.img.gz of a.hdr)
    header = _header_beside(path, beside) if head and (plugin is None or path.suffix.lower() == ".gz") else None
    if header or (plugin is None and head and member):  # a note, without reading the whole file
        why = f"the data file of {header}, read with it" if header else "not an image or a supported container"
        note = ItemError(str(path), "", f"skipped: {why}", skipped=True) if header else \
            unknown(str(path), path.name, head, _size(path))
        yield unit(str(path), iter, (note,))
        return
    if plugin is not None and plugin.open_path is not None:  # reads the file itself (whole-slide images)
        yield unit(str(path), _open_by_path, plugin.open_path, path, ctx)
        return
    if plugin is not None and plugin.split is not None:
        blob = read_file(path, ctx)
        if isinstance(blob, ItemError):
            yield unit(blob.origin, iter, (blob,))
        else:
            yield from blob_tasks(blob, ctx, member)
        return
    if member and not head and _empty(path):  # its note now: opening it and asking every source took 0.3 ms a file
        yield unit(str(path), iter, (ItemError(str(path), "", EMPTY_FILE, skipped=True),))
        return
    yield unit(str(path), _open_path, path, ctx, member)


def archive_member(text: str) -> tuple[str, str] | None:
    """(archive, member) for a name as the rows of an archive's member give it (`scans.zip:ct/1.dcm`) when no
    file has that name: the longest part before a `:` that is a file; None when there is none."""
    if ":" not in text or os.path.lexists(text):  # a real file named so is that file
        return None
    at = len(text)
    while (at := text.rfind(":", 0, at)) > 0:
        if at < len(text) - 1 and os.path.isfile(text[:at]):
            return text[:at], text[at + 1:]
    return None


def member_tasks(container: str, member: str, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """One member of an archive on disk, named as its rows name it (`scans.zip:ct/1.dcm`; nested,
    `a.zip:b.tar:c.png`), or a folder in it (`scans.zip:ct/` or `scans.zip:ct`: every member under it): the
    archive is read as when it is given whole, under the same caps (the members before it charged to its
    budget, passed over unread where the format allows), and only those members are opened, each an input
    of its own (`ctx.skip` passes over those under the folder done before). An error when the archive holds no
    such member nor any under it (or its caps stop it before them); its notes about itself (unreadable, cut
    short) come then too."""
    path = Path(container)
    wanted = f"{path}:{member}"  # as the archive's rows spell it
    folder = wanted.rstrip("/") + "/"  # the members under it, when it names a folder
    plugin = _sniffed(path, file_head(path))
    if plugin is None or plugin.split is None:
        yield unit(wanted, iter, (ItemError(wanted, "", f"no such file, and {path} is not an archive with members"),))
        return
    met: list[bool] = []  # the member was found (a worker thread may find it, in an archive inside a member)

    def inside(where: str) -> bool:  # the member wanted, or one under the folder wanted
        return where == wanted or where.startswith(folder) or where.startswith(wanted + ":")  # in it, an archive

    def around(where: str) -> bool:  # one wanted, or an archive member holding it
        return inside(where) or wanted.startswith(where + ":")

    def other(where: str) -> bool:  # the archive's `skip`: passes over every other member
        if inside(where):
            met.append(True)  # one under the folder done before (resuming) is passed over too
            return where != wanted and ctx.skip is not None and ctx.skip(where)
        return not around(where)

    notes, holding = [], []
    for task in file_tasks(path, Context(ctx.limits, ctx.run_cancel, other)):
        origin = getattr(task, "origin", None)
        if origin == str(path) and task.func is iter:  # about the whole archive: said only when not found
            notes.append(task)  # (the content of a compressed file, `set.zip.gz`, holds the member: below)
        elif origin is not None and inside(origin):
            met.append(True)
            yield task
        elif origin is not None and around(origin):  # a member holding it: a container opened by its unit, or
            holding.append(task)  # a note about one whose members came as units of their own (an Office file)
    if met:  # found in the archive's own walk: the notes about the containers around it are not about it
        return
    why: list[Item] = []  # the errors about the containers holding it (a damaged zip in it), said if not found
    for n, task in enumerate(holding, 1):  # a message, RTF, … in the archive: only the items of the member wanted
        yield _then_found(task, met, wanted, path, inside, last=n == len(holding), why=why)
    if not holding:
        yield from notes
        yield _not_found(wanted, path)


def _then_found(task, met: list[bool], wanted: str, container: Path, inside: Callable[[str], bool],
                last: bool = True, why: list | None = None) -> Callable[[], Iterator[Item]]:
    """The items of the member wanted among those of a unit holding it (an e-mail in a zip opens whole), then,
    from the `last` such unit, an error if none was found, after the errors (not notes) about the units holding
    it (`why`: a damaged zip in the archive says so, not only that the member is not there)."""
    why = [] if why is None else why

    def run() -> Iterator[Item]:
        for item in task():
            if inside(item.origin):
                met.append(True)
                yield item
            elif isinstance(item, ItemError) and not item.skipped and wanted.startswith(item.origin + ":"):
                why.append(item)
        if last and not met:
            yield from why
            yield from _not_found(wanted, container)()

    wrapped = unit(task.origin, run)
    wrapped.holds = getattr(task, "holds", {})
    return wrapped


def _not_found(wanted: str, container: Path) -> Callable[[], Iterator[Item]]:
    member = wanted[len(str(container)) + 1:]
    why = (f"no member {member!r} in {container}, nor any under it as a folder (or its caps stop the reading "
           "before it: give the archive to see)")
    return unit(wanted, iter, (ItemError(wanted, "", why),))


def blob_tasks(blob: Blob, ctx: Context, member: bool = False) -> Iterator[Callable[[], Iterator[Item]]]:
    """Bytes as units of work: one per member for a container whose source splits, else one."""
    plugin = find(blob) if not blob.data_of else None  # a header's data file is only a note (open_blob)
    if plugin is not None and plugin.split is not None:
        try:
            yield from plugin.split(blob, ctx)
        except Exception as exc:  # a broken container stops itself, not the inputs after it
            yield unit(blob.origin, iter, (ItemError(blob.origin, "", f"{plugin.name}: could not read: {exc}"),))
    else:
        yield unit(blob.origin, open_capped, blob, ctx, member)


def member_units(parts: Iterable[Item | Blob], ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """A container's parts (zip, tar, e-mail, Outlook message) as units of work: each member Blob an input of
    its own, opened with its own image cap (unknown content a note); each note about the container one unit."""
    for part in parts:
        yield (unit(part.origin, open_capped, part, ctx, True) if isinstance(part, Blob)
               else unit(part.origin, iter, (part,)))


def open_capped(blob: Blob, ctx: Context, member: bool = False) -> Iterator[Item]:
    """An input's items, at most max_images_per_input images. Unknown content is an error, or a skipped
    note for a `member` of a folder or archive."""
    from . import images_capped

    items = images_capped(open_member(blob, ctx) if member else ctx.open_blob(blob), blob.origin, ctx)
    if blob.views:
        yield from _shown(items, blob.locator, blob.views)
    else:
        yield from with_place(items, blob.locator) if blob.locator else items


def _shown(items: Iterator[Item], where: str, views: tuple) -> Iterator[Item]:
    """Each image once for each way the document shows it ((place, crop): the part it shows of it, or all when
    the crop is None), placed there; errors and notes once, at all its places."""
    from .office import cropped

    views = _told_apart(views)
    for item in items:
        if not isinstance(item, ImageItem):
            yield from with_place(iter((item,)), where)
            continue
        for place, crop in views:
            shown = replace(item, metadata=dict(item.metadata))
            if crop is not None:
                shown.image = cropped(item.image, crop)
                shown.metadata["crop"] = dict(zip(("left", "top", "right", "bottom"), crop))  # fractions cut off
                if item.full_size:  # as stored, the part shown
                    w, h = item.full_size
                    shown.full_size = (max(1, round(w * (1 - crop[0] - crop[2]))),
                                       max(1, round(h * (1 - crop[1] - crop[3]))))
            yield from with_place(iter((shown,)), place) if place else (shown,)


def _told_apart(views: tuple) -> list:
    """The views with places that tell them apart: crops shown where the picture is shown otherwise too say so
    (`slide 1 (cropped)`, or `slide 1 (crop 2)` for the second of several), so no two images share a locator."""
    out, crops = [], {}
    for place, crop in views:
        crops.setdefault(place, []).append(crop)
    for place, crop in views:
        shared = crops[place]
        if crop is not None and len(shared) > 1:
            cut = [c for c in shared if c is not None]
            tag = "cropped" if len(cut) == 1 else f"crop {cut.index(crop) + 1}"
            place = f"{place} ({tag})" if place else tag
        out.append((place, crop))
    return out


def with_place(items: Iterator[Item], where: str) -> Iterator[Item]:
    """Items with the place the file around them shows them at before their own locators (`slide 3, page 2`)."""
    for item in items:
        item.locator = f"{where}, {item.locator}" if item.locator else where
        yield item


def _open_path(path: Path, ctx: Context, member: bool) -> Iterator[Item]:
    blob = read_file(path, ctx)
    if isinstance(blob, ItemError):
        yield from _big_tiff(path, ctx) or (blob,)
        return
    blob.walked = member  # a member is a file of a folder walked (an archive's are split, not read here)
    yield from open_capped(blob, ctx, member)


def _big_tiff(path: Path, ctx: Context) -> Iterator[Item] | None:
    """A TIFF over max_input_bytes that is a pyramid (or a stack its first bytes did not tell), read in place as
    an OME-TIFF is, under max_slide_bytes; None for any other file."""
    if image_kind(file_head(path)) != "TIFF" or (_size(path) or 0) <= ctx.limits.max_input_bytes:
        return None
    from .microscopy import stack_items

    if size_problem(str(path), ctx.limits.max_slide_bytes, "max_slide_bytes", "TIFF"):
        return None
    return stack_items(str(path), ctx, str(path))


def _empty(path: Path) -> bool:
    """Whether `path` is a regular file of no bytes (a FIFO or device has none either, and is refused as such)."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _header_beside(path: Path, beside: frozenset[str] | None = None) -> str | None:
    """The header beside a data file that reads it (a.mhd or a.nhdr for the a.raw it names, a.hdr for a.img, or for
    a.img.gz when no a.img is beside it), so that giving both files (find … | medimg classify) reads the pair once,
    without an error for the data."""
    stem = data_stem(path.name)
    for ext in HEADER_EXTS:
        # the walk's listing of its folder: six stats (and Paths) of each file no source reads were half of a big
        # folder's walk
        if beside is not None and (stem + ext).lower() not in beside:
            continue
        header = path.with_name(stem + ext)
        if header == path or not os.path.isfile(header):  # False for a name too long (Path.is_file raises)
            continue
        names = data_file_names(file_head(header), header.name)
        if reads_as_data(path.name, names, partial(_file_beside, path)):
            return header.name
    if stem == path.name:  # not named as a data file (.raw, .zraw, .img, .dat, maybe .gz), as a tar waits for
        return None
    folder = os.path.dirname(path) or "."  # str(path.parent), without making the Path (a stat a file is enough)
    try:
        changed = os.stat(folder).st_mtime_ns
    except (OSError, ValueError):
        return None
    return headers_naming(folder, changed).get(path.name)


MAX_FOLDER_HEADERS = 4096  # .mhd/.nhdr headers of one folder read for the data files they name


@lru_cache(maxsize=16)  # by folder and its mtime: `find | medimg classify` asks once a folder, not once a file
def headers_naming(folder: str, changed: int) -> dict[str, str]:
    """The data files the .mhd and .nhdr headers of a folder name, by the name of each (a.raw → h.mhd, its header
    of another stem), from the first MAX_FOLDER_HEADERS headers in name order; the first header naming one wins."""
    try:
        with os.scandir(folder) as entries:
            headers = sorted(e.name for e in entries if e.name.lower().endswith((".mhd", ".nhdr")))
    except (OSError, ValueError):
        return {}
    named: dict[str, str] = {}
    for header in headers[:MAX_FOLDER_HEADERS]:
        for name in data_file_names(file_head(Path(folder, header)), header)[:1]:
            named.setdefault(name, header)
    return named


def _file_beside(path: Path, name: str) -> bool:
    """Whether a file called `name` is beside `path`; never for a name that is not a bare file name (an .mhd may
    name `sub/a.raw` or `../a.raw`, which Path.with_name refuses with a ValueError that ended the folder's walk),
    nor one too long for the file system."""
    try:
        return os.path.isfile(path.with_name(name))
    except ValueError:
        return False


HEADER_EXTS = (".mhd", ".nhdr", ".hdr", ".MHD", ".NHDR", ".HDR")  # the headers a data file's stem may have


def data_stem(name: str) -> str:
    """A data file's name without its data suffixes in any case (`a.raw.gz`, `a.img`, `A.IMG` → `a`, `A`): the stem
    its header's name shares. A name with none comes back as it is."""
    for ext in (".gz", ".raw", ".zraw", ".img", ".dat"):
        if name.lower().endswith(ext):
            name = name[:-len(ext)]
    return name


def file_head(path: Path) -> bytes:
    """The first bytes of a regular file, as many as any source's `accepts` looks at (a MetaImage header
    can run past HEAD_BYTES); nothing for FIFOs, devices or unreadable files: its unit says why."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return b""
        with open_regular(path) as f:
            return f.read(SNIFF_BYTES)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return b""


def _sniffed(path: Path, head: bytes) -> SourcePlugin | None:
    """The source that reads a file on disk, from its first bytes, or for a self-extracting zip (or a split zip's
    last part: its error says so) from its last ones."""
    from .archive import EXECUTABLE, TAIL, at_the_end

    plugin = find(Blob(path.name, head, name=path.name)) if head else None
    if plugin is None and head and (head.startswith(EXECUTABLE) or path.name.lower().endswith(".zip")):
        try:
            with open_regular(path) as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - TAIL))
                tail = f.read(TAIL)
        except OSError:
            return None
        if at_the_end(head, path.name, tail, size):
            return find(Blob(path.name, b"PK\x03\x04", name=path.name))  # the zip source
    return plugin


def _open_by_path(reader: Callable[[str, Context], Iterator[Item]], path: Path, ctx: Context) -> Iterator[Item]:
    from . import images_capped

    origin = str(path)
    try:
        yield from images_capped(reader(origin, ctx), origin, ctx)
    except Exception as exc:  # one bad input never stops the rest
        yield ItemError(origin, "", f"could not read: {exc}")


def _listing_errors(problems: list[OSError]) -> Iterator[ItemError]:
    while problems:
        exc = problems.pop(0)
        yield ItemError(str(exc.filename or ""), "", f"could not list folder: {exc.strerror or exc}")




def open_member(blob: Blob, ctx: Context) -> Iterator[Item]:
    """Open a file found inside a folder or archive; unrecognised content is a skipped note."""
    if find(blob) is None:
        yield ItemError(blob.origin, "", EMPTY_FILE, skipped=True) if not blob.data else \
            unknown(blob.origin, blob.name or blob.origin, blob.data[:HEAD_BYTES], len(blob.data))
        return
    yield from ctx.open_blob(blob)


def _mb(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def size_problem(path: str, cap: int, cap_name: str, what: str = "file") -> ItemError | None:
    """Why a file on disk that a source reads by path cannot be read: gone, unreadable or over `cap`."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        return ItemError(path, "", f"could not read file: {exc.strerror or exc}")
    if size > cap:
        return ItemError(path, "", f"{what} is {_mb(size)}, over the {cap_name} cap of {_mb(cap)}")
    return None


# ---------------------------------------------------------------- raster images

# Pillow format names each sniffed kind may open as (Pillow's JPEG opener itself gives MPO files their class).
_PIL_FORMATS = {
    "PNG": ["PNG"], "JPEG": ["JPEG"], "GIF": ["GIF"], "BMP": ["BMP"], "TIFF": ["TIFF"],
    "WEBP": ["WEBP"], "ICO": ["ICO", "CUR"], "HEIF": ["HEIF"], "AVIF": ["AVIF"], "JPEG2000": ["JPEG2000"],
    "PPM": ["PPM"], "PSD": ["PSD"], "QOI": ["QOI"], "SGI": ["SGI"], "PCX": ["PCX"], "DDS": ["DDS"], "TGA": ["TGA"],
}
_ONE_PICTURE = {"PSD"}  # its frames are layers: the composite, as saved, is the picture
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
_BMP_HEADERS = {12, 16, 40, 52, 56, 64, 108, 124}
# Netpbm (PBM, PGM, PPM; PFM's grey Pf): the magic, then width and height, with blanks and comments between
_PNM = re.compile(rb"P[1-6f](?:\s|#[^\r\n]*[\r\n])+\d+(?:\s|#[^\r\n]*[\r\n])+\d+\s")


def image_kind(head: bytes) -> str | None:
    """The raster format the first bytes announce, "SVG", "EMF" or "WMF" for vector drawings, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADERS:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return "JPEG2000"
    if _is_ico(head):
        return "ICO"
    if _PNM.match(head):
        return "PPM"
    if head[:4] == b"8BPS" and head[4:6] in (b"\x00\x01", b"\x00\x02"):  # Photoshop; version 2 is a large (PSB)
        return "PSD" if head[5] == 1 else "PSB"
    if head[:4] == b"qoif":
        return "QOI"
    if head[:2] == b"\x01\xda" and len(head) > 3 and head[2] in (0, 1) and head[3] in (1, 2):
        return "SGI"
    if head[:4] == b"DDS ":
        return "DDS"
    if _is_pcx(head):
        return "PCX"
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = {head[8:12]} | {head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
        return None
    if _is_svg(head):
        return "SVG"
    if head[:4] in (b"II\xbc\x00", b"II\xbc\x01"):  # HD Photo: Office keeps a picture's original as one (.wdp)
        return "JPEG XR"
    if head[:4] == b"\x01\x00\x00\x00" and head[40:44] == b" EMF":
        return "EMF"
    if head[:4] == b"\xd7\xcd\xc6\x9a" or (head[:2] in (b"\x01\x00", b"\x02\x00")  # placeable, or a bare header
                                            and head[2:6] in (b"\x09\x00\x00\x03", b"\x09\x00\x00\x01")):
        return "WMF"
    return None


def _is_pcx(head: bytes) -> bool:
    """ZSoft PCX: its version, RLE, a bit depth, and a window (xmax ≥ xmin, ymax ≥ ymin) in its header."""
    if len(head) < 128 or head[0] != 0x0A or head[1] not in (0, 2, 3, 4, 5) or head[2] != 1 \
            or head[3] not in (1, 2, 4, 8):
        return False
    x0, y0, x1, y1 = struct.unpack_from("<4H", head, 4)
    return x1 >= x0 and y1 >= y0


_TGA_NAMES = (".tga", ".icb", ".vda", ".vst")


def _is_tga(head: bytes, name: str) -> bool:
    """Truevision TGA, which has no magic: by its name and a header that fits (colour map, image type, a size and
    a bit depth Pillow reads)."""
    if len(head) < 18 or not name.lower().split("?")[0].endswith(_TGA_NAMES):
        return False
    width, height = struct.unpack_from("<2H", head, 12)
    return head[1] in (0, 1) and head[2] in (1, 2, 3, 9, 10, 11) and width > 0 and height > 0 \
        and head[16] in (1, 8, 15, 16, 24, 32)


def blob_kind(head: bytes, blob: Blob) -> str | None:
    """image_kind, and TGA (known by its name as well as its header)."""
    return image_kind(head) or ("TGA" if _is_tga(head, blob.name or blob.origin) else None)


def _is_ico(head: bytes) -> bool:
    if head[:4] not in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") or len(head) < 22:
        return False
    count = int.from_bytes(head[4:6], "little")
    return 0 < count <= 256 and head[9] == 0  # the first entry's reserved byte is 0


def _is_svg(head: bytes) -> bool:
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16, as some Windows tools write XML
        head = head[:4096].decode("utf-16", errors="replace").encode()
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not text.startswith((b"<?xml", b"<svg", b"<!--", b"<!doctype svg")):
        return False
    return b"<svg" in text and b"<html" not in text


def _accepts_image(head: bytes, blob: Blob) -> bool:
    return blob_kind(head, blob) is not None


def open_image(blob: Blob, ctx: Context) -> Iterator[Item]:
    """Frames of a raster image: every TIFF page (an ImageJ/OME stack: its channels merged, microscopy.py);
    the first frame of an animation unless `all_frames`."""
    origin, limits = blob.origin, ctx.limits
    kind = blob_kind(blob.data[:4096], blob)
    if kind == "PSB":
        yield ItemError(origin, "", "Photoshop large document (PSB) is not decoded: save it as PSD, TIFF or PNG")
        return
    if kind == "SVG":  # not rasterised: the raster pictures it embeds, else a note
        from .svg import open_svg

        yield from open_svg(blob, ctx)
        return
    if kind in ("EMF", "WMF"):  # not drawn: the bitmaps it paints (a pasted scan), else a note
        from .metafile import open_metafile

        yield from open_metafile(blob, ctx, kind)
        return
    if kind == "JPEG XR":
        yield ItemError(origin, "", "JPEG XR (HD Photo) is not decoded: skipped", skipped=True)
        return
    if kind == "TIFF":  # a microscope's hyperstack or OME-TIFF: its channels merged, not page by page
        from .microscopy import stack_items

        stack = stack_items(blob, ctx)
        if stack is not None:
            yield from stack
            return
    if kind in ("HEIF", "AVIF"):  # the size decoded, which the decoders' own reports can hide (heif.py)
        try:
            stored = heif.largest_size(blob.data)
        except heif.TooManyBoxes as exc:
            yield ItemError(origin, "", f"{kind} file with {exc}: its stored size cannot be checked; not decoded")
            return
        if stored and stored[0] * stored[1] > limits.max_pixels:
            w, h = stored
            yield ItemError(origin, "", f"image is {w}×{h} = {w * h:,} pixels as stored, over the max_pixels cap "
                                        f"of {limits.max_pixels:,}; not decoded")
            return
    if kind == "ICO":  # Pillow decodes an icon's largest picture as it opens it, at the size its own header says
        w, h = _icon_largest(_cursor_as_icon(blob.data) if blob.data[2] == 2 else blob.data)
        if w * h > limits.max_pixels:
            yield ItemError(origin, "", f"icon holds a picture of {w}×{h} = {w * h:,} pixels as stored, over the "
                                        f"max_pixels cap of {limits.max_pixels:,}; not decoded")
            return
    if kind == "JPEG" and deep_jpeg.is_deep(blob.data):  # 12-bit, lossless 16-bit: Pillow reads 8 bits only
        yield deep_jpeg.read(blob.data, origin, limits)
        return
    allow_pixels(limits.max_pixels)
    formats, cursor = _PIL_FORMATS.get(kind), kind == "ICO" and blob.data[2] == 2
    kind = "CUR" if cursor else kind
    try:
        im = Image.open(io.BytesIO(_cursor_as_icon(blob.data) if cursor else blob.data), formats=formats)
        if cursor:
            im.format = "CUR"
        # Counting TIFF pages or GIF frames reads the whole file (TIFF: quadratic in Pillow), so those two
        # only ask whether there is a second one; the others have the count in their header.
        animated = bool(getattr(im, "is_animated", False)) and kind not in _ONE_PICTURE
        n = None if kind in ("TIFF", "GIF") else 1 if kind in _ONE_PICTURE else (getattr(im, "n_frames", 1) or 1)
        # an APNG's default image that is no frame of its animation (Pillow's frame 0): browsers never show it
        hidden = int(animated and kind == "PNG" and bool(getattr(im, "default_image", False)))
        if hidden:
            n -= 1
            animated = n > 1
    except Image.DecompressionBombError as exc:
        yield ItemError(origin, "", _over_cap(exc, limits.max_pixels))
        return
    except Exception as exc:  # Pillow names the BytesIO it was given: say what it could not do instead
        unidentified = isinstance(exc, Image.UnidentifiedImageError)
        why = _cut_short(kind, blob.data) or (
            "Pillow cannot read it" if unidentified else reason(exc, "Pillow cannot decode it"))
        error = ItemError(origin, "", f"corrupt or truncated {kind} image: {why}")
        if kind == "TIFF":  # a layout Pillow lacks (float16, float RGB, …): its pages through tifffile
            from .tiff import tiff_items

            yield from tiff_items(blob.data, origin, limits, error)
        else:
            yield error
        return

    if kind == "TIFF":  # every page
        yield from _tiff_pages(im, blob, "page" if animated else "", limits)
        return
    if animated and kind != "JPEG" and not limits.all_frames:
        yield from _first_not_blank(im, origin, n, limits, blob.data, hidden)
        return
    if kind == "JPEG":  # MPO extras are gain maps, depth maps or the other eye: the same picture
        label, indices = "", range(1)
    elif kind in _ONE_PICTURE:  # as opened (a PSD opens at its composite, which Pillow numbers after its layers)
        label, indices = "", [im.tell()]
    elif animated:
        label, indices = "frame", itertools.count(hidden)
    else:
        label, indices = "", range(hidden, hidden + 1)
    items = _frame_items(im, blob, kind, label, indices, n, animated, limits, hidden)
    if label == "frame":  # every frame: a picture an earlier frame showed is a note, not classified again
        from .repeats import distinct

        items = distinct(items, origin, label, limits.max_images_per_input)
    yield from items


def _cut_short(kind: str, data: bytes) -> str | None:
    """Where a WebP, HEIF or AVIF file Pillow cannot open ends early, from the size its RIFF header gives or a
    top-level box that runs past the end (their decoders say only "could not create decoder object" or nothing);
    None when that is not why."""
    if kind == "WEBP":
        size = int.from_bytes(data[4:8], "little") + 8
        if len(data) < size:
            return f"its RIFF header gives {size:,} bytes, the file has {len(data):,}: the file is truncated"
    elif kind in ("HEIF", "AVIF"):
        pos = 0
        for _ in range(1000):  # a file has a few top-level boxes (ftyp, meta, mdat, …)
            size, head = int.from_bytes(data[pos:pos + 4], "big"), 8
            if size == 1:
                size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
            if size < head or pos + head > len(data):  # 0: to the end of the file
                return None
            if pos + size > len(data):
                return (f"its {data[pos + 4:pos + 8].decode('latin-1')!r} box ends at byte {pos + size:,}, past the "
                        f"end of the file ({len(data):,} bytes): the file is truncated")
            pos += size
    return None


def _frame_items(im: Image.Image, blob: Blob, kind: str, label: str, indices: Iterable[int], n: int | None,
                 animated: bool, limits: Limits, hidden: int = 0) -> Iterator[Item]:
    origin = blob.origin
    for i, locator, exc in _frames(im, label, indices, hidden):  # callers cap the count (max_images_per_input)
        if exc is not None:
            yield ItemError(origin, locator, f"could not read {label or 'image'}: {exc}")
            break
        item = _decode_frame(im, origin, locator, n, limits.max_pixels, limits.decode_side, blob.data, not label)
        if kind == "JPEG" and isinstance(item, ItemError) and "truncated" in item.error:
            im.close()  # its pixels, decoded in part, freed before the file is decoded again (its one frame)
            ended = _end_marker_added(blob.data)
            if ended is not None:  # whole but for its last two bytes: read as viewers show it
                item = _decode_frame(Image.open(io.BytesIO(ended), formats=["JPEG"]), origin, locator, n,
                                     limits.max_pixels, limits.decode_side, ended, True)
        if animated and isinstance(item, ItemError) and "max_pixels" in item.error:
            # a GIF, APNG or WebP frame is drawn over the one before: reaching the next decodes this one whole
            item.error += "; the frames after it are not read either (each is drawn over it)"
            yield item
            break
        yield item


def _icon_largest(data: bytes) -> tuple[int, int]:
    """The size of the picture Pillow decodes as it opens an icon (the first of its directory as Pillow's icon
    reader sorts it), read by Pillow from that picture's own header without decoding it (a PNG's IHDR wherever it
    comes before IDAT; a bitmap's header, whose height counts the AND mask too), not from the directory, which may
    say 16×16 or 256×256 whatever follows; (0, 0) when there is none to read (opening it then says why)."""
    try:
        at = IcoImagePlugin.IcoFile(io.BytesIO(data)).entry[0].offset
        picture = io.BytesIO(data)
        picture.seek(at)
        if data[at:at + 8] == b"\x89PNG\r\n\x1a\n":
            return PngImagePlugin.PngImageFile(picture).size
        w, h = BmpImagePlugin.DibImageFile(picture).size
        return w, h // 2
    except Exception:
        return 0, 0


def _cursor_as_icon(data: bytes) -> bytes:
    """A Windows cursor (.cur) as the icon it is but for its hotspot, so that Pillow's icon reader reads it: the
    largest picture, a PNG one too, its alpha or AND mask kept (its cursor reader takes the first picture when
    another is 256 wide, drops alpha when there are several, and cannot read PNG ones). Each entry's hotspot
    becomes an icon's planes and bit count, the bit count from the picture's own header."""
    out = bytearray(data)
    out[2] = 1
    for i in range(int.from_bytes(data[4:6], "little")):
        entry = 6 + 16 * i
        if entry + 16 > len(data):
            break
        at = int.from_bytes(data[entry + 12:entry + 16], "little")
        bits = 32 if data[at:at + 4] == b"\x89PNG" else int.from_bytes(data[at + 14:at + 16], "little")
        out[entry + 4:entry + 8] = (1).to_bytes(2, "little") + bits.to_bytes(2, "little")
    return bytes(out)


def _end_marker_added(data: bytes) -> bytes | None:
    """A JPEG whose scans are whole but whose end marker is missing (a writer or an upload stopped in its last bytes),
    with the marker added; None when its data ends earlier, mid-scan. Pillow calls both truncated, and libjpeg
    fills what is missing with grey (as if with zero bits). So a photo cut short still is an error, not half grey
    (a progressive one cut just between two scans, whole but less sharp, is read)."""
    if data.endswith((b"\xff\xd9", b"\xff")):  # one ending in FF stops in the middle of a byte stuffed as FF 00
        return None
    ended = data + b"\xff\xd9"
    return ended if _scans_whole(ended) else None


def _scans_whole(data: bytes) -> bool:
    """Whether a JPEG's last scan holds all its data: bytes put where the decoder stops reading it (at the marker
    after it) are passed over when it is whole, and decoded in the place of what is missing (changing the picture)
    when it was cut. Both decoded at full size: at a reduced scale, a progressive file's last scans would not show."""
    stop, restarts = last_scan_end(data)  # a marker after a cut stops the decoder there (no pad read)
    pad = scan_pad(restarts)
    try:  # one decoded at a time, not both kept as bytes (4× the pixels at once)
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
            looks = list(_digests(im))
        with Image.open(io.BytesIO(data[:stop] + pad + data[stop:]), formats=["JPEG"]) as im:
            return all(a == b for a, b in zip(looks, _digests(im)))  # hashing stops at the first strip that differs
    except Exception:
        return False


def scan_pad(restarts: int) -> bytes:
    """Bytes to put where a decoder stops reading a JPEG's last scan: runs of bytes, each ended by a restart marker,
    the first the one the scan needs next (`restarts` read before it). A file cut just before it reads on into them
    (libjpeg leaves a marker one or two ahead of the one it wants, and fills with grey)."""
    return b"".join(bytes(range(254, 222, -1)) + bytes((0xFF, 0xD0 + (restarts + k) % 8)) for k in range(8))


def arithmetic_coded(data: bytes) -> bool:
    """Whether a JPEG is arithmetic-coded (SOF9-SOF15): bytes put before the marker after its last scan change its
    picture even when that scan is whole (its decoder reads on into them), so `_scans_whole` cannot tell."""
    header = deep_jpeg.frame_header(data)
    return header is not None and header[0] >= 0xC9


def _grey_end(im: Image.Image) -> bool:
    """Whether a decoded JPEG's last block (bottom right as stored), and then its whole last row of blocks, is flat
    mid-grey, as libjpeg fills the blocks it has no data for when a marker comes before the scan's end (Pillow then
    reports nothing). The row: a photo or chart with a grey corner is not taken for one (its check decodes the
    file twice more); a cut within the last row of blocks, which leaves little grey, is not looked for."""
    w, h = im.size
    k = min(8, w, h)

    def flat(box) -> bool:
        bands = im.crop(box).getextrema()
        bands = bands if isinstance(bands[0], tuple) else (bands,)
        return all(lo == hi and lo in (127, 128) for lo, hi in bands)  # 127: an Adobe CMYK file's inverted grey

    return flat((w - k, h - k, w, h)) and flat((0, h - k, w, h))


def _digests(im: Image.Image) -> Iterator[bytes]:
    """Digests of an image's pixels, a strip of rows at a time (no copy of the whole frame). SHA-1: twice
    BLAKE2's speed on a CPU with SHA extensions (most of today's); it tells two decodes apart, guarding no secret."""
    im.load()
    for top in range(0, im.height, 256):
        yield hashlib.sha1(im.crop((0, top, im.width, min(im.height, top + 256))).tobytes(),
                           usedforsecurity=False).digest()


def last_scan_end(data: bytes) -> tuple[int, int]:
    """Where the decoder stops reading the last scan's entropy-coded data: at the first marker in it other than FF 00
    stuffing and, in a file with restart intervals, RST0-7; the end of `data` when it ends inside that data, or when
    the markers cannot be walked. With the number of restart markers read in that scan before it."""
    pos, restarts, stop, count = 2, False, len(data), 0
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill, a stray RST, TEM: no length
            pos += 1 if marker == 0xFF else 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDD:  # DRI
            restarts = data[pos + 4:pos + 6] != b"\0\0"
        if marker != 0xDA:
            pos = end
            continue
        at, count = end, 0  # a scan: its data runs to the next marker the decoder does not read through
        while (at := data.find(b"\xff", at)) >= 0:
            follow = at + 1
            while follow < len(data) and data[follow] == 0xFF:  # fill bytes: what follows them says which
                follow += 1
            if follow < len(data) and (data[follow] == 0 or (restarts and 0xD0 <= data[follow] <= 0xD7)):
                count += data[follow] != 0
                at = follow + 1  # stuffing (FF 00, FF FF 00) or a restart marker: the data goes on
                continue
            break
        if at < 0 or follow >= len(data):
            return len(data), count
        stop = pos = at  # at the first FF of a marker's fill bytes (FF FF D9): the decoder stops there
    return stop, count


def _first_not_blank(im: Image.Image, origin: str, n: int | None, limits: Limits, data: bytes,
                     hidden: int = 0) -> Iterator[Item]:
    """The first frame of an animation; when it is blank (one colour, or clear: a fade-in's black start, a
    placeholder), the first of the next ones that is not, within BLANK_FRAMES and `max_pixels` pixels in all
    (so a large canvas is not decoded 32 times: an 80 kB GIF of 8000×8000 blank frames took 20 s); the first
    again when all are. A HEIF's first is its primary image, whichever it is in the file; an APNG's, the first
    after the `hidden` default image."""
    first = None
    looks = max(1, min(BLANK_FRAMES, limits.max_pixels // max(1, im.width * im.height)))
    shown = max(hidden, im.tell())  # the frame a viewer shows: 0, a HEIF's primary image (pillow-heif opens at it)
    order = itertools.chain([shown], (i for i in itertools.count(hidden) if i != shown))
    for _, locator, exc in _frames(im, "frame", itertools.islice(order, looks), hidden):
        if exc is not None:
            break
        item = _decode_frame(im, origin, locator, n, limits.max_pixels, limits.decode_side, data)
        if isinstance(item, ImageItem) and (looks == 1 or not is_blank(item.image)):
            yield item
            return
        first = item if first is None else first
        if isinstance(item, ItemError):  # the frames after it are drawn over it: not read
            break
    if first is not None:
        yield first


def is_blank(img: Image.Image) -> bool:
    """Whether an 8-bit image shows one colour (within 8 levels a sample) or nothing (clear)."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        return False
    bands = img.getextrema()
    if img.mode.endswith("A") and bands[-1][1] == 0:
        return True
    return all(hi - lo <= 8 for lo, hi in (bands if isinstance(bands[0], tuple) else [bands]))


def _frames(im: Image.Image, label: str, indices: Iterable[int],
            hidden: int = 0) -> Iterator[tuple[int, str, Exception | None]]:
    """(index, locator, None) for each frame `im` seeks to, in order, until EOFError (frames decode lazily); the
    exception in place of None for one it cannot seek to. Numbered from 1 after the `hidden` frames."""
    for i in indices:
        locator = f"{label} {i + 1 - hidden}" if label else ""
        try:
            if i != im.tell():  # a HEIF opens at its primary image, which need not be the first
                im.seek(i)
        except EOFError:
            return
        except Exception as exc:
            yield i, locator, exc
            continue
        yield i, locator, None


def _tiff_pages(im: Image.Image, blob: Blob, label: str, limits: Limits) -> Iterator[Item]:
    """Every page of a TIFF Pillow opened, one at a time (callers cap the count). A page Pillow cannot set up
    (a layout its table lacks) or reads as other numbers is read with tifffile instead (its error, if any, is
    tifffile's); one Pillow cannot decode is tried with tifffile too, Pillow's error standing if that fails
    (unless tifffile refused it unread, saying why)."""
    from .tiff import TiffPages, misread_by_pillow

    origin, pages = blob.origin, TiffPages(blob.data, blob.origin, limits)
    # Pillow ends the chain at an IFD it reads cut short (a file whose OME-XML, written last, is gone): tifffile
    # says whether there are more pages, and reads those after Pillow's last
    label = label or ("page" if pages.has(1) else "")
    i = -1
    try:
        for i, locator, exc in _frames(im, label, itertools.count()):
            if exc is not None:  # a page Pillow cannot set up: tifffile's item, then the next page
                item = pages.item(i, locator)
                if item is None or pages.broken:
                    why = (item is None and pages.missing(i)) or f"could not read {label or 'image'}: {exc}"
                    yield ItemError(origin, locator, why)
                    break
                yield item
                continue
            item = pages.item(i, locator) if misread_by_pillow(im) else None
            if item is None:
                errors = libtiff_errors()
                if errors is not None:
                    errors.clear()
                # the last page (its IFD names no next one) shares its pixels: no page decodes into them again
                last = getattr(im.tag_v2, "next", 1) == 0
                item = _decode_frame(im, origin, locator, None, limits.max_pixels, limits.decode_side, still=last)
                # a page libtiff complained of as it decoded (Pillow gives a damaged JPEG strip half grey) too
                retried = pages.item(i, locator) if isinstance(item, ItemError) or errors else None
                # tifffile's reading, or its refusal from a tile's own header (WebP: Pillow's is "decoder error -2")
                # or its naming of the tile or strip that does not decode (Pillow's: "decoder error -2")
                if isinstance(retried, ImageItem) or (retried is not None and (
                        retried.error.endswith(("not decoded", "the file is truncated"))
                        or " does not decode (" in retried.error)):
                    item = retried
                elif isinstance(item, ImageItem) and errors and retried is not None:  # a JPEG page: tifffile
                    item = ItemError(origin, locator, f"corrupt TIFF image: {errors[0]}")  # leaves it to Pillow
                elif isinstance(item, ItemError) and pages.cut(i):  # a JPEG page cut short: Pillow's "error -2"
                    item = ItemError(origin, locator, f"corrupt or truncated TIFF image: {pages.cut(i)}")
                elif isinstance(item, ImageItem) and item.metadata.get("bits") == 16 and _dim_colour(item.image):
                    retried = pages.item(i, locator)  # tifffile's 16 bits, shown by the depth they reach
                    if isinstance(retried, ImageItem):  # 10 to 15 bits stored in 16
                        item = ImageItem(origin, locator, retried.image, item.format, item.metadata, item.full_size)
            yield item
        else:
            yield from pages.after(i + 1)
    finally:
        pages.close()


def _dim_colour(image: Image.Image) -> bool:
    """Whether a colour image Pillow gave from 16-bit samples (their top 8 bits) stays under a quarter of white: its
    values reach tiff.CAMERA_BITS (14) or fewer (a 12-bit camera's: at most 15 of 255)."""
    return image.mode in ("RGB", "RGBA") and max(hi for _, hi in image.getextrema()[:3]) < 64


def allow_pixels(max_pixels: int) -> None:
    """Let Pillow's own bomb check (an error at twice its limit) follow a cap raised past it; every source checks
    its images against `max_pixels` itself before decoding. Pillow's limit is the whole process's, so it is left
    as it is unless the cap needs more (the default cap, 100,000,000, does not: Pillow's errors from 178,956,970)."""
    if max_pixels > 2 * (Image.MAX_IMAGE_PIXELS or max_pixels):
        Image.MAX_IMAGE_PIXELS = (max_pixels + 1) // 2


def _over_cap(exc: Exception, max_pixels: int) -> str:
    """Pillow's own bomb check (at twice its limit, which follows max_pixels) told as the max_pixels cap."""
    m = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
    return f"image is {size}, over the max_pixels cap of {max_pixels:,}; not decoded"


def _decode_frame(im: Image.Image, origin: str, locator: str, n: int | None, max_pixels: int,
                  decode_side: int | None = None, data: bytes | None = None, still: bool = False) -> Item:
    """The item of the frame `im` is at. `still`: the file's one picture, which nothing decodes into again."""
    w, h = im.size
    if w * h > max_pixels:
        return ItemError(origin, locator, f"image is {w}×{h} = {w * h:,} pixels, over the max_pixels cap "
                                          f"of {max_pixels:,}; not decoded")
    if w == 0 or h == 0:
        return ItemError(origin, locator, f"image has no pixels ({w}×{h})")
    mode, deep = im.mode, _sixteen_to_eight(im)
    try:
        draft_jpeg(im, decode_side)
        jpeg2000.reduce(im, data, decode_side)
        _png_key(im)
        wide = _wide_grey_alpha(im, data)
        if wide is None:
            wide = _pnm_scaled(im, data)
        if wide is not None:  # stretched as 16-bit grey is: no gAMA, no grey profile (as for I;16)
            out = ImageOps.exif_transpose(wide)
        else:
            im.load()
            if (im.format == "JPEG" and data is not None and _grey_end(im) and not arithmetic_coded(data)
                    and not _scans_whole(data)):
                return ItemError(origin, locator, "corrupt or truncated JPEG image: its data stops before the "
                                                  "picture ends (a marker follows the cut); the rest would be grey")
            dim = deep and im.format == "PNG" and _dim_colour(im)  # before _to_srgb may convert the shared pixels
            out = _png_gamma(im, _to_srgb(_min_is_white(im, _upright(im, still))))
            out = _unused_alpha(im, out)
            if dim:  # 10 to 14 bits stored in 16: by their own depth
                deeper = _deep_png(im, data)
                out = out if deeper is None else _png_gamma(im, _to_srgb(ImageOps.exif_transpose(deeper)))
    except Image.DecompressionBombError as exc:
        return ItemError(origin, locator, _over_cap(exc, max_pixels))
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:  # the last two: QOI cut short
        why = reason(exc, "Pillow cannot decode it")
        return ItemError(origin, locator, f"corrupt or truncated {im.format} image: {why}")
    except RuntimeError as exc:  # libheif's other refusals: a codec it lacks (AV1 in a file not branded AVIF), a limit
        return ItemError(origin, locator, f"could not decode {im.format} image: {str(exc).strip()}")
    meta = {"mode": mode, "frames": n} if n else {"mode": mode}  # TIFF and GIF: not counted
    if deep:
        meta["bits"] = 16  # the file's; its pixels here have 8 bits a channel
    return ImageItem(origin, locator, _plain_mode(out), im.format, meta,
                     full_size=stored_size((w, h), im.size, out.size))


def _upright(im: Image.Image, still: bool) -> Image.Image:
    """`im` turned upright by its EXIF orientation, as an image of its own. A still picture that needs no turning
    shares `im`'s decoded pixels rather than copying them (a 100 Mpx RGB PNG peaked at 870 MB, not 470 MB): nothing
    decodes into them again, as the next frame or page of a file does."""
    if still and im.getexif().get(0x0112, 1) not in range(2, 9):
        return im._new(im.im)
    return ImageOps.exif_transpose(im)  # a detached copy, upright


def _sixteen_to_eight(im: Image.Image) -> bool:
    """Whether Pillow decodes `im`, 16 bits a channel in its file, to 8: colour (and grey with alpha) PNG and TIFF.
    16-bit grey stays 16-bit (I;16)."""
    args = im.tile[0].args if im.tile else None
    raw = args[0] if isinstance(args, tuple) and args else args
    return (im.format in ("PNG", "TIFF") and isinstance(raw, str) and ";16" in raw  # not BMP's 5-6-5 BGR;16
            and not im.mode.startswith("I"))


def _png_key(im: Image.Image) -> None:
    """A PNG's colour key as the values Pillow decodes its pixels to, or it never matches: a 16-bit RGB key as
    its high bytes (colours within 1/256 of the key then count as keyed too), a 2- or 4-bit grey key scaled to
    8 bits as the pixels are (Pillow maps 1-bit keys itself; palette keys name an index). Always from the key
    as stored, kept aside, as an APNG's frames share `info`."""
    key = im.info.get("_png_key", im.info.get("transparency"))
    rawmode = im.tile[0].args if im.format == "PNG" and im.tile else None
    if im.mode == "RGB" and isinstance(key, tuple) and str(rawmode).endswith(";16B"):
        im.info["_png_key"], im.info["transparency"] = key, tuple(v >> 8 for v in key)
    elif im.mode == "L" and isinstance(key, int) and rawmode in ("L;2", "L;4"):
        im.info["_png_key"], im.info["transparency"] = key, key * 255 // ((1 << int(rawmode[2])) - 1)


def _wide_grey_alpha(im: Image.Image, data: bytes | None) -> Image.Image | None:
    """A still 16-bit grey PNG with alpha as LA, its grey stretched over the opaque pixels as the model stretches
    16-bit grey without alpha (and as tiff.py gives such TIFF pages). Pillow reads it as RGBA of the top 8 bits,
    so 12-bit values (0..4095) came out nearly black. None for any other image, or when libpng (imagecodecs)
    cannot read it: Pillow's reading then stands, or its error."""
    if (data is None or im.format != "PNG" or not im.tile or im.tile[0].args != "LA;16B"
            or getattr(im, "is_animated", False)):
        return None
    try:
        import imagecodecs

        arr = imagecodecs.png_decode(data)
    except Exception:
        return None
    if arr.dtype != np.uint16 or arr.shape != (im.height, im.width, 2):
        return None
    alpha = np.right_shift(arr[..., 1], 8, out=np.empty(arr.shape[:2], np.uint8), casting="unsafe")
    grey = stretch_levels([arr[..., 0]], (0.0, 65535.0), alpha > 0)[0]
    del arr  # 4 bytes a pixel, let go before the 8-bit image is made
    out = Image.merge("LA", [Image.fromarray(grey, "L"), Image.fromarray(alpha, "L")])
    # for the orientation: XMP's, and the eXIf chunk's (Pillow reads one after the pixels only by decoding them)
    out.info = {k: im.info[k] for k in ("XML:com.adobe.xmp", "xmp") if k in im.info}
    if b"eXIf" in data:
        out.info["exif"] = im.getexif().tobytes()
    return out


_PNM_STRIP = 1 << 22  # samples scaled at a time


def _pnm_scaled(im: Image.Image, data: bytes | None) -> Image.Image | None:
    """A binary Netpbm file whose maxval is neither 255 nor 65535 (a 10- or 12-bit export's 1023 or 4095) decoded
    with numpy, scaled as Pillow scales it (to 0..255, or grey to 0..65535, as I;16 here): Pillow's own decoder
    does it in Python a sample at a time, 3 s a megapixel of grey, 10 s of colour, holding the GIL. None for any
    other image, which Pillow reads."""
    if im.format != "PPM" or data is None or len(im.tile) != 1 or im.tile[0].codec_name != "ppm":
        return None
    tile = im.tile[0]
    rawmode, maxval = tile.args
    bands, wide = len(rawmode), maxval > 255  # "L" or "RGB"; two bytes a sample past 255, big-endian
    count = im.width * im.height * bands
    if len(data) - tile.offset < count * (2 if wide else 1):
        raise ValueError("not enough image data")  # Pillow's words for it
    samples = np.frombuffer(data, ">u2" if wide else np.uint8, count, tile.offset)
    grey16 = im.mode == "I"
    out = np.empty(count, np.uint16 if grey16 else np.uint8)
    top = 65535 if grey16 else 255
    for at in range(0, count, _PNM_STRIP):  # values over maxval count as maxval, as Pillow has them
        part = np.minimum(samples[at:at + _PNM_STRIP], maxval)
        out[at:at + _PNM_STRIP] = np.rint(part / maxval * top)  # Pillow's sums in its order: a half rounds alike
    shape = (im.height, im.width, bands) if bands > 1 else (im.height, im.width)
    image = Image.fromarray(out.reshape(shape))  # RGB, L or I;16 by its shape and type
    image.info = dict(im.info)
    return image


def _deep_png(im: Image.Image, data: bytes | None) -> Image.Image | None:
    """A still 16-bit colour PNG read by libpng (imagecodecs), its colours shown by the bit depth they reach as
    tiff.py shows a TIFF page's (a 12-bit camera's values came out nearly black as Pillow's top 8 bits), with its
    alpha or colour key, and `im`'s info for its profile, gamma and orientation. None when libpng cannot read it
    or the file is not such a PNG: Pillow's reading then stands."""
    if data is None or getattr(im, "is_animated", False):
        return None
    from .tiff import alpha_levels, bits_reached, to8

    try:
        import imagecodecs

        arr = imagecodecs.png_decode(data)
    except Exception:
        return None
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[:2] != (im.height, im.width) or arr.shape[2] not in (3, 4):
        return None
    planes = [arr[..., k] for k in range(3)]
    used = bits_reached(planes, "u", 16)
    bands = [Image.fromarray(to8(p, "u", used), "L") for p in planes]
    key = im.info.get("_png_key")  # a 16-bit colour key, as stored (see _png_key)
    if arr.shape[2] == 4:
        bands.append(Image.fromarray(alpha_levels(arr[..., 3], "u", 16), "L"))
    elif isinstance(key, tuple) and len(key) == 3:
        keyed = (arr[..., 0] == key[0]) & (arr[..., 1] == key[1]) & (arr[..., 2] == key[2])
        bands.append(Image.fromarray(np.where(keyed, 0, 255).astype(np.uint8), "L"))
    del arr, planes
    out = Image.merge("RGBA" if len(bands) == 4 else "RGB", bands)
    out.info = {k: v for k, v in im.info.items() if k not in ("transparency", "_png_key")}
    return out


def _unused_alpha(im: Image.Image, out: Image.Image) -> Image.Image:
    """`out` without its alpha when `im` is a BMP or TGA whose alpha is 0 everywhere: writers that fill the byte with
    zeros still give a BMP an alpha mask, and browsers then show the picture opaque, not a clear rectangle; a 32-bit
    TGA's fourth byte is as often unused (Pillow reads it as alpha whatever the header's alpha bits say)."""
    if im.format not in ("BMP", "TGA") or out.mode != "RGBA" or out.getbbox() is not None:  # RGBA's bbox: alpha > 0
        return out
    return out.convert("RGB")


def _min_is_white(im: Image.Image, out: Image.Image) -> Image.Image:
    """`out` inverted when `im` is a 16/32-bit or float TIFF stored MinIsWhite (Pillow inverts 1 and 8 bits)."""
    if im.format != "TIFF" or out.mode not in ("I;16", "I;16B", "I;16L", "I", "F") or im.tag_v2.get(262) != 0:
        return out
    arr = np.asarray(out)
    inverted = Image.fromarray(1.0 - arr if out.mode == "F" else np.invert(arr))
    inverted.info = out.info
    return inverted


def _png_gamma(im: Image.Image, out: Image.Image) -> Image.Image:
    """`out` with a PNG's gAMA applied as browsers apply it: the stored numbers decoded with the file's gamma and
    encoded for sRGB. Not when an sRGB or iCCP chunk overrides it, nor for a gamma within 5 % of sRGB's 1/2.2
    (libpng's threshold; Chromium's is about the same). Alpha is left; a colour key becomes alpha first, as it
    names stored numbers. 16-bit grey is left: the model stretches it by its percentiles anyway."""
    gamma = im.info.get("gamma")
    if (im.format != "PNG" or not gamma or "srgb" in im.info or "icc_profile" in im.info
            or abs(gamma * 2.2 - 1) < 0.05 or out.mode not in ("L", "LA", "RGB", "RGBA", "P")):
        return out
    linear = np.power(np.arange(256) / 255, 1 / gamma)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    lut = np.round(255 * srgb).astype(int).tolist()
    if out.mode == "P":  # the palette's colours (a tRNS names indices, which stay); `out` is ours to change (_upright)
        out.putpalette([lut[v] for v in out.getpalette("RGB")], "RGB")
        return out
    if "transparency" in out.info:
        out = out.convert("LA" if out.mode == "L" else "RGBA")
    colours = len(out.getbands()) - out.mode.endswith("A")
    return out.point(lut * colours + list(range(256)) * (len(out.getbands()) - colours))


_ICC_MODES = {b"RGB ": ("RGB", "RGBA", "P"), b"CMYK": ("CMYK",), b"GRAY": ("L", "LA")}  # a profile's space: modes
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_ICC_STRIP = 1 << 20  # pixels converted at a time


def profile_to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """`img` converted to sRGB from an ICC profile its file keeps apart from the pixels (a DICOM element, a TIFF
    page read by tifffile), as `_to_srgb` converts an embedded one; `img` itself without one."""
    if not icc:
        return img
    img.info["icc_profile"] = icc
    out = _to_srgb(img)
    img.info.pop("icc_profile", None)
    out.info.pop("icc_profile", None)
    return out


def _to_srgb(img: Image.Image) -> Image.Image:
    """`img` converted from its embedded ICC profile to sRGB, as colour-managed viewers show it; `img` itself
    when it has none, an sRGB one or one for other modes, and when anything fails (a broken profile never
    fails the image)."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in _ICC_MODES.get(bytes(icc[16:20]), ()):
        return img
    if img.mode == "P":
        return _palette_to_srgb(img, bytes(icc))
    if img.mode == "LA" or (img.mode == "L" and "transparency" in img.info):
        return _grey_alpha_to_srgb(img, icc)
    keyed = "transparency" in img.info  # a colour key names stored values: alpha before converting
    if keyed and img.mode != "RGB":
        return img
    try:
        transform = _srgb_transform(bytes(icc), "RGBA" if keyed else img.mode)
        if transform is None:
            return img
        if not keyed and img.mode == transform.output_mode:  # RGB(A): converted where it lies (see _upright)
            out = transform.apply_in_place(img)
            out.info = {k: v for k, v in img.info.items() if k != "icc_profile"}
            return out
        out = Image.new("L" if img.mode == "L" else transform.output_mode, img.size)
        rows = max(1, _ICC_STRIP // img.width)  # a strip at a time: LittleCMS makes a new image for each call
        for top in range(0, img.height, rows):
            part = img.crop((0, top, img.width, min(top + rows, img.height)))
            part = transform.apply(part.convert("RGBA") if keyed else part)
            out.paste(part.convert("L") if img.mode == "L" else part, (0, top))
    except Exception:
        return img
    out.info = {k: v for k, v in img.info.items() if k not in ("icc_profile", "transparency")}
    return out


def _palette_to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """A palette image with its colours converted from an RGB profile to sRGB, as browsers show it (a copy; a tRNS
    names indices, which stay)."""
    transform = _srgb_transform(icc, "RGB")
    if transform is None:
        return img
    try:
        colours = img.getpalette("RGB") or []
        row = transform.apply(Image.frombytes("RGB", (len(colours) // 3, 1), bytes(colours)))
    except Exception:
        return img
    out = img.copy()
    out.putpalette(row.tobytes(), "RGB")
    out.info = {k: v for k, v in img.info.items() if k != "icc_profile"}
    return out


def _grey_alpha_to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """Grey with alpha (LA, or L with a colour key, which names stored values: alpha first) with its grey converted
    from a grey profile as `_to_srgb` converts L; `img` itself when that changes nothing."""
    la = img if img.mode == "LA" else img.convert("LA")
    grey, alpha = la.split()
    grey.info["icc_profile"] = icc
    shown = _to_srgb(grey)
    if shown is grey:
        return img
    out = Image.merge("LA", (shown, alpha))
    out.info = {k: v for k, v in img.info.items() if k not in ("icc_profile", "transparency")}
    return out


@lru_cache(maxsize=8)  # by profile bytes; lru_cache is thread-safe, and so is sharing an lcms transform
def _srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from the profile `icc` to sRGB for `mode` images; None for an sRGB profile (by its
    description) or one LittleCMS refuses."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if (profile.profile.profile_description or "").startswith("sRGB"):
            return None
        # relative colorimetric, as Chromium converts (a LUT-based profile, a CMYK one say, has other tables for
        # the perceptual intent; a matrix profile gives the same either way)
        return ImageCms.buildTransform(profile, _SRGB, mode, "RGBA" if mode == "RGBA" else "RGB",
                                       renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except Exception:
        return None


def draft_jpeg(im: Image.Image, decode_side: int | None) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale (DCT scaling) while both sides stay ≥ decode_side."""
    if decode_side and im.format == "JPEG" and min(im.size) >= 2 * decode_side:
        im.draft(im.mode, (decode_side, decode_side))


def stored_size(stored: tuple[int, int], decoded: tuple[int, int], shown: tuple[int, int]) -> tuple[int, int] | None:
    """The stored size to report when the decode came out smaller (turned as the shown pixels are), else None."""
    if decoded == stored:
        return None
    return stored if shown == decoded else (stored[1], stored[0])


def _plain_mode(img: Image.Image) -> Image.Image:
    """Modes the model's to_rgb handles as they are; the rarer ones become RGB or L."""
    if img.mode in ("1",):
        return img.convert("L")
    if img.mode == "La":  # premultiplied alpha (a grey TIFF): un-premultiplied, as Pillow gives RGBa as RGBA
        return img.convert("LA")
    if img.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return img.convert("RGB")
    if img.mode.startswith("I;16") and img.mode not in ("I;16", "I;16B", "I;16L"):
        return img.convert("I")
    return img


register(SourcePlugin("image", _accepts_image, open_image, priority=40))

from . import archive, camera_raw, compound, czi, dicom, email_file, flat_odf, jxl, lif, metaimage, mgh, microscopy, minc, mrc, nifti, nrrd_volume, rtf, sevenzip, slide, tar, tnef, video  # noqa: E402,F401  (each registers itself on import)
