"""Read: the bytes of one message from the mail system, kept exactly as received."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO


_MBOX_FROM = re.compile(rb"From (\S+)[^\n]*\n")


@dataclass(frozen=True)
class Received:
    """One message as the mail system handed it over."""

    #: Exactly the bytes read, for quarantine and audit copies.
    raw: bytes = field(repr=False)
    #: The RFC 822 message, without a leading mbox ``From `` line.
    message: bytes = field(repr=False)
    #: The envelope sender from the mbox ``From `` line, when there was one.
    mbox_sender: str | None = None


def read_message(stream: BinaryIO) -> Received:
    """Accept what procmail and Postfix pipe to us: an optional ``From `` line, then the mail."""
    raw = stream.read()
    match = _MBOX_FROM.match(raw)
    if match:
        sender = match.group(1).decode("ascii", "replace")
        return Received(raw=raw, message=raw[match.end() :], mbox_sender=sender)
    return Received(raw=raw, message=raw)
