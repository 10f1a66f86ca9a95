"""The standard MIME parser (compat32, ``email.feedparser``), fed a slice at a time, with
two bounds of our own: on nesting (the library recurses once per level) and on what a
big part costs while it is read (the library keeps one string per line of it).
"""

from __future__ import annotations

from email.feedparser import BufferedSubFile, BytesFeedParser  # type: ignore[attr-defined]  # not in the stubs
from email.message import Message
from typing import Iterator

#: Deeper MIME nesting (multipart in multipart, message in message) is cut, with a note.
MAX_DEPTH = 50
#: The type a part cut for nesting too deep is given.
CUT_TYPE = "application/x-m2r-deliver-cut"
#: Characters of a body's lines handed to the parser at once (fed a 1 MiB slice at a time).
PIECE = 2 << 20


def parse_slices(slices: Iterator[bytes]) -> tuple[Message, int]:
    """Fed a slice at a time, the parser never holds the whole mail as one more string
    nor all of its lines at once: a 20 MB attachment costs tens of MB, not hundreds.
    Also the number of parts cut for nesting too deep (see BoundedParser)."""
    parser = BoundedParser()
    for piece in slices:
        parser.feed(piece)
    return parser.close(), parser.cut


class BoundedParser(BytesFeedParser):  # compat32, the lenient policy; naming it would import email.policy
    """The library's parser recurses once per nesting level and fails somewhere below a
    thousand. A part nested deeper than MAX_DEPTH (multiparts or forwarded messages) is
    read as one opaque leaf, which the later stages leave out (and the text notes)."""

    def __init__(self) -> None:
        super().__init__()
        self.cut = 0
        self._input: GatheringInput = GatheringInput()

    def _parse_headers(self, lines):
        super()._parse_headers(lines)
        part = self._cur
        if len(self._msgstack) > MAX_DEPTH and part.get_content_maintype() in ("multipart", "message"):
            del part["content-type"]
            part["Content-Type"] = CUT_TYPE
            self.cut += 1
        # What follows the headers of a leaf part is its body, read to the part's end.
        self._input.gathering = part.get_content_maintype() not in ("multipart", "message")


class GatheringInput(BufferedSubFile):
    """The parser's line buffer. The library reads a leaf part's body a line at a time and
    keeps every line, a string each, until it joins them: for base64's 76-character lines
    that is 1.7 x the part, and 2.7 x with the joined payload. While a body is read, this
    holds its lines (each still checked against the boundaries by the library's own
    readline) until they make PIECE characters, and hands them over as one: the part is
    held about twice, in pieces and joined, for the moment of the join. Pieces much
    larger than the slices fed in also leave the allocator less to keep."""

    def __init__(self) -> None:
        super().__init__()
        #: Set by the parser when a leaf part's headers are read; its body's end clears it.
        self.gathering = False
        self._held: list[str] = []
        self._held_size = 0

    def readline(self):
        if not self.gathering:
            return super().readline()
        while True:
            line = super().readline()
            if not isinstance(line, str):  # more to be fed: the lines held so far wait for it
                return line
            if not line:  # the part's end (a boundary, or the end of the mail), returned again next time
                if self._held:
                    return self._release()
                self.gathering = False
                return line
            self._held.append(line)
            self._held_size += len(line)
            if self._held_size >= PIECE:
                return self._release()

    def _release(self) -> str:
        piece = "".join(self._held)
        self._held, self._held_size = [], 0
        return piece
