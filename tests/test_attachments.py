"""Attachments: names in every encoding mailers use, content byte for byte, what is left
out and why; parsed offline, then filed in the real Redmine."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import io
import os
import urllib.parse

import pytest

from m2r_deliver.mail import _decoded_chunks, _leaf_parts
from support.mails import parsed, sjis_to_jis
from support.paths import corpus_dir
from support.testbed import filed_issue, mail_text

pytestmark = pytest.mark.patient

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def part(headers: bytes, data: bytes, boundary: bytes = b"B1") -> bytes:
    return b"--" + boundary + b"\r\n" + headers + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(data)


def multipart(token: str, *parts: bytes, body: str = "see the files", extra: bytes = b"") -> bytes:
    head = (f"From: Taro <taro@example.org>\r\nTo: request@example.org\r\nSubject: files {token}\r\n"
            f"Message-ID: <{token}.{os.urandom(4).hex()}@files.example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B1\r\n\r\n").encode()
    text = b"--B1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body.encode() + b"\r\n"
    return head + extra + text + b"".join(parts) + b"--B1--\r\n"


def jis_word(text: str) -> bytes:
    return b"=?ISO-2022-JP?B?" + base64.b64encode(sjis_to_jis(text.encode("cp932"))) + b"?="


NAMES = [
    # how the name is written in the part's headers → the name Redmine must show
    (b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''"
     + urllib.parse.quote("見積書①.pdf").encode(), "見積書①.pdf"),
    (b"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''"
     + urllib.parse.quote("請求").encode() + b";\r\n filename*1*=" + urllib.parse.quote("書②").encode()
     + b";\r\n filename*2=.pdf", "請求書②.pdf"),
    (b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=shift_jis'ja'"
     + urllib.parse.quote_from_bytes("髙島屋㈱.pdf".encode("cp932")).encode(), "髙島屋㈱.pdf"),
    (b"Content-Type: application/pdf; name=\"" + jis_word("議事録①") + b"\r\n =?UTF-8?B?"
     + base64.b64encode(".pdf".encode()) + b"?=\"\r\nContent-Disposition: attachment", "議事録①.pdf"),
    ("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"報告書.pdf\"".encode("utf-8"),
     "報告書.pdf"),
    ("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"～波ダッシュ①.pdf\"".encode("cp932"),
     "～波ダッシュ①.pdf"),
    (b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"Gr\xfc\xdfe.pdf\"", "Grüße.pdf"),
]


@pytest.mark.parametrize("headers,name", NAMES)
def test_file_names_in_every_encoding(headers, name):
    [attachment] = parsed(multipart("t", part(headers, PDF))).attachments
    assert attachment.filename == name
    assert attachment.content_type == "application/pdf" and attachment.size == len(PDF)


def test_what_is_attached_and_what_is_not():
    forwarded = (b"From: someone@example.net\r\nSubject: Original request\r\n\r\nThe forwarded text.\r\n")
    mail = parsed(multipart(
        "t",
        part(b"Content-Type: image/png\r\nContent-ID: <image001.png@01D9AB12.3456>\r\nContent-Disposition: inline",
             PNG),
        b"--B1\r\nContent-Type: message/rfc822\r\n\r\n" + forwarded,
        part(b"Content-Type: text/calendar; method=REQUEST", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        part(b"Content-Type: application/pgp-signature; name=signature.asc", b"-----BEGIN PGP SIGNATURE-----"),
        part(b"Content-Type: application/pkcs7-signature; name=smime.p7s", b"0\x82\x01"),
    ))
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("image001.png", "image/png"),
        ("Original request.eml", "message/rfc822"),
        ("attachment.ics", "text/calendar"),
    ]
    out = io.BytesIO()
    assert mail.attachments[1].write_to(out) == mail.attachments[1].size
    inner = email.message_from_bytes(out.getvalue(), policy=email.policy.compat32)
    assert inner["Subject"] == "Original request" and inner.get_payload().strip() == "The forwarded text."


def test_mail_that_is_only_an_attachment():
    data = (b"From: a@example.org\r\nSubject: scan\r\nContent-Type: application/pdf; name=scan.pdf\r\n"
            b"Content-Disposition: attachment; filename=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(PDF))
    mail = parsed(data)
    assert mail.body == ""
    assert [(a.filename, a.size) for a in mail.attachments] == [("scan.pdf", len(PDF))]


def base64_variants(data: bytes):
    encoded = base64.encodebytes(data).decode()
    yield encoded
    yield encoded.replace("\n", "\r\n")
    yield encoded.rstrip("=\n")  # padding lost
    yield encoded[: len(encoded) // 2] + " !*" + encoded[len(encoded) // 2:]  # junk characters
    yield base64.b64encode(data).decode()  # one long line


@pytest.mark.parametrize("size", [0, 1, 2, 3, 57, 1000, 3 * 1024 * 1024 + 7])
def test_sliced_decoding_is_byte_for_byte_the_librarys(size):
    data = os.urandom(size)
    for encoded in base64_variants(data):
        msg = email.message.Message()
        msg["Content-Transfer-Encoding"] = "base64"
        msg.set_payload(encoded)
        assert b"".join(_decoded_chunks(msg)) == msg.get_payload(decode=True) == data


def test_sliced_decoding_matches_the_library_on_every_corpus_part():
    compared = 0
    for folder in ("redmine-mail-handler", "bounces"):
        for path in sorted(corpus_dir(folder).iterdir()):
            for leaf in _leaf_parts(parsed(path.read_bytes()).message):
                if leaf.get_content_type() != "message/rfc822":
                    assert b"".join(_decoded_chunks(leaf)) == (leaf.get_payload(decode=True) or b""), path.name
                    compared += 1
    assert compared > 200


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def downloaded(testbed, attachment: dict) -> bytes:
    response = testbed.api("GET", f"/attachments/download/{attachment['id']}")
    response.raise_for_status()
    return response.content


def test_files_arrive_whole_in_redmine(site, testbed, token):
    latin2 = "příliš žluťoučký kůň".encode("iso-8859-2")
    parts = [part(headers, PDF) for headers, _ in NAMES[:4]] + [
        part(b"Content-Type: image/png\r\nContent-ID: <image001.png@01D9AB12.3456>\r\nContent-Disposition: inline", PNG),
        part(b"Content-Type: text/plain; charset=iso-8859-2\r\nContent-Disposition: attachment; filename=latin2.txt",
             latin2),
        part(b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=empty.bin", b""),
        part(b"Content-Type: text/x-vcard\r\nContent-Disposition: attachment; filename=Taro.VCF", b"BEGIN:VCARD"),
        part(b"Content-Type: application/pgp-signature; name=signature.asc", b"-----BEGIN PGP SIGNATURE-----"),
        b"--B1\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@example.net\r\nSubject: Earlier mail\r\n\r\nEarlier.\r\n",
    ]
    site.write_config('[mail]\nexcluded_filenames = ["*.vcf"]\n')
    issue = filed_issue(site.deliver(multipart(token, *parts)), testbed)
    filed = {a["filename"]: a for a in issue["attachments"]}
    assert sorted(filed) == sorted([name for _, name in NAMES[:4]] + ["image001.png", "latin2.txt", "Earlier mail.eml"])
    for _, name in NAMES[:4]:
        assert filed[name]["content_type"] == "application/pdf"
        assert sha(downloaded(testbed, filed[name])) == sha(PDF)
    assert filed["image001.png"]["content_type"] == "image/png" and downloaded(testbed, filed["image001.png"]) == PNG
    assert filed["latin2.txt"]["content_type"] == "text/plain" and downloaded(testbed, filed["latin2.txt"]) == latin2
    assert b"Subject: Earlier mail" in downloaded(testbed, filed["Earlier mail.eml"])
    assert mail_text(issue) == "see the files"  # left out on purpose: not worth a note


def test_file_larger_than_redmine_accepts_is_left_out_and_said_so(site, testbed, token):
    limit = testbed.info["attachment_max_size_kb"] * 1024
    big = os.urandom(limit + 4096)
    small = b"small file"
    data = multipart(token, part(b"Content-Type: application/zip\r\nContent-Disposition: attachment; filename=logs.zip",
                                 big),
                     part(b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=note.txt", small))
    result = site.deliver(data)
    issue = filed_issue(result, testbed)
    assert [a["filename"] for a in issue["attachments"]] == ["note.txt"]
    note = issue["description"].replace("\r\n", "\n").split("\n\n")[-1]
    assert note.startswith("[Attachment not filed: logs.zip (5.0 MB): Redmine refused it: ")
    assert str(limit) in note
    assert "'logs.zip' left out: Redmine refused it" in site.last_log_line()
    # Redmine's limit is now known: the next big file is left out without being sent.
    issue = filed_issue(site.deliver(multipart(token + "b", part(
        b"Content-Type: application/zip\r\nContent-Disposition: attachment; filename=again.zip", big))), testbed)
    assert issue["attachments"] == []
    assert "[Attachment not filed: again.zip (5.0 MB): larger than Redmine accepts (5.0 MB)]" in issue["description"]


def test_mail_that_is_only_an_attachment_is_filed(site, testbed, token):
    data = (f"From: a@example.org\r\nSubject: scan {token}\r\nMessage-ID: <{token}@scan.example.org>\r\n".encode()
            + b"Content-Type: application/pdf; name=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(PDF))
    issue = filed_issue(site.deliver(data), testbed)
    assert issue["subject"] == f"scan {token}" and issue["description"] == "Requester: a@example.org"
    assert [(a["filename"], a["filesize"]) for a in issue["attachments"]] == [("scan.pdf", len(PDF))]


def test_raw_8bit_subject_of_a_forwarded_mail_and_content_id_names():
    data = multipart("t", "--B1\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.net\r\nSubject: 転送の件\r\n\r\n"
                          "inner\r\n".encode(),
                     part("Content-Type: image/png\r\nContent-ID: <画像.png@example.net>".encode(), PNG))
    assert [a.filename for a in parsed(data).attachments] == ["転送の件.eml", "画像.png"]
