"""The acknowledgement handed to the system's Postfix, through its sendmail program and over
SMTP on 127.0.0.1:25, and delivered to an ordinary local account's mailbox.

Runs under the machine-wide lock, like every mail-chain test:
``flock /tmp/m2r-testbed.lock .venv/bin/python -m pytest -q tests/e2e/test_outgoing_postfix.py``
"""

from __future__ import annotations

import io

import pytest

from support.mails import make_mail
from m2r_deliver.errors import ConfigError
from m2r_deliver.mail import parse
from m2r_deliver.outgoing import templates
from m2r_deliver.outgoing.acknowledge import FiledIssue, acknowledgement
from m2r_deliver.outgoing.compose import to_bytes
from m2r_deliver.outgoing.destinations import SMTP, Sendmail
from m2r_deliver.config.outgoing import OutgoingSettings
from m2r_deliver.outgoing.tokens import secret_from_key
from m2r_deliver.plan import Person
from m2r_deliver.read import read_message

from .chain import LocalUser, delivered, run_root, running_as, wait_for

SECRET = secret_from_key("e2e key")
ENVELOPE = "request+bounces@example.org"


@pytest.fixture
def accounts(mail_host, postfix, token):
    """A requester and a bystander: ordinary local accounts, removed afterwards."""
    made = []
    try:
        for role in ("req", "by"):
            made.append(LocalUser(f"m2r-{role}-{token[:8]}", "not used"))
        yield made
    finally:
        for user in made:
            postfix.discard_queued_for(user.name)
            wait_for(lambda name=user.name: not running_as(name), f"the local delivery to {user.name} to end",
                     timeout=60)
            user.remove()


def acknowledgement_for(user: LocalUser, bystander: LocalUser, charset: str = "utf-8") -> tuple[str, bytes]:
    """An acknowledgement to *user* whose headers also name *bystander* (To and Bcc are
    never read for recipients)."""
    answered = parse(read_message(io.BytesIO(make_mail(
        "プリンタが動きません", msgid=f"form.{user.name}@form.example",
        headers={"Cc": f"{bystander.name}@localhost"}))))
    settings = OutgoingSettings(from_address="ヘルプデスク <request@example.org>", envelope_sender=ENVELOPE,
                                charset=charset)
    issue = FiledIssue(4242, "プリンタが動きません", "ヘルプデスク", "サポート", "http://127.0.0.1:3100/issues/4242")
    ack = acknowledgement(issue, Person(f"{user.name}@localhost", "山田 花子", "form field 依頼者メール"),
                          answered, templates.load("ack.ja.txt", None), settings, SECRET)
    data = to_bytes(ack).replace(b"\nTo: ", f"\nBcc: {bystander.name}@localhost\nTo: ".encode(), 1)
    return ack.message_id, data


def assert_arrived_alone(postfix, requester: LocalUser, bystander: LocalUser, message_id: str) -> None:
    [mail] = delivered(requester, message_id)
    assert mail.message_id == message_id
    assert mail.subject == "[ヘルプデスク - サポート #4242] プリンタが動きません"
    assert "受付番号は #4242 です" in mail.body
    assert mail.header("auto-submitted") == "auto-replied"
    assert mail.envelope_sender == ENVELOPE  # Postfix's Return-Path: the envelope we gave
    assert mail.in_reply_to == (f"form.{requester.name}@form.example",)
    assert bystander.mailbox() == b"" and postfix.queued_for(bystander.name) == []


def test_sendmail_hands_the_acknowledgement_to_postfix(accounts, postfix):
    requester, bystander = accounts
    message_id, data = acknowledgement_for(requester, bystander)
    Sendmail(OutgoingSettings().sendmail, timeout=60).send(data, ENVELOPE, [f"{requester.name}@localhost"])
    assert_arrived_alone(postfix, requester, bystander, message_id)


def test_smtp_hands_the_acknowledgement_to_postfix_in_iso_2022_jp(accounts, postfix):
    requester, bystander = accounts
    message_id, data = acknowledgement_for(requester, bystander, charset="iso-2022-jp")
    assert b"charset=\"iso-2022-jp\"" in data
    SMTP("127.0.0.1", 25, starttls=False, timeout=60).send(data, ENVELOPE, [f"{requester.name}@localhost"])
    assert_arrived_alone(postfix, requester, bystander, message_id)


def test_smtp_probe_and_starttls_that_postfix_does_not_offer(postfix, mail_host):
    offers_tls = run_root("postconf", "-h", "smtpd_tls_security_level").stdout.decode().strip() not in ("", "none")
    assert SMTP("127.0.0.1", 25, starttls=False, timeout=60).probe() == "SMTP server 127.0.0.1:25"
    if offers_tls:
        pytest.skip("this Postfix offers STARTTLS; the refusal is tested against the fake server")
    with pytest.raises(ConfigError, match="does not offer STARTTLS"):
        SMTP("127.0.0.1", 25, starttls=True, timeout=60).probe()
