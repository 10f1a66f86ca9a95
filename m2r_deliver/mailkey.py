"""Mail key: which deliveries are the same mail. Its key names the mail in the ledger and
in the marker stored with the issue, so it must come out the same on every host that
receives a copy, whatever trace headers each path added.

The key is the Message-ID in angle brackets when it is usable; otherwise a digest of the
parts of the message its sender wrote (origin headers and body), not of the parts the
mail system adds on the way.
"""

from __future__ import annotations

import email.parser
import re

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

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def delivery_key(received: Received) -> str:
    headers = _headers(received.message)
    msgid = first_msgid(headers.get("message-id")) if headers is not None else None
    if usable_message_id(msgid):
        return f"<{msgid}>"
    import hashlib  # most mail has a usable Message-ID

    return "sha256:" + hashlib.sha256(canonical(received.message, headers)).hexdigest()


def usable_message_id(msgid: str | None) -> bool:
    if not msgid or len(msgid) + 2 > MAX_KEY or not msgid.isascii() or not msgid.isprintable() or " " in msgid:
        return False
    local, at, domain = msgid.rpartition("@")
    return bool(at) and len(local) >= MIN_LOCAL_PART and bool(domain)


def canonical(message: bytes, headers) -> bytes:
    """The origin headers (unfolded, whitespace collapsed) and the body (line ends and
    trailing blanks normalised): what stays the same across delivery paths."""
    parts = []
    for name in ORIGIN_HEADERS:
        for value in (headers.get_all(name) or []) if headers is not None else []:
            parts.append(f"{name}: {' '.join(str(value).split())}".encode("utf-8", "surrogateescape"))
    split = _HEADER_END.search(message)
    body = message[split.end():] if split else b""
    lines = [line.rstrip() for line in body.replace(b"\r\n", b"\n").split(b"\n")]
    return b"\n".join(parts) + b"\n\n" + b"\n".join(lines).rstrip(b"\n")


def _headers(message: bytes):
    try:
        return email.parser.BytesHeaderParser().parsebytes(message)  # compat32, the lenient policy
    except Exception:  # a header block even the lenient parser rejects: the digest still works
        return None
