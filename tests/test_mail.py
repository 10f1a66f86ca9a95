"""Parsing: bytes → Mail, on the project's own fixtures and Redmine's corpus."""

import pytest

from support.paths import corpus_dir, corpus_file
from support.mails import make_mail, parsed
from m2r_deliver.errors import MailError


def test_mbox_from_line_is_accepted_and_kept_in_raw():
    data = make_mail(mbox_from="taro@example.org", msgid="a1@example.org")
    mail = parsed(data)
    assert mail.message_id == "a1@example.org"
    assert mail.envelope_sender == "taro@example.org"
    assert mail.received.raw == data
    assert not mail.received.message.startswith(b"From ")


def test_empty_input_is_the_mails_fault():
    with pytest.raises(MailError):
        parsed(b"\n\n")


def test_addresses_subject_and_body():
    mail = parsed(make_mail("件名 テスト", "本文です\r\n二行目", sender="山田 太郎 <Taro@Example.ORG>",
                            headers={"Cc": "a@x.org, B <b@x.org>", "Delivered-To": "req@x.org"}))
    assert mail.subject == "件名 テスト"
    assert mail.sender.addr == "taro@example.org" and mail.sender.name == "山田 太郎"
    assert mail.body == "本文です\n二行目"
    assert mail.cc == ("a@x.org", "b@x.org")
    assert mail.recipients == ("request@example.org", "a@x.org", "b@x.org", "req@x.org")


def test_shift_jis_body_with_cp932_characters():
    data = (b"From: a@x.org\r\nSubject: x\r\nContent-Type: text/plain; charset=Shift_JIS\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + "見積書①をお送りします。㈱髙島屋".encode("cp932"))
    assert parsed(data).body == "見積書①をお送りします。㈱髙島屋"


def test_html_only_becomes_text():
    data = (b"From: a@x.org\r\nSubject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            b"<html><body><p>First &amp; second</p><ul><li>one</li><li>two</li></ul></body></html>")
    mail = parsed(data)
    assert mail.body_from_html
    assert mail.body == "First & second\n\n* one\n* two"


def test_no_headers_at_all_still_parses():
    mail = parsed(b"just a body line\n")
    assert mail.subject == "" and mail.sender is None and mail.message_id is None
    assert mail.body == "just a body line"


CORPUS_SUBJECTS = {
    "subject_japanese_1.eml": "テスト",
    "subject_japanese_2.eml": "Re: テスト",
    "subject_japanese_3.eml": "① 丸数字テスト",
    "subject_as_iso-8859-1.eml": "Testmail from Webmail: ä ö ü...",
    "gmail-iso8859-2.eml": "Nikad više",
}


@pytest.mark.parametrize("name,subject", sorted(CORPUS_SUBJECTS.items()))
def test_corpus_subjects(name, subject):
    assert parsed(corpus_file("redmine-mail-handler", name).read_bytes()).subject == subject


def test_corpus_bodies_in_other_charsets():
    assert parsed(corpus_file("redmine-mail-handler", "body_ks_c_5601-1987.eml").read_bytes()).body == "고맙습니다."
    assert "Na štriku se suši šosić." in parsed(corpus_file("redmine-mail-handler", "gmail-iso8859-2.eml").read_bytes()).body


def test_every_corpus_mail_parses():
    for folder in ("redmine-mail-handler", "bounces"):
        for path in sorted(corpus_dir(folder).iterdir()):
            if path.suffix in (".eml", ".txt"):
                mail = parsed(path.read_bytes())
                assert isinstance(mail.subject, str) and isinstance(mail.body, str), path.name
                assert "\ufffd" not in mail.subject, path.name
