"""Thread detection: Redmine's Message-ID tokens, its subject tag, and our own Message-IDs."""

from datetime import datetime, timezone

import pytest

from support.paths import corpus_file
from support.mails import make_mail, parsed
from m2r_deliver.plan import ThreadRef
from m2r_deliver.thread import _CLOCK_SLACK, references, subject_issue_id


def since_stamp(written: datetime) -> str:
    """The time a journal token's stamp is read as: the journal was written at or after
    it, less the clock slack the threading allows."""
    return (written - _CLOCK_SLACK).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_issue_token_in_in_reply_to():
    mail = parsed(corpus_file("redmine-mail-handler", "ticket_reply.eml").read_bytes())
    assert references(mail) == (ThreadRef("issue", issue_id=2),)


def test_a_real_notification_reply_carries_journal_and_issue():
    mail = parsed(make_mail("Re: [Helpdesk - Support #12] VPN", headers={
        "In-Reply-To": "<redmine.journal-40.20261127211527.5@redmine.test>",
        "References": "<redmine.issue-12.20261127211428.5@redmine.test> "
                      "<redmine.journal-40.20261127211527.5@redmine.test>",
    }))
    assert references(mail) == (
        ThreadRef("issue", issue_id=12),
        ThreadRef("journal", journal_id=40, since=since_stamp(datetime(2026, 11, 27, 21, 15, 27, tzinfo=timezone.utc))),
        ThreadRef("subject", issue_id=12),
    )


def test_newest_reference_first_and_foreign_tokens_ignored():
    mail = parsed(make_mail("Re: news", headers={
        "References": "<redmine.issue-3.20260101000000@x> <redmine.message-9.20260101000000@x> "
                      "<redmine.issue-4.20260102000000.1@x>",
    }))
    assert [r.issue_id for r in references(mail)] == [4, 3]


@pytest.mark.parametrize("subject,issue", [
    ("Re: [Cookbook - Feature #2] (New) Add ingredients categories", 2),
    ("Re: [Feature request #2] Add ingredients categories", 2),
    ("Re: [#2] Add ingredients categories", 2),
    ("Re: [12345#1][bogus#1][Feature request #2] Add ingredients categories", 2),
    ("Re: [Helpdesk - サポート #17] VPN 接続できない", 17),
    ("Re: issue #2 again", None),
    ("Order [A#2] shipped", None),
])
def test_subject_tag_like_redmine(subject, issue):
    assert subject_issue_id(subject) == issue


def test_our_own_message_ids_thread_through_the_ledger_hook():
    mail = parsed(make_mail("Re: printer", headers={"In-Reply-To": "<first@customer.example>"}))
    assert references(mail) == ()
    assert references(mail, {"first@customer.example": 42}.get) == (ThreadRef("ours", issue_id=42),)


def test_a_plain_new_mail_has_no_thread():
    assert references(parsed(make_mail("Printer jammed"))) == ()


def test_message_ids_nobody_here_knows_are_looked_up_by_the_marker_newest_first_at_most_three():
    mail = parsed(make_mail("Re: printer", headers={
        "In-Reply-To": "<newest.4@host-a.example>",
        "References": "<first.0000@host-a.example> <redmine.issue-9.20260101000000@x> <x@y> "
                      "<m2r.ack-5.0123456789abcdef@host-a.example> <second.1@host-a.example> "
                      "<third.22@host-a.example> <newest.4@host-a.example>",
    }))
    known = {"second.1@host-a.example": None}
    assert references(mail, known.get) == (ThreadRef("issue", issue_id=9),), "a token: no marker look-up"
    without_token = parsed(make_mail("Re: printer", headers={
        "In-Reply-To": "<newest.4@host-a.example>",
        "References": "<first.0000@host-a.example> <x@y> <m2r.ack-5.0123456789abcdef@host-a.example> "
                      "<second.1@host-a.example> <third.22@host-a.example> <newest.4@host-a.example>",
    }))
    assert references(without_token, known.get) == (), "only with a marker field"
    assert references(without_token, known.get, site_key="k" * 40, by_marker=True) == (
        ThreadRef("marker", key="<newest.4@host-a.example>"), ThreadRef("marker", key="<third.22@host-a.example>"),
        ThreadRef("marker", key="<second.1@host-a.example>"),
    ), "newest first, three at most; our tokens and too short a Message-ID (<x@y>) are never keys"
    ledger = {"third.22@host-a.example": 77}
    assert references(without_token, ledger.get, by_marker=True) == (ThreadRef("ours", issue_id=77),)
    tagged = parsed(make_mail("Re: [Helpdesk - Bug #12] printer", headers={"In-Reply-To": "<newest.4@host-a.example>"}))
    assert references(tagged, known.get, by_marker=True) == (ThreadRef("subject", issue_id=12),)
