"""Sources register here, the way Pillow's format plugins do: first bytes in, items out."""

from __future__ import annotations

import os
import re
import threading
from typing import Iterator

from .base import Blob, Context, Item, ItemError, SourcePlugin, reason, recoverable

HEAD_BYTES = 4096
_PLUGINS: list[SourcePlugin] = []


def register(plugin: SourcePlugin) -> SourcePlugin:
    _PLUGINS[:] = [p for p in _PLUGINS if p.name != plugin.name] + [plugin]
    _PLUGINS.sort(key=lambda p: p.priority)
    return plugin


def plugins() -> list[SourcePlugin]:
    _load_builtin()
    return list(_PLUGINS)


def find(blob: Blob) -> SourcePlugin | None:
    head = blob.data[:HEAD_BYTES]
    for plugin in plugins():
        try:
            if plugin.accepts(head, blob):
                return plugin
        except BaseException as exc:  # a broken sniffer must not hide the others
            if not recoverable(exc):
                raise
            continue
    return None


DATA_FILE_NOTE = "skipped: the data file of {}, read with it"


def open_blob(blob: Blob, ctx: Context) -> Iterator[Item]:
    """Open one blob with the first source that accepts it; never raises."""
    if blob.data_of:  # named by a header given with it (even when compressed, as an .img.gz)
        yield ItemError(blob.origin, "", DATA_FILE_NOTE.format(blob.data_of), skipped=True)
        return
    plugin = find(blob)
    if plugin is None:
        if not blob.data:
            yield ItemError(blob.origin, "", "the file is empty")
            return
        err = unknown(blob.origin, blob.name or blob.origin, blob.data[:HEAD_BYTES], len(blob.data), given=True)
        if not err.error.startswith("named ") and not err.skipped and _a_list(blob.data[:HEAD_BYTES]):
            err = ItemError(err.origin, "", err.error + "; it looks like a list of inputs, which the command line "
                                                        "reads with --inputs-from")
        yield err
        return
    try:
        yield from plugin.open(blob, ctx)
    except BaseException as exc:  # one bad input never stops the rest (a decoder's panic included)
        if not recoverable(exc):
            raise
        why = (f"internal error: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
               if _ours(exc) else reason(exc))
        yield ItemError(blob.origin, "", f"{plugin.name}: could not read: {why}")


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _ours(exc: BaseException) -> bool:
    """A mistake in medimg's own code (raised from one of its frames: a wrong type, a name or attribute it lacks),
    said as such, as the pipeline says its own: not blamed on the file as a decoder's internal error is."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (isinstance(exc, (TypeError, AttributeError, NameError, AssertionError)) and tb is not None
            and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE))


def describe(head: bytes, size: int | None) -> str:
    """Its size and first bytes: as text when they are printable, else in hex."""
    head = head[:8]
    shown = (f"“{head.decode('ascii')}”" if all(32 <= c < 127 for c in head)
             else " ".join(f"{c:02x}" for c in head))
    return f"{size:,} bytes, starting {shown}" if size is not None else f"starting {shown}"


_LISTED = (".zip", ".tar", ".tgz", ".gz", ".7z", ".html", ".htm", "/")


def _a_list(head: bytes) -> bool:
    """Whether text is a list of inputs (given as an input by mistake): most of its first lines, past blank
    ones and # comments, are URLs or names of files medimg reads."""
    lines = head.decode("utf-8", "replace").splitlines()
    if len(head) == HEAD_BYTES:
        lines = lines[:-1]  # may be cut off
    lines = [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")][:10]
    named = [x for x in lines if any(map(_an_input, re.split(r"[,;\t]", x)))]  # a table's row: any of its fields
    return len(named) * 2 > len(lines)


def _an_input(field: str) -> bool:
    field = field.strip().strip("\"'").lower()
    return field.startswith(("http://", "https://")) or field.endswith(IMAGE_NAMES + _LISTED)


# names that promise an image: content no source reads is then a damaged or misnamed image, an error to see. A web
# page's link with one of these names (not .pdf) is read as an image too (web_page.py). Not here: headers read only with a
# data file beside them (.hdr, .mhd, .nhdr), and names too common for other files (MRC's .map, .rec, .st)
IMAGE_NAMES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".avif", ".heic",
               ".heif", ".jp2", ".j2k", ".jxl", ".pgm", ".ppm", ".pbm", ".pnm", ".dcm", ".dicom", ".pdf", ".nii",
               ".nii.gz", ".mha", ".nrrd", ".mgh", ".mgz", ".mnc", ".mrc", ".mrcs", ".svs", ".ndpi", ".scn", ".bif",
               ".czi", ".lif", ".psd", ".tga", ".qoi", ".pcx", ".dds", ".sgi",
               # camera RAW (its embedded preview is read): the names no other files use
               ".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw")


# microscopes' own formats that no source reads, by name: their images are an error naming the format, given
# alone or found in a folder (not the note of a file that is no image), with what to do. One file of a set, not
# the others (.ets, .ids, .emi): one error for one image
UNREAD_MICROSCOPY = {".nd2": "Nikon NIS-Elements ND2", ".dm3": "Gatan DigitalMicrograph DM3",
                     ".dm4": "Gatan DigitalMicrograph DM4", ".ims": "Imaris IMS", ".oib": "Olympus FluoView OIB",
                     ".oif": "Olympus FluoView OIF", ".oir": "Olympus OIR", ".vsi": "Olympus cellSens VSI",
                     ".zvi": "Zeiss AxioVision ZVI", ".sld": "3i SlideBook SLD",
                     ".sldy": "3i SlideBook SLDY", ".mrxs": "3DHISTECH MIRAX", ".vms": "Hamamatsu VMS",
                     ".ser": "FEI TIA SER", ".emd": "EMD (Velox)", ".ics": "Image Cytometry Standard ICS",
                     ".isyntax": "Philips iSyntax"}
# names other files share, by far the more common: such a file is the microscope's only when its head says so
# (an iCalendar invite in an e-mail, a Java serialised object, a GIS style or AutoCAD slide are not images)
_MICROSCOPY_HEADS = {".ics": lambda head: b"ics_" in head,  # its second line is "ics_version"
                     ".ser": lambda head: head[:2] == b"II",  # TIA's byte order mark
                     ".sld": lambda head: not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"<", b"AutoCAD"))}


# scanners' and research tools' volume formats that no source reads, told by name and first bytes: the header of each
# is an error naming the format and a converter to NIfTI (its data file, .REC or .BRIK, stays the note of a file that
# is no image: one error for one volume)
UNREAD_VOLUMES = {
    ".par": ("Philips PAR/REC", lambda head: head.startswith(b"# === DATA DESCRIPTION FILE"),
             "dcm2niix or nibabel's parrec2nii"),
    ".head": ("AFNI BRIK/HEAD", lambda head: b"type = " in head[:512] and b"name = " in head[:512], "AFNI's 3dAFNItoNIFTI"),
    ".v": ("ECAT 7 PET", lambda head: head.startswith(b"MATRIX7"), "nibabel's load and to_filename"),
}


# archive and compression formats that no source reads, told by their first bytes (a 2-byte magic with the name
# too): an error naming the format and what unpacks it, given alone or found in a folder or archive (a RAR of
# scans is images not read, not a file that is no image)
UNREAD_ARCHIVES = (
    (lambda head, lower: head.startswith(b"Rar!\x1a\x07"), "RAR archive", "unrar x, or 7z x"),
    (lambda head, lower: head.startswith((b"070701", b"070702", b"070707")), "cpio archive", "cpio -idv"),
    (lambda head, lower: head.startswith(b"\x04\x22\x4d\x18"), "LZ4 file", "lz4 -d"),
    (lambda head, lower: head.startswith(b"LZIP"), "lzip file", "lzip -d"),
    (lambda head, lower: head.startswith(b"\x1f\x9d") and lower.endswith((".z", ".taz")), "Unix compress (.Z) file",
     "gunzip or uncompress"),
    (lambda head, lower: head[:1] == b"\x5d" and lower.endswith((".lzma", ".tlz")), "LZMA (.lzma) file",
     "xz -d or unlzma"),
)


def _unread_archive(lower: str, head: bytes) -> str | None:
    for looks, fmt, unpack in UNREAD_ARCHIVES:
        if looks(head, lower):
            return (f"{fmt}: a format medimg does not open; unpack it ({unpack}) and give what it holds, or pack "
                    "that as zip, 7z or tar")
    return None


def _unread_volume(lower: str, head: bytes) -> str | None:
    for ext, (fmt, looks, convert) in UNREAD_VOLUMES.items():
        if lower.endswith(ext) and looks(head):
            return (f"{fmt} file: a volume format medimg does not read; convert it to NIfTI ({convert}) to classify "
                    "its images")
    return None


# a part of an archive split in pieces: 7-Zip's volumes (a.7z.001, a.zip.002, …; `split -d` names so too), and the
# parts of a split zip before its last (a.z01, a.z02, …), whose data starts anywhere in a member
_PART = re.compile(r"\.(?:(?:7z|zip|rar|tar|tgz|gz|bz2|xz|zst)\.(\d{3})|z(\d{2}))$", re.IGNORECASE)
JOIN = ("read only whole: join its parts (cat a.7z.0* > a.7z; for .z01 parts, zip -s 0 a.zip --out whole.zip) and "
        "give the whole")


def split_part(name: str) -> int | None:
    """Which part of a split archive a file's name says it is (1 for a.7z.001 or a.z01), else None."""
    found = _PART.search(name)
    return int(found.group(1) or found.group(2)) if found else None


_APPLE_DOUBLE = (b"\x00\x05\x16\x07", b"\x00\x05\x16\x00")  # AppleDouble's magic, and AppleSingle's


def _litter(name: str, head: bytes) -> str | None:
    """What a file macOS or Windows leaves beside the real ones is, by its name (and an AppleDouble's first bytes),
    else None. A folder's walk leaves them out; given (from a list) each was an error ("named PNG but not readable")."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base.startswith("._") and head.startswith(_APPLE_DOUBLE):
        return f"macOS metadata of {base[2:]} (an AppleDouble ._ file)"
    if base == ".DS_Store":
        return "macOS folder settings (.DS_Store)"
    if base.lower() in ("thumbs.db", "desktop.ini"):
        return f"Windows folder settings ({base})"
    return None


def unknown(origin: str, name: str, head: bytes, size: int | None, given: bool = False) -> ItemError:
    """Content no source reads (its first bytes `head`, `size` in all): an error when it was `given` as an input
    or its name says image (or a microscope format not read), else (found in a folder or container) a skipped
    note. One text either way."""
    litter = _litter(name, head)
    if litter:  # given too: `find scans -type f` lists a Mac share's ._ twin of every file
        return ItemError(origin, "", f"skipped: {litter}, not an image", skipped=True)
    lower = name.lower()
    microscope = next((v for k, v in UNREAD_MICROSCOPY.items()
                       if lower.endswith(k) and (k not in _MICROSCOPY_HEADS or _MICROSCOPY_HEADS[k](head))), None)
    if microscope:
        return ItemError(origin, "", f"{microscope} file: a microscopy format medimg does not read; export it as "
                                     f"OME-TIFF (Fiji, or Bio-Formats' bfconvert) to classify its images")
    volume = _unread_volume(lower, head) or _unread_archive(lower, head)
    if volume:
        return ItemError(origin, "", volume)
    kind = next((s for s in IMAGE_NAMES if lower.endswith(s)), None)
    said = describe(head, size)
    if (part := split_part(lower)) is not None:
        return ItemError(origin, "", f"part {part} of a split archive, {JOIN}", skipped=not given)
    if kind:
        return ItemError(origin, "", f"named {kind[1:].upper()} but not readable as one, nor as any supported format "
                                     f"(damaged, or misnamed: {said})")
    if given:
        return ItemError(origin, "", f"unrecognised content: not an image, document or archive medimg reads ({said})")
    return ItemError(origin, "", "skipped: not an image or a supported container", skipped=True)


_loaded = False
_loading = threading.RLock()  # threads must not see a half-filled registry (the importing one may re-enter)


def _fresh_lock() -> None:  # in a forked child: one held by a parent's thread would never be let go
    global _loading
    _loading = threading.RLock()


os.register_at_fork(after_in_child=_fresh_lock)


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    with _loading:
        if not _loaded:
            from . import files, html_file, pdf, saved_page, web  # noqa: F401  (each registers itself on import)

            _loaded = True
