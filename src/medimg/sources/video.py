"""Video files (MP4/MOV, AVI, Matroska/WebM, MPEG program and transport streams, WMV/ASF, FLV) through PyAV.

Endoscopy and ultrasound often come as clips. A clip is one input: by default its middle frame (as a
DICOM cine gives; when it is blank, the nearest that is not), with `all_frames` one frame per second, spread
evenly over the whole clip when it has more seconds than `max_images_per_input`, read coarse to fine (the
middle, the start, three quarters, a quarter, …) so that a reading cut by `video_timeout` still spans the
clip. Frames are found by seeking to the key frame before each time and decoding forward, so a long file is
never decoded whole; streams without a duration are decoded in order. Each file is opened with the one
demuxer its first bytes name (never FFmpeg's probing, which could pick a playlist demuxer that opens other
files or URLs). Files on disk are read in place (`max_video_bytes`), bytes from memory. `video_timeout`
bounds the wall time spent on one video. The same reader decodes video stored in DICOM (MPEG-2, H.264, HEVC
transfer syntaxes).
"""

from __future__ import annotations

import io
import os
import struct
import time
from typing import Iterator

from PIL import Image

from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin
from .registry import register

MAX_DECODE_AFTER_SEEK = 1500  # frames decoded after one seek to reach its time (a key frame each 50 s at 30 fps)
SEEK_BACK_OFF = (0.0, 1.0, 5.0, 30.0)  # seconds before a time to seek to when a demuxer lands after it
MAX_TOP_BOXES = 10_000  # top-level MP4 boxes walked to tell a missing index (a recording has a handful)
BLANK_LOOKS = 16  # times over a clip looked at for a frame that is not blank when the middle one is
MAX_DAMAGED_PACKETS = 30  # packets that fail to decode, skipped as players do, before the reading is given up
CONTINUE_WITHIN = 10.0  # seconds: without an index, a later target this close is reached by decoding on
INDEXED = {"mov", "mp4", "avi", "matroska", "webm"}  # demuxers whose index names every frame (or key frame)
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"pnot"}


def video_kind(head: bytes) -> str | None:
    """The FFmpeg demuxer that reads a file starting with `head`, or None."""
    from .files import image_kind

    if head[4:8] == b"ftyp":
        if image_kind(head) is not None:  # HEIF/AVIF stills
            return None
        return "mp4"
    if head[4:8] in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return "mov"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "matroska"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg"
    if len(head) >= 564 and all(head[i] == 0x47 for i in (0, 188, 376)):
        return "mpegts"
    if len(head) >= 580 and all(head[i] == 0x47 for i in (4, 196, 388)):  # M2TS: 4-byte time codes
        return "mpegts"
    if head[:4] == b"FLV\x01":
        return "flv"
    if head[:16] == _ASF_GUID:  # Windows Media (.wmv, .asf)
        return "asf"
    return None


def _accepts(head: bytes, blob: Blob) -> bool:
    return video_kind(head) is not None


def open_video(blob: Blob, ctx: Context) -> Iterator[Item]:
    """A video given as bytes (an upload, a zip member, a download)."""
    yield from read_video(io.BytesIO(blob.data), [video_kind(blob.data[:4096]) or "mp4"], blob.origin, ctx.limits)


def open_video_path(path: str, ctx: Context) -> Iterator[Item]:
    """A video on disk, read in place: only the packets around the frames shown."""
    from .files import size_problem

    problem = size_problem(path, ctx.limits.max_video_bytes, "max_video_bytes", "video file")
    if problem:
        yield problem
        return
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        yield ItemError(path, "", f"could not read file: {exc.strerror or exc}")
        return
    # "file:" + an absolute path: FFmpeg reads a bare name as a URL ("concat:a|b", "subfile:…" are protocols)
    yield from read_video("file:" + os.path.abspath(path), [video_kind(head) or "mp4"], path, ctx.limits)


def read_video(file, formats: list[str], origin: str, limits: Limits, fmt_name: str | None = None,
               meta: dict | None = None, frame_count: int | None = None) -> Iterator[Item]:
    """Frames of the video in `file` (a path or a seekable binary file), opened with the first of
    `formats` that finds a video stream in it. `frame_count` (from DICOM) names frames by index."""
    import av

    attached = av.stream.Disposition.attached_pic  # a Flag (not int() in av 14.x)
    problem, audio = "no video stream found", False
    for fmt in formats:
        try:
            if hasattr(file, "seek"):
                file.seek(0)
            container = av.open(file, format=fmt, options={"enable_drefs": "0"} if fmt in ("mp4", "mov") else {},
                                metadata_errors="ignore")
        except Exception as exc:  # the next demuxer may read it
            problem = f"not a readable video: {_reason(exc)}"
            continue
        with container:
            streams = [s for s in container.streams.video if not s.disposition & attached]
            # several (a preview beside the recording, two cameras): the largest one FFmpeg can decode
            stream = max(streams, key=lambda s: (s.codec_context is not None, _area(s)), default=None)
            if stream is not None:
                meta = {**(meta or {}), **({"video_streams": len(streams)} if len(streams) > 1 else {})}
                cut = lambda: _ends_early(file, fmt)  # noqa: E731  (asked only when no frame comes out)
                yield from _frames(container, stream, origin, limits, fmt_name, meta, frame_count, cut)
                return
            audio = audio or bool(container.streams.audio)
    if audio:  # music, dictation: nothing to show
        yield ItemError(origin, "", "no video stream (audio only)", skipped=True)
        return
    missing = _missing_index(file) if formats[0] in ("mp4", "mov") else None
    cut = None if missing or audio else _ends_early(file, formats[0])
    why = f"not a readable video: {missing}" if missing else f"{problem} ({cut})" if cut else problem
    yield ItemError(origin, "", why)


def _area(stream) -> int:
    cc = stream.codec_context
    return cc.width * cc.height if cc is not None else 0


def _missing_index(file) -> str | None:
    """Why an MP4/MOV is unreadable when its index (the moov box, which phones and recorders write last) is
    missing or cut short, from its top-level boxes; None when it is whole or the file is not made of boxes."""
    if isinstance(file, str):  # "file:" + a path
        try:
            with open(file.removeprefix("file:"), "rb") as f:
                return _missing_index(f)
        except OSError:
            return None
    end, pos = file.seek(0, 2), 0
    for _ in range(MAX_TOP_BOXES):
        if pos + 8 > end:
            return "the file ends early (truncated): its index (moov box), written last, is missing"
        file.seek(pos)
        head = file.read(16)
        size = int.from_bytes(head[:4], "big")
        size = int.from_bytes(head[8:16], "big") if size == 1 else end - pos if size == 0 else size
        if size < 8:
            return None
        if head[4:8] == b"moov":
            return None if pos + size <= end else "the file ends early (truncated), inside its index (moov box)"
        pos += size
    return None  # a file of many boxes and no index: FFmpeg's reason stands


def _ends_early(file, fmt: str) -> str | None:
    """"the file ends early: …" when the header of an AVI, Matroska/WebM or MP4/MOV file gives more bytes than the
    file has (a download or copy that did not finish), or an MP4's index is missing or cut; else None. FFmpeg's own
    words ("Invalid data found", "Input/output error", "Operation not permitted") do not say so."""
    if isinstance(file, str):  # "file:" + a path
        try:
            with open(file.removeprefix("file:"), "rb") as f:
                return _ends_early(f, fmt)
        except OSError:
            return None
    try:
        missing = _missing_index(file) if fmt in ("mp4", "mov") else None
        end, declared = file.seek(0, 2), _declared_end(file, fmt)
    except (OSError, ValueError):
        return None
    if missing or declared is None or declared <= end:
        return missing
    return f"the file ends early: it has {end:,} bytes of the {declared:,} its header gives"


def _declared_end(file, fmt: str) -> int | None:
    """The length an AVI's RIFF header, a Matroska file's EBML and Segment headers or an MP4's top-level boxes
    give the file, None for other formats or when they do not say."""
    file.seek(0)
    head = file.read(64)
    if fmt == "avi" and head[:4] == b"RIFF":
        return int.from_bytes(head[4:8], "little") + 8 or None
    if fmt == "matroska" and head[:4] == b"\x1aE\xdf\xa3":
        size, at = _vint(head, 4)  # the EBML header's, then the Segment's that follows it
        if size is None or head[at + size:at + size + 4] != b"\x18\x53\x80\x67":
            return None
        seg, body = _vint(head, at + size + 4)
        return None if seg is None else body + seg
    if fmt in ("mp4", "mov"):
        end, pos = file.seek(0, 2), 0
        for _ in range(MAX_TOP_BOXES):
            file.seek(pos)
            box = file.read(16)
            size = int.from_bytes(box[:4], "big")
            size = int.from_bytes(box[8:16], "big") if size == 1 else size
            if len(box) < 8 or size < 8:  # the end, a box to the end of the file (0), or no boxes
                return None
            if pos + size > end:
                return pos + size
            pos += size
    return None


def _vint(data: bytes, at: int) -> tuple[int | None, int]:
    """An EBML size at `at` (its length in its leading zero bits) and where its element's data starts; None for
    an unknown size (all ones) or bytes cut short."""
    if at >= len(data) or not data[at]:
        return None, at
    n = 9 - data[at].bit_length()
    if at + n > len(data):
        return None, at
    value = int.from_bytes(data[at:at + n], "big") & ((1 << (7 * n)) - 1)
    return (None if value == (1 << (7 * n)) - 1 else value), at + n


def _frames(container, stream, origin: str, limits: Limits, fmt_name: str | None, meta: dict,
            frame_count: int | None, cut=lambda: None) -> Iterator[Item]:
    cc = stream.codec_context
    if cc is None:  # or an index cut short, naming no codec
        why = cut()
        yield ItemError(origin, "", f"not a readable video: {why}" if why else
                        "video stream in a codec FFmpeg does not know")
        return
    w, h = cc.width, cc.height
    if w * h > limits.max_pixels:
        yield ItemError(origin, "", f"video frames are {w}×{h} = {w * h:,} pixels, over the max_pixels cap of "
                                    f"{limits.max_pixels:,}; not decoded")
        return
    cc.options = {**cc.options, "max_pixels": str(limits.max_pixels)}  # the decoder refuses bigger frames too
    fps = meta.get("fps") or (None if frame_count else float(stream.average_rate or stream.guessed_rate or 0) or None)
    duration = _duration(container, stream)
    info = {**meta, "codec": cc.name, "width": w, "height": h,
            "fps": round(fps, 3) if fps else None, "duration_s": round(duration, 3) if duration else None,
            "frames": frame_count or stream.frames or None}
    if fps and frame_count is None and _variable(stream):
        fps = None  # frames named by their time alone: a number from the mean rate would be wrong
    fmt = fmt_name or f"video ({container.format.name.split(',')[0]}, {cc.name})"
    deadline = time.monotonic() + limits.video_timeout
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    times = _times(duration, limits) if duration and frame_count is None else []
    damaged: list = []  # (pts, error) of the packets skipped (a damaged one mid-file: bad sectors, a bad copy)
    if len(times) == 1:
        picked = _middle(container, stream, start, duration, deadline, damaged)
    elif times:
        picked = _by_time(container, stream, start, times, deadline, damaged)
    else:
        picked = _by_index(container, stream, frame_count, limits, deadline, fps)
    shown, seen = 0, []  # seen: the times of the frames read
    try:
        for frame, index in picked:
            shown += 1
            if frame.time is not None:
                seen.append(frame.time - start)
            if frame.width * frame.height > limits.max_pixels:  # frames may change size mid-stream
                yield ItemError(origin, f"frame {index + 1}" if index is not None else "frame",
                                f"frame is {frame.width}×{frame.height}, over the max_pixels cap of "
                                f"{limits.max_pixels:,}; not converted")
                continue
            clock = start if frame_count is None else None
            yield _item(frame, index, fps, clock, origin, fmt, info, limits.decode_side)
    except _Timeout:
        yield ItemError(origin, "", f"stopped after {limits.video_timeout:g} s (video_timeout) with {shown} "
                                    f"frame(s) read{_coarser(seen, times, duration)}", skipped=shown > 0)
        return
    except Exception as exc:
        why = None if shown else cut()
        yield ItemError(origin, "", f"could not decode the video: {_reason(exc)}" + (f"; {why}" if why else ""))
        return
    if shown == 0 and damaged:
        yield ItemError(origin, "", f"could not decode the video: {_reason(damaged[0][1])}")
        return
    if shown == 0:
        why = cut()
        yield ItemError(origin, "", "the video has no decodable frame" + (f"; {why}" if why else ""))
    elif times and seen and times[-1] - max(seen) > max(2.0, 0.1 * duration):
        yield ItemError(origin, "", f"the frames stop at {_clock(max(seen))} of the {_clock(duration)} the file's "
                                    "header gives (a file cut short?); the last one stands for the times after it",
                        skipped=True)
    if shown and damaged:
        count = len({pts for pts, _ in damaged})  # a packet met again by a later seek counts once
        yield ItemError(origin, "", f"{count} damaged packet(s) skipped ({_reason(damaged[0][1])}): the frames "
                                    "they held are missing, and those after them may show errors", skipped=True)


def _variable(stream) -> bool:
    """Whether the stream's frame rate changes (a phone in low light): its mean rate is not its base rate."""
    mean, base = stream.average_rate, stream.base_rate
    return bool(mean and base) and abs(float(mean) / float(base) - 1) > 0.01


def _middle(container, stream, start: float, duration: float, deadline: float, damaged: list | None = None):
    """(frame, None) for the middle frame; when it is blank (black between two parts of a clip, a fade), the
    one nearest the middle of BLANK_LOOKS spread over the clip that is not; the middle when all are."""
    from .files import is_blank

    middle = None
    looks = sorted(((i + 0.5) * duration / BLANK_LOOKS for i in range(BLANK_LOOKS)),
                   key=lambda t: abs(t - duration / 2))
    for t in [duration / 2, *looks]:
        try:
            frame = next(_by_time(container, stream, start, [t], deadline, damaged), (None,))[0]
        except _Timeout:
            if middle is None:
                raise
            break
        if frame is None:
            continue
        if middle is None:
            middle = frame
        w, h = frame.width, frame.height
        f = max(1, min(w, h) // 128)
        if not is_blank(frame.to_image(width=max(1, w // f), height=max(1, h // f))):
            yield frame, None
            return
    if middle is not None:
        yield middle, None


def _coarser(seen: list[float], times: list[float], duration: float | None) -> str:
    """What a reading cut short by video_timeout covers, when it read some of several times (coarse to fine)."""
    if len(times) < 2 or len(seen) < 2 or not duration:
        return ""
    marks = sorted([0.0, duration, *seen])
    gap = max(b - a for a, b in zip(marks, marks[1:]))
    return (f", spread over the whole {_clock(duration)}: the clip was sampled more coarsely than asked (frames up "
            f"to {gap:.1f} s apart, not {duration / len(times):.1f} s)")


class _Timeout(Exception):
    pass


def _duration(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000
    else:
        return None
    return seconds if 0 < seconds < 1e7 else None


def _times(duration: float, limits: Limits) -> list[float]:
    """Seconds to show: the middle, or with all_frames one per second (at most max_images_per_input)."""
    if not limits.all_frames:
        return [duration / 2]
    k = max(1, min(int(duration), limits.max_images_per_input))
    return [(i + 0.5) * duration / k for i in range(k)]


def _by_time(container, stream, start: float, times: list[float], deadline: float, damaged: list | None = None):
    """(frame, None) for the first frame at or after each time. The times are read in runs, one seek each
    (`_runs`), and the runs coarse to fine (`_spread`): the middle, the start, three quarters, a quarter, …
    So a reading that video_timeout cuts short still spans the whole clip, more coarsely."""
    runs = _runs(container, stream, [start + t for t in times])
    end, shown = None, set()  # end: where the frames stop, once a run has gone past them
    for r in _spread(len(runs)):
        if end is not None and runs[r][0] > end:  # the last frame already stands for these times
            continue
        decoder, last = _seek(container, stream, runs[r][0], deadline, damaged), None
        for target in runs[r]:
            chosen = last
            reached = last is not None and (last.time is None or last.time >= target - 0.0005)
            if not reached:
                for n, frame in enumerate(decoder):
                    if time.monotonic() > deadline:
                        raise _Timeout
                    chosen = frame
                    if frame.time is None or frame.time >= target - 0.0005 or n >= MAX_DECODE_AFTER_SEEK:
                        reached = True
                        break
            if chosen is not None and chosen.pts not in shown:
                shown.add(chosen.pts)
                yield chosen, None
            if not reached:  # the frames end before this time, so before every later one too
                stop = chosen.time if chosen is not None and chosen.time is not None else target
                end = stop if end is None else min(end, stop)
                break
            last = chosen


def _runs(container, stream, targets: list[float]) -> list[list[float]]:
    """The targets (seconds, in order) in runs each reached by one seek and decoded on from there. From the
    stream's index, a target joins the run before it when its key frame is at or before that run's last
    target (a seek would decode the same frames again): one run a key frame, so a clip with one key frame
    is decoded once, not once a target. Without a whole index (MPEG-TS/PS, FLV, WMV build theirs as they
    read), a run spans up to CONTINUE_WITHIN seconds."""
    entries = _index(container, stream, targets)
    tb = float(stream.time_base)
    runs: list[list[float]] = []
    for t in targets:
        if runs:
            if entries is not None:
                k = entries.search_timestamp(int(t / tb), backward=True)
                near = k < 0 or entries[k].timestamp * tb <= runs[-1][-1]
            else:
                near = t - runs[-1][0] < CONTINUE_WITHIN
            if near:
                runs[-1].append(t)
                continue
        runs.append([t])
    return runs


def _index(container, stream, targets: list[float]):
    """The stream's index entries when they name its frames to the end (MP4/MOV, AVI, Matroska), else None."""
    if len(targets) < 2 or container.format.name.split(",")[0] not in INDEXED:
        return None
    if not hasattr(stream, "index_entries"):  # PyAV before 17 does not give the index: runs by time span
        return None
    entries = stream.index_entries
    tb = float(stream.time_base)
    if len(entries) < 2:  # Matroska reads its index (cues) at the first seek
        container.seek(int(targets[len(targets) // 2] / tb), stream=stream, backward=True)
        entries = stream.index_entries
    whole = len(entries) > 1 and entries[len(entries) - 1].timestamp * tb >= targets[-1] - CONTINUE_WITHIN
    return entries if whole else None


def _spread(m: int) -> list[int]:
    """0 … m-1 coarse to fine: the middle, the start, three quarters, a quarter, five eighths, … (the
    van der Corput sequence shifted by a half)."""
    order, seen, n = [], set(), 0
    while len(order) < m:
        x, bit, v = 0.0, 0.5, n
        while v:
            x, bit, v = x + bit * (v & 1), bit / 2, v >> 1
        i = int((x + 0.5) % 1.0 * m)
        if i not in seen:
            seen.add(i)
            order.append(i)
        n += 1
    return order


def _seek(container, stream, target: float, deadline: float, damaged: list | None = None):
    """Frames decoded from the key frame before `target`. Some demuxers (MPEG-TS/PS) land after the time
    asked for, or past the last key frame, where nothing decodes; then the seek is tried again further back."""
    import itertools

    import av

    tb = float(stream.time_base)
    # then halfway back, a quarter, …: a file cut short (a download) has an index naming frames it lacks
    points = [target - back for back in SEEK_BACK_OFF] + [target * f for f in (0.5, 0.25, 0.125, 0.0625, 0.0)]
    for at in points:
        try:
            container.seek(max(int(at / tb), 0), stream=stream, backward=True)
        except av.error.FFmpegError:  # -1, "Operation not permitted": no index or key frame to seek to (cut short)
            decoder, first = iter(()), None
        else:
            decoder = _decoded(container, stream, deadline, damaged)
            first = next(decoder, None)
        if time.monotonic() > deadline:
            raise _Timeout
        if (first is not None and (first.time is None or first.time <= target + 0.0005)) or at <= 0:
            break
    return itertools.chain([first] if first is not None else [], decoder)


def _decoded(container, stream, deadline: float, damaged: list | None = None):
    """Frames decoded from the stream's packets, the clock checked at every packet: a file whose packets
    decode to nothing must not run past video_timeout either. The last packet failing (cut short where a
    download ends) ends them; another of bad data is skipped, as players do, its error added to `damaged` (up
    to MAX_DAMAGED_PACKETS); any other error stops the reading, as does any when `damaged` is None."""
    import av

    packets = container.demux(stream)
    packet = next(packets, None)
    while packet is not None:
        if time.monotonic() > deadline:
            raise _Timeout
        after = None
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            after = next(packets, None)
            if after is None or not after.size:  # nothing after it but the flush packet
                return
            # only bad data is skipped: a frame over the decoder's max_pixels is EINVAL, and stops the reading
            bad_data = isinstance(exc, av.error.InvalidDataError)
            if damaged is None or not bad_data or len(damaged) >= MAX_DAMAGED_PACKETS:
                raise
            damaged.append((packet.pts, exc))
            frames = []
        yield from frames
        packet = after if after is not None else next(packets, None)


def _by_index(container, stream, frame_count: int | None, limits: Limits, deadline: float,
              fps: float | None = None):
    """(frame, index) decoding in order, for streams without a duration: the frames are counted from the
    packets first (no decoding) unless `frame_count` says how many there are. With all_frames, one frame a
    second when the rate is known (a DICOM's FrameTime or CineRate), else every frame."""
    n = frame_count
    if not n:
        n = 0
        for packet in container.demux(stream):
            n += packet.size > 0
            if n % 256 == 0 and time.monotonic() > deadline:
                raise _Timeout
        if not n:  # no packet to go back to (FFmpeg refuses the seek: "Operation not permitted")
            return
        container.seek(0)
    if not n:
        return
    if limits.all_frames:
        k = min(n, limits.max_images_per_input, max(1, int(n / fps)) if fps else n)
        wanted = sorted({int((i + 0.5) * n / k) for i in range(k)})
    else:
        wanted = [n // 2]
    want = iter(wanted)
    nxt = next(want)
    for i, frame in enumerate(_decoded(container, stream, deadline)):
        if time.monotonic() > deadline:
            raise _Timeout
        if i == nxt:
            yield frame, i
            nxt = next(want, None)
            if nxt is None:
                return


def _item(frame, index: int | None, fps: float | None, clock: float | None, origin: str, fmt: str, info: dict,
          decode_side: int | None) -> ImageItem:
    """The frame as an image. `clock` is the stream's start time, None when its times are not the
    video's (DICOM streams): then frames are named by index alone."""
    w, h = frame.width, frame.height
    f = next((f for f in (8, 4, 2) if decode_side and min(w, h) // f >= decode_side), 1)
    image = frame.to_image(width=w // f, height=h // f) if f > 1 else frame.to_image()
    turn = round(frame.rotation or 0) % 360  # the display matrix turns the frame counter-clockwise
    moves, mirrored = _upright(frame, turn)
    for move in moves:
        image = image.transpose(move)
    t = frame.time - clock if clock is not None and frame.time is not None else None
    if index is None and t is not None and fps:
        index = int(round(t * fps))
    where = " ".join(filter(None, [f"frame {index + 1}" if index is not None else "frame",
                                   f"at {_clock(t)}" if t is not None else ""]))
    meta = {**info, "time_s": round(t, 3) if t is not None else None}
    if turn:
        meta["rotation"] = turn
    if mirrored:
        meta["mirrored"] = True
    full = (w, h) if turn not in (90, 270) else (h, w)
    return ImageItem(origin, where, image, fmt, meta, full_size=full if f > 1 else None)


def _upright(frame, turn: int) -> tuple[list, bool]:
    """The turns and flips that show the frame as players do (FFmpeg's own rules), and whether it is mirrored.
    A display matrix may mirror as well as turn (QuickTime's Flip Horizontal, some front cameras): a mirror
    alone reads as a 180° turn, which would show the frame upside down."""
    T = Image.Transpose
    m = None
    try:
        side = frame.side_data.get("DISPLAYMATRIX")
        m = struct.unpack("=9i", bytes(side)) if side is not None else None
    except Exception:  # PyAV without this side data: the turn alone
        pass
    if turn == 270:  # FFmpeg's 90° clockwise; a mirror when the matrix's c is positive
        return ([T.TRANSPOSE], True) if m and m[3] > 0 else ([T.ROTATE_270], False)
    if turn == 90:
        return ([T.TRANSVERSE], True) if m and m[3] < 0 else ([T.ROTATE_90], False)
    if turn == 180 and m:
        moves = [T.FLIP_LEFT_RIGHT] * (m[0] < 0) + [T.FLIP_TOP_BOTTOM] * (m[4] < 0)
        return moves, len(moves) == 1
    if turn == 180:
        return [T.ROTATE_180], False
    if turn == 0 and m and m[4] < 0:
        return [T.FLIP_TOP_BOTTOM], True
    return [], False


def _clock(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60)
    return f"{int(m)}:{s:04.1f}"


def _reason(exc: BaseException | None) -> str:
    """FFmpeg's own words, without its error number and the call or buffer it names."""
    if isinstance(exc, MemoryError):  # ENOMEM: a table or frame bigger than FFmpeg will allocate
        return "the file is damaged (it claims more memory than is available)"
    if getattr(exc, "errno", None) == 1 and type(exc).__module__.startswith("av"):
        return "the stream is damaged or not of its kind (FFmpeg's generic error)"  # -1: EPERM, not a permission
    text = getattr(exc, "strerror", None) or str(exc or "unknown error")
    return "the file ends early (truncated)" if text == "End of file" else text


register(SourcePlugin("video", _accepts, open_video, priority=45, open_path=open_video_path))
