"""A DICOMDIR given alone (the index at the top of a CD or USB export): the files it lists, each an input of its
own, read from the folders beside it, in its records' order. A listed file that is missing, or whose name would lead
outside the DICOMDIR's folder, is an error row; the DICOMDIR itself is a note, after them, saying how many files it lists. Found
in a folder (whose files are read anyway), an archive or an upload, it is `as_bytes_note`: a note, or an error when
given without its files."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator

from .base import Blob, Context, Item, ItemError, unit

MEDIA_DIRECTORY = b"1.2.840.10008.1.3.10"  # its Media Storage SOP Class, in the file meta at the start


def is_dicomdir(head: bytes) -> bool:
    """Whether a file's first bytes are a DICOMDIR's: a DICOM preamble, then file meta (always explicit VR little
    endian) whose Media Storage SOP Class UID (0002,0002) is the Media Storage Directory's."""
    if head[128:132] != b"DICM":
        return False
    at = head.find(b"\x02\x00\x02\x00UI", 132, 1024)
    if at < 0:
        return False
    size = int.from_bytes(head[at + 6:at + 8], "little")
    return head[at + 8:at + 8 + size].rstrip(b"\0 ") == MEDIA_DIRECTORY


def listed(data: bytes, max_bytes: int) -> list[tuple[str, ...]]:
    """Each ReferencedFileID of the DICOMDIR's records (the parts of a path, `IMAGES/IM000001`), once, in order.
    Raises what pydicom raises for a damaged one."""
    from .dicom import read

    return referenced(read(data, max_bytes)[0])  # as a DICOM file is read


def referenced(ds) -> list[tuple[str, ...]]:
    """The ReferencedFileIDs of a read DICOMDIR's records, once each, in order."""
    out: dict[tuple[str, ...], None] = {}
    for record in ds.get("DirectoryRecordSequence") or []:
        ref = record.get("ReferencedFileID")
        if ref:
            out.setdefault(tuple(str(p).strip() for p in ([ref] if isinstance(ref, str) else ref)), None)
    return list(out)


def find(folder: Path, parts: tuple[str, ...], names: dict[Path, dict[str, str]] | None = None) -> Path | str:
    """The file a ReferencedFileID names under `folder`, or why not. Names are matched in any case when not as
    written (a CD's upper-case names may be mounted in lower case); none may climb out of the folder. `names`:
    each folder's names by their lower case, listed once for a run (listed for each file, 10,000 files in one
    folder took 230 s)."""
    if not parts or any(not p or p in (".", "..") or "/" in p or "\\" in p or "\0" in p for p in parts):
        return f"the DICOMDIR lists a file named {'/'.join(parts)!r}, which is not a path inside its folder"
    names = {} if names is None else names
    path = folder
    try:  # a name too long for the file system: OSError
        for part in parts:
            if not (path / part).exists() and path.is_dir():
                if path not in names:
                    names[path] = {}
                    with contextlib.suppress(OSError):  # unreadable: the file is then not found
                        for n in sorted(os.listdir(path)):
                            names[path].setdefault(n.lower(), n)
                part = names[path].get(part.lower(), part)
            path = path / part
        real = path.resolve()
        if not real.is_relative_to(folder.resolve()):
            return "listed in the DICOMDIR, but it is a link leading outside the DICOMDIR's folder; not read"
        if real.is_dir() or (real.exists() and not real.is_file()):  # a FIFO would block, a device never end
            what = "a folder" if real.is_dir() else "not a regular file"
            return f"listed in the DICOMDIR, but it is {what}; not read"
        if not real.is_file():
            return "listed in the DICOMDIR, but not found beside it (the export was copied in part?)"
    except (OSError, RuntimeError) as exc:  # a link in a loop: Python 3.11 raises RuntimeError
        return f"listed in the DICOMDIR, but cannot be looked up: {getattr(exc, 'strerror', None) or exc}"
    return path


def tasks(path: Path, ctx: Context, skip: Callable[[str], bool] | None,
          file_tasks: Callable[..., Iterator[Callable[[], Iterator[Item]]]],
          read_file: Callable) -> Iterator[Callable[[], Iterator[Item]]] | None:
    """The units of work of a DICOMDIR given alone: its files', then a note for itself; None when it cannot be
    read as one (dicom.py then says what it is)."""
    blob = read_file(path, ctx)
    if isinstance(blob, ItemError):
        return None
    try:
        names = listed(blob.data, ctx.limits.max_input_bytes)
    except Exception:
        return None
    return _tasks(path, names, ctx, skip, file_tasks)


def _tasks(path: Path, names: list[tuple[str, ...]], ctx: Context, skip, file_tasks) -> Iterator:
    folders: dict[Path, dict[str, str]] = {}
    # a link to a DICOMDIR (on the desktop, to the CD's): its files are beside the DICOMDIR, not the link
    beside = path.resolve().parent if path.is_symlink() else path.parent
    given = getattr(ctx, "given", None) or Given()
    own = file_key(path)
    for parts in names:
        found = find(beside, parts, folders)
        if isinstance(found, str):
            origin = str(beside.joinpath(*[p for p in parts if p not in ("", ".", "..")]))
            yield unit(origin, iter, (ItemError(origin, "", found),))
            continue
        key = file_key(found)
        if key is not None and (key == own or given.has(key, found)):  # itself, or read as given in this run
            continue
        if key is not None:
            given.listed.add(key)
        # a DICOMDIR it lists is the note it gives in a folder, not followed (a loop of them never ended)
        yield from file_tasks(found, ctx, skip=skip, listed=True)
    # last: a run stopped before it, resumed, reads the DICOMDIR again and passes over the files done
    were = "was" if len(names) == 1 else "were"
    note = ItemError(str(path), "", f"A DICOMDIR: the index of an export; the {_count(names)} it lists {were} read"
                     if names else "A DICOMDIR listing no files: nothing to read", skipped=True)
    yield unit(str(path), iter, (note,))


def _count(names: list) -> str:
    return f"{len(names):,} file{'s' if len(names) != 1 else ''}"


def file_key(path: Path | str) -> tuple[int, int] | None:
    """A file's identity (device, inode): the same file by a link or in another case is one."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


class Given:
    """What a run was given so far, so that a DICOMDIR given with its export's folders or files (`cd/*`, `find cd
    -type f | medimg classify -`) reads each file once, in either order: the folders given (real paths), the DICOM
    files given (by `file_key`), and the files read through a DICOMDIR given. Kept by the thread making the units."""

    def __init__(self) -> None:
        self.folders: set[str] = set()
        self.files: set[tuple[int, int]] = set()
        self.listed: set[tuple[int, int]] = set()
        self.later: list[str] = []  # DICOM files a resumed run gave before: looked up only if a DICOMDIR comes

    def has(self, key: tuple[int, int], path: Path) -> bool:
        """Whether a file a DICOMDIR lists was given already: itself, in a folder given, or through a DICOMDIR."""
        if self.later:  # a stat each: 100,000 of them made resuming an extract of DICOM files 10-15 % slower
            self.files.update(k for name in self.later if (k := file_key(name)) is not None)
            self.later = []
        if key in self.files or key in self.listed:
            return True
        if not self.folders:
            return False
        from .files import is_hidden

        real = Path(os.path.realpath(path))
        for above in real.parents:  # a folder given holding it read it, unless its walk left it out as hidden
            if str(above) in self.folders:
                return not any(is_hidden(p) for p in real.relative_to(above).parts)
        return False

    def read_already(self, path: Path, head: bytes, member: bool) -> bool:
        """Whether a file met in a folder walk or given is one a DICOMDIR given read already; a DICOM file given
        alone is remembered, for a DICOMDIR given after it."""
        dicom = head[128:132] == b"DICM"
        if not self.listed and (member or not dicom):
            return False
        key = file_key(path)
        if key in self.listed:
            return True
        if not member and dicom and key is not None:
            self.files.add(key)
        return False


def as_bytes_note(blob: Blob, ds) -> ItemError:
    """What a DICOMDIR read as bytes (not from a folder on disk) says: in a folder, an archive, or an upload holding
    its files, a note (they are read as files of their own); given without them (uploaded alone, a Blob, a URL), an
    error saying how to send them, since nothing else would tell the user why no image came."""
    names = referenced(ds)
    if not names:
        return ItemError(blob.origin, "", "A DICOMDIR listing no files: nothing to read", skipped=True)
    if blob.depth or blob.walked or _with_its_files(blob, names):
        return ItemError(blob.origin, "", "A DICOMDIR: the index of an export's files, whose images are read from "
                         "those files", skipped=True)
    return ItemError(blob.origin, "", f"A DICOMDIR (the index of a CD or USB export) given without the "
                     f"{_count(names)} it "
                     "lists: send the export's folder as a zip (DICOMDIR and all), or the files themselves")


def _with_its_files(blob: Blob, names: list[tuple[str, ...]]) -> bool:
    """Whether any file the DICOMDIR lists is given with it (by its bare name: uploads carry no folders)."""
    if blob.sibling is None:
        return False
    for parts in names:
        try:
            blob.sibling(parts[-1])
            return True
        except (ValueError, OSError):
            continue
    return False
