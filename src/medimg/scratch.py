"""Where `medimg serve` lets Gradio and matplotlib write: private folders, made before Gradio is imported (it
reads GRADIO_TEMP_DIR at import) and removed when the server stops. Imports nothing heavy."""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path


# the server's folders in TMPDIR; each is locked (flock) by its server while it runs
PREFIXES = ("medimg-uploads-", "medimg-matplotlib-", "medimg-examples-", "medimg-pages-", "medimg-work-")
_NEW = ".medimg-new-"  # a folder not yet locked: never taken for a dead server's
_held: dict[Path, int] = {}  # this process's folders and their locked descriptors
_work: dict[Path, tuple[str | None, str | None]] = {}  # the folders this process made its TMPDIR: TMPDIR before


def server_scratch() -> list[Path]:
    """Private folders for what Gradio and matplotlib write (uploads; a font cache when HOME is not writable),
    unless GRADIO_TEMP_DIR or MPLCONFIGDIR say where; the server removes them when it stops. The folders a
    server killed before it could remove them left (uploads with their file names) are removed first. The
    process's own temporary files (an uploaded slide, CZI or MINC file copied for a library that reads only files;
    a spilled upload body) go to one more such folder, its TMPDIR from then on, so a killed server's go too."""
    given = os.environ.get("GRADIO_TEMP_DIR")
    if given:  # checked before anything is made: Gradio's own mkdir of it was a traceback after the model's load
        _writable(given, "GRADIO_TEMP_DIR")
    remove_left_behind()
    made = []
    if not _redirected():
        made.append(private_folder("medimg-work-"))
        _work[made[-1]] = os.environ.get("TMPDIR"), tempfile.tempdir
        tempfile.tempdir = os.environ["TMPDIR"] = str(made[-1])
    if not os.environ.get("GRADIO_TEMP_DIR"):
        made.append(private_folder("medimg-uploads-"))
        os.environ["GRADIO_TEMP_DIR"] = str(made[-1])
    if not os.environ.get("MPLCONFIGDIR") and not os.access(os.path.expanduser("~"), os.W_OK):
        made.append(private_folder("medimg-matplotlib-"))
        os.environ["MPLCONFIGDIR"] = str(made[-1])
    for folder in made:
        atexit.register(remove, folder)
    return made


def _writable(folder: str, name: str) -> None:
    """Make `folder` (named by the variable `name`) if it is not there, and raise OSError saying which if it
    cannot be made or written (a read-only file system, another user's folder, a file in its path)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OSError(f"{name} {folder} cannot be made: {exc.strerror or exc}") from None
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise OSError(f"{name} {folder} is not a folder this user ({os.getuid()}) may write in")


def private_folder(prefix: str) -> Path:
    """A new private (0700) folder in TMPDIR, locked for as long as this process holds it: made under another
    name and locked before it is given its own, so another server never finds it unlocked."""
    new = Path(tempfile.mkdtemp(prefix=_NEW, dir=_base()))
    fd = os.open(new, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without flock (some FUSE ones), or no lock left: the folder keeps the name
        os.close(fd)  # no server ever takes for a dead one's; left behind if this one is killed, as before
        return new
    folder = new.with_name(prefix + new.name[len(_NEW):])
    os.rename(new, folder)  # the lock goes with the folder
    _held[folder] = fd
    return folder


@contextmanager
def work_folder():
    """A private folder for one file a library reads only by name (an uploaded or zipped slide, CZI or MINC
    file), locked while in use and removed after: a process killed meanwhile leaves it to the next server or
    run (`remove_left_behind`), not in TMPDIR for good."""
    folder = private_folder("medimg-work-")
    try:
        yield str(folder)
    finally:
        remove(folder)


def remove(folder: Path) -> None:
    """Remove one of this process's folders, and let go of its lock. The work folder made its TMPDIR gives TMPDIR
    back first: a server stopped by its lifespan left TMPDIR naming a removed folder, and a second server run in the
    same process (a notebook) answered 503 to every upload over 1 MB, which is spooled to a temporary file."""
    before = _work.get(folder)
    if before is not None and tempfile.tempdir == str(folder):  # before it leaves _work: see _base
        env, tempfile.tempdir = before
        if env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = env
    _work.pop(folder, None)
    shutil.rmtree(folder, ignore_errors=True)
    fd = _held.pop(folder, None)
    if fd is not None:
        os.close(fd)


def remove_left_behind() -> list[Path]:
    """Remove the server folders in TMPDIR that no running process holds: a server killed (SIGKILL, out of
    memory) could not remove them. Only this user's folders are looked at; those of a running server are locked."""
    removed = []
    for folder in Path(_base()).glob("medimg-*"):
        if not folder.name.startswith(PREFIXES):
            continue
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:  # not a folder, a link, or not ours to read
            continue
        try:
            if os.fstat(fd).st_uid != os.getuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # locked: its server is running
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed


def _redirected() -> bool:
    """Whether this process's temporary files already go to a work folder it holds."""
    return Path(tempfile.gettempdir()) in _work


def _base() -> str:
    """TMPDIR as it was before the work folder took its place: where the server's folders are made."""
    here = tempfile.gettempdir()
    return str(Path(here).parent) if _redirected() else here


@contextmanager
def exit_on_sigterm():
    """SIGTERM ends the process through SystemExit (code 143), so that atexit removes the folders made so far:
    its default action would leave them, and uvicorn takes the signal over only once it serves (it then
    stops, and raises the signal again, which ends here the same way)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit(signum, frame) -> None:
    raise SystemExit(128 + signum)
