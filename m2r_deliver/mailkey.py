"""Mail key: which deliveries are the same mail. Its key names the mail in the ledger and
in the marker stored with the issue, so it must come out the same on every host that
receives a copy, whatever trace headers each path added.

The key is the Message-ID in angle brackets when it is usable; otherwise a digest of the
parts of the message its sender wrote (origin headers and body), not of the parts the
mail system adds on the way. A message without any origin header (text piped by a
script, binary junk, a first paragraph that is not headers) is digested whole, trace
headers aside: two different ones must not share a key, nor share one with empty input.
"""

from __future__ import annotations

import email.parser
import re
from typing import Iterator

from .mail import first_msgid
from .read import Received

#: Headers written by the sender, in this order, for the digest. Trace headers
#: (Received, Return-Path, Delivered-To, …) differ between two paths and stay out.
ORIGIN_HEADERS = ("from", "sender", "reply-to", "to", "cc", "date", "subject", "message-id", "in-reply-to",
                  "references")
#: Before the "@": shorter local parts are too likely to be reused (``<1@localhost>``).
MIN_LOCAL_PART = 6
#: Longer keys do not fit comfortably in a Redmine custom field and a query string.
MAX_KEY = 250

#: Added on the way, not by the sender: left out of the digest of a message without origin headers.
TRACE_HEADERS = (b"received", b"return-path", b"delivered-to", b"x-original-to", b"envelope-to",
                 b"x-envelope-from", b"x-envelope-to")

_HEADER_END = re.compile(rb"\r?\n\r?\n")
#: One header field with its continuation lines.
_HEADER_LINE = re.compile(rb"([!-9;-~]+)[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*")


def delivery_key(received: Received) -> str:
    head, body_at = _header_block(received)
    headers = _headers(head)
    msgid = first_msgid(_raw_value(headers, "message-id"))
    if usable_message_id(msgid):
        return f"<{msgid}>"
    import hashlib  # most mail has a usable Message-ID

    origin = _origin(headers)
    if not origin:
        digest = hashlib.sha256(WHOLE)
        for piece in received.chunks(received.start + _trace_end(head)):
            digest.update(piece)
        return "sha256:" + digest.hexdigest()
    digest = hashlib.sha256(origin + b"\n\n")
    if body_at is not None:
        for piece in _body_lines(received.chunks(received.start + body_at)):
            digest.update(piece)
    return "sha256:" + digest.hexdigest()


def usable_message_id(msgid: str | None) -> bool:
    if not msgid or len(msgid) + 2 > MAX_KEY or not msgid.isascii() or not msgid.isprintable() or " " in msgid:
        return False
    local, at, domain = msgid.rpartition("@")
    return bool(at) and len(local) >= MIN_LOCAL_PART and bool(domain)


def canonical(message: bytes, headers) -> bytes:
    """The origin headers (unfolded, whitespace collapsed) and the body (line ends and
    trailing blanks normalised): what stays the same across delivery paths. (The key
    is its digest, computed a slice at a time by delivery_key.)"""
    origin = _origin(headers)
    if not origin:
        return WHOLE + message[_trace_end(message):]
    split = _HEADER_END.search(message)
    return origin + b"\n\n" + b"".join(_body_lines([message[split.end():]] if split else []))


#: What the digest of a message without origin headers starts with.
WHOLE = b"whole message\n"


def _trace_end(head: bytes) -> int:
    """Where *head* goes on after the trace header fields at its top (each with its folded lines)."""
    start = 0
    while match := _HEADER_LINE.match(head, start):
        if match.group(1).lower() not in TRACE_HEADERS:
            break
        start = match.end()
    return start


def _raw_value(headers, name: str) -> str | None:
    """The first *name* field as the parser read it: the library's accessor turns one with
    raw 8-bit bytes into an object the Message-ID syntax cannot be read from."""
    if headers is None:
        return None
    value = next((value for key, value in headers.raw_items() if key.lower() == name), None)
    return value if isinstance(value, str) else None


def _origin(headers) -> bytes:
    parts = []
    for name in ORIGIN_HEADERS:
        for value in (headers.get_all(name) or []) if headers is not None else []:
            parts.append(f"{name}: {' '.join(str(value).split())}".encode("utf-8", "surrogateescape"))
    return b"\n".join(parts)


def _body_lines(slices) -> Iterator[bytes]:
    """The body's lines without trailing blanks, joined by LF, without the empty lines
    at its end — in pieces: slices of any size in, the same bytes out."""
    owed = -1  # line ends not yet written: the first line has none before it
    for line in _lines(slices):
        owed += 1
        line = line.rstrip()
        if line:
            yield b"\n" * owed + line
            owed = 0


def _lines(slices) -> Iterator[bytes]:
    carry = b""
    for piece in slices:
        lines = (carry + piece).split(b"\n")
        carry = lines.pop()
        yield from lines
    yield carry


def _header_block(received: Received) -> tuple[bytes, int | None]:
    """The message's header block, and where its body starts (None: no body)."""
    head = b""
    for piece in received.chunks():
        head += piece
        split = _HEADER_END.search(head)
        if split:
            return head[:split.end()], split.end()
    return head, None


def _headers(head: bytes):
    try:
        return email.parser.BytesHeaderParser().parsebytes(head)  # compat32, the lenient policy
    except MemoryError:  # the same mail must get the same key: this attempt fails instead
        raise
    except Exception:  # a header block even the lenient parser rejects: the digest still works
        return None
