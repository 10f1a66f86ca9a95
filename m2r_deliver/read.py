"""Read: the bytes of one message from the mail system, kept exactly as received.

The mail is held once. Input up to ``SPOOL_ABOVE`` bytes stays in memory; bigger input
is spooled, a slice at a time, to an unnamed temporary file, and every later stage reads
it back in slices (the parser, the delivery key's digest), so a mail with a big
attachment is never one more string in memory.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from .valueclass import field, valueclass

_MBOX_FROM = re.compile(rb"From (\S+)[^\n]*\n")
#: Bytes read (and handed on) at a time; input larger than this is spooled to disk.
SLICE = 1 << 20
SPOOL_ABOVE = SLICE


@valueclass(frozen=True, eq=False)
class Received:
    """One message as the mail system handed it over."""

    #: The whole input when it is small, else None (it is in *spool*).
    data: bytes | None = field(repr=False)
    #: An unnamed temporary file holding the input, for big input.
    spool: BinaryIO | None = field(default=None, repr=False)
    #: Where the RFC 822 message starts: after a leading mbox ``From `` line, if any.
    start: int = 0
    #: The envelope sender from the mbox ``From `` line, when there was one.
    mbox_sender: str | None = None

    @property
    def raw(self) -> bytes:
        """Exactly the bytes read, for quarantine and audit copies (big input is read
        back from its spool: only these rare paths hold it in memory)."""
        if self.data is not None:
            return self.data
        return b"".join(self.chunks(0))

    @property
    def message(self) -> bytes:
        """The RFC 822 message, without a leading mbox ``From `` line."""
        return self.raw[self.start :] if self.start else self.raw

    def chunks(self, start: int | None = None) -> Iterator[bytes]:
        """The input from *start* (default: the message's start) in slices of SLICE bytes."""
        offset = self.start if start is None else start
        if self.data is not None:
            view = memoryview(self.data)
            for at in range(offset, len(self.data), SLICE):
                yield bytes(view[at : at + SLICE])
            return
        assert self.spool is not None
        self.spool.seek(offset)
        while piece := self.spool.read(SLICE):
            yield piece

    def blank(self) -> bool:
        """Whether the message is empty or only white space."""
        return all(piece.isspace() for piece in self.chunks())

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


def read_message(stream: BinaryIO) -> Received:
    """Accept what procmail and Postfix pipe to us: an optional ``From `` line, then the mail."""
    first = stream.read(SPOOL_ABOVE + 1)
    match = _MBOX_FROM.match(first)
    start, sender = (match.end(), match.group(1).decode("ascii", "replace")) if match else (0, None)
    match = None  # it refers to the input
    if len(first) <= SPOOL_ABOVE:
        return Received(data=first, start=start, mbox_sender=sender)
    import tempfile  # only big mail pays for it

    spool = tempfile.TemporaryFile(prefix="m2r-deliver.")
    try:
        spool.write(first)
        del first
        while piece := stream.read(SLICE):
            spool.write(piece)
        spool.flush()
    except BaseException:
        spool.close()
        raise
    return Received(data=None, spool=spool, start=start, mbox_sender=sender)
