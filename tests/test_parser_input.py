"""The parser's line buffer hands a leaf part's body over in pieces of many lines (so a big
attachment is not held as one string per line): the parsed message must be exactly what
the library's own line-by-line buffer gives, for real mail, generated hostile mail and
mutated real mail, fed in slices of any size."""

from __future__ import annotations

from email.feedparser import BufferedSubFile
from email.message import Message

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import mailgen
from support.paths import CORPUS, corpus_dir
from m2r_deliver.mimeparse import BoundedParser


def shape(msg: Message):
    """Everything the parser decided about *msg*: headers as read, payloads, preamble,
    epilogue, defects, recursively."""
    payload = msg._payload  # as the parser left it (get_payload would decode or copy)
    inner = [shape(part) for part in payload] if isinstance(payload, list) else payload
    return (list(msg.raw_items()), inner, msg.preamble, msg.epilogue,
            [type(defect).__name__ for defect in msg.defects], msg.get_default_type())


def parsed(data: bytes, slice_size: int, gathering: bool):
    parser = BoundedParser()
    if not gathering:  # the library's own buffer, one line at a time
        parser._input = BufferedSubFile()
    for at in range(0, len(data), slice_size):
        parser.feed(data[at : at + slice_size])
    return shape(parser.close()), parser.cut


def assert_same_parse(data: bytes, slice_size: int) -> None:
    assert parsed(data, slice_size, gathering=True) == parsed(data, slice_size, gathering=False)


def test_every_corpus_mail_parses_as_the_library_parses_it_line_by_line():
    compared = 0
    for folder in ("redmine-mail-handler", "bounces"):
        for path in sorted(corpus_dir(folder).iterdir()):
            data = path.read_bytes()
            for slice_size in (1, 7, 4096, 1 << 20):
                assert_same_parse(data, slice_size)
            compared += 1
    assert compared > 100


def test_a_body_longer_than_a_piece_with_boundaries_of_every_kind():
    """Pieces end at _SLICE characters and at every boundary, the outer ones too (RFC 2046:
    an outer boundary ends every part nested in it); CR, LF and CRLF line ends."""
    long_body = b"".join(b"%076d\n" % n for n in range(30_000))  # about 2.2 MiB
    for end in (b"\n", b"\r\n", b"\r"):
        data = (b'Content-Type: multipart/mixed; boundary="outer"\n\npreamble\n--outer\n'
                b'Content-Type: multipart/alternative; boundary="inner"\n\n--inner\n'
                b"Content-Type: text/plain\n\n" + long_body + b"--inner\n"
                b"Content-Type: application/zip\n\n" + long_body + b"--outer\n"  # inner never closed
                b"Content-Type: text/plain\n\n--outerish\nnot a boundary\n--outer--  \nepilogue\n"
                b"--outer\nafter the end\n").replace(b"\n", end)
        for slice_size in (1000, 65_536, 1 << 20, len(data)):
            assert_same_parse(data, slice_size)


def test_a_multipart_without_a_boundary_and_a_mail_without_a_body():
    for data in (b"Content-Type: multipart/mixed\n\n" + b"line\n" * 50_000,
                 b"Subject: no body", b"Subject: x\n\n", b"\n\n\n", b"no headers at all\n" * 3):
        for slice_size in (3, 1 << 20):
            assert_same_parse(data, slice_size)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(mailgen.mails(), st.sampled_from([1, 5, 64, 4096, 1 << 20]))
def test_generated_mail_parses_as_the_library_parses_it_line_by_line(data, slice_size):
    assert_same_parse(data, slice_size)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data(), st.sampled_from([3, 100, 1 << 20]))
def test_mutated_real_mail_parses_as_the_library_parses_it_line_by_line(data, slice_size):
    files = mailgen.corpus_mails(CORPUS) if CORPUS.is_dir() else []
    if not files:
        corpus_dir("bounces")  # skips, or fails in CI, with the reason
    assert_same_parse(data.draw(mailgen.mutated(files)), slice_size)
