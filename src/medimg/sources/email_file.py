"""E-mail messages (.eml, RFC 822/MIME): the pictures and files attached to them or shown inline.

Referral letters and second-opinion requests often arrive as e-mail with images, PDFs, DICOM files or
zips attached. A message is a container, like a zip: each attachment or inline picture is an input of its
own (origin `message.eml:attachment-name`), opened by whichever source reads it, and attached messages
(message/rfc822, forwards) are opened in turn up to `max_depth`. Text parts are left out with one note;
remote images an HTML body points to are never fetched (they are often trackers). Parts are decoded one
after another under `max_input_bytes` each and `zip_max_bytes` for the whole message.
"""

from __future__ import annotations

import email
import email.policy
import re
from typing import Callable, Iterator, Union

from .base import Blob, Budget, Context, Item, ItemError, SourcePlugin
from .registry import register

_HEADER = re.compile(rb"[A-Za-z][A-Za-z0-9-]{1,40}:[ \t]")
_KNOWN = (b"from:", b"to:", b"subject:", b"date:", b"message-id:", b"received:", b"return-path:",
          b"mime-version:", b"content-type:", b"delivered-to:", b"reply-to:", b"cc:")


def accepts(head: bytes, blob: Blob) -> bool:
    """A message starts with header lines; at least three of the usual ones, MIME among them."""
    lines = head.lstrip(b"\r\n").splitlines()
    if lines and lines[0].startswith(b"From "):  # an mbox-style envelope line
        lines = lines[1:]
    names = set()
    for n, line in enumerate(lines):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):  # a folded header continues
            continue
        if not _HEADER.match(line):
            if n == len(lines) - 1:  # cut off by the end of the head
                break
            return False
        names.add(line.split(b":", 1)[0].lower() + b":")
    return b"mime-version:" in names and len(names & set(_KNOWN)) >= 3


def split_email(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """The message as independent units of work: one per attachment or inline picture, one per note."""
    from .files import member_units

    yield from member_units(_parts(blob, ctx, blob.budget or Budget(ctx.limits.zip_max_bytes)), ctx)


def _parts(blob: Blob, ctx: Context, budget: Budget) -> Iterator[Union[Item, Blob]]:
    limits, origin = ctx.limits, blob.origin
    if blob.depth > limits.max_depth:
        yield ItemError(origin, "", f"message nested deeper than max_depth ({limits.max_depth}); not opened")
        return
    try:
        msg = email.message_from_bytes(blob.data, policy=email.policy.default)
        leaves = [p for p in msg.walk() if not p.is_multipart()]
    except Exception as exc:
        yield ItemError(origin, "", f"not a readable e-mail message: {exc}")
        return
    if len(leaves) > limits.zip_max_entries:
        yield ItemError(origin, "", f"message has {len(leaves):,} parts, over the zip_max_entries cap "
                                    f"of {limits.zip_max_entries:,}; not opened")
        return
    text, seen = 0, set()
    for i, part in enumerate(leaves, 1):
        ctype = part.get_content_type()
        name = _safe_name(part.get_filename()) or f"part-{i}"
        attached = part.get_content_disposition() == "attachment" or part.get_filename()
        if ctype.startswith("text/") and not attached:
            text += 1
            continue
        where = f"{origin}:{name}" if name not in seen else f"{origin}:{name} (part {i})"
        seen.add(name)
        try:
            data = part.get_payload(decode=True)
        except Exception as exc:
            yield ItemError(where, "", f"could not decode the part: {exc}")
            continue
        if isinstance(data, email.message.Message):  # an attached message that was not decoded as bytes
            data = data.as_bytes()
        if not data:
            yield ItemError(where, "", "empty attachment", skipped=True)
            continue
        if len(data) > limits.max_input_bytes:
            yield ItemError(where, "", f"attachment is {len(data):,} bytes, over the max_input_bytes cap of "
                                       f"{limits.max_input_bytes:,}; not read")
            continue
        if len(data) > budget.left:
            yield ItemError(where, "", f"message decodes past the zip_max_bytes cap of {limits.zip_max_bytes:,}; "
                                       "the rest is not read")
            return
        budget.left -= len(data)
        member = Blob(where, data, name=name, content_type=ctype, depth=blob.depth + 1, budget=budget)
        if ctype == "message/rfc822" or accepts(data[:4096], member):
            if member.depth > limits.max_depth:
                yield ItemError(where, "", f"message nested deeper than max_depth ({limits.max_depth}); not opened")
                continue
            yield from _parts(member, ctx, budget)
        else:
            yield member
    if text:
        yield ItemError(origin, "", f"e-mail: {text} text part{'s' if text > 1 else ''} (the message itself) "
                                    "left out; remote images in it are not fetched", skipped=True)


def _safe_name(name: str | None) -> str:
    """An attachment's own file name, without any folder it claims."""
    if not name:
        return ""
    base = re.split(r"[\\/]", str(name))[-1].strip().strip(".")
    return base[:200]


register(SourcePlugin("email", accepts, priority=85, split=split_email))
