"""Exactly once for replies, against the real Redmine through the fault proxy tampering
with the request that adds the note (PUT …/issues/N.json): a lost answer, a held answer, a
kill in the middle and a plain redelivery each leave exactly one note on the issue."""

import signal

import pytest

from support.faultproxy import FaultProxy
from support.mails import make_mail
from support.testbed import assert_silent, decision, killed_while_held, log_lines, make_issue

KINDS = ["marker", "ledger-only"]


def configure(site, kind, url, timeout=30):
    marker = '\nmarker_field = "Message-ID"' if kind == "marker" else ""
    site.write_config(redmine=f"timeout = {timeout}{marker}", url=url)


def the_one_note(testbed, issue_id, text):
    """Nothing lost, nothing noted twice: exactly one note carries *text*."""
    notes = [j for j in testbed.issue(issue_id)["journals"] if text in (j.get("notes") or "")]
    assert notes, f"lost: no note on #{issue_id} carries {text!r}"
    assert len(notes) == 1, f"noted twice: journals {[j['id'] for j in notes]} on #{issue_id} carry {text!r}"
    return notes[0]


def reply(issue_id, token):
    text = f"Rebooted the switch, works again ({token})."
    return text, make_mail(f"Re: [Helpdesk - Bug #{issue_id}] Switch down", text, sender="jsmith@example.net")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["drop", "error-after"])
def test_answer_to_a_note_lost_after_redmine_saved_it(site, testbed, token, kind, fault):
    issue_id = make_issue(testbed, f"Switch down {token}")
    text, mail = reply(issue_id, token)
    with FaultProxy(testbed.url, target="note") as proxy:
        configure(site, kind, proxy.url)
        proxy.mode = fault
        assert_silent(site.deliver(mail), 75)
        the_one_note(testbed, issue_id, text)  # Redmine did save it
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
        assert len(proxy.filings()) == 1, "the redelivery looked, and did not add the note again"
    assert [decision(line) for line in log_lines(site)] == ["tempfail", "duplicate"]
    the_one_note(testbed, issue_id, text)


def test_a_held_answer_to_a_note_tempfails_then_the_note_is_found(site, testbed, token):
    issue_id = make_issue(testbed, f"Switch down {token}")
    text, mail = reply(issue_id, token)
    with FaultProxy(testbed.url, target="note") as proxy:
        configure(site, "ledger-only", proxy.url, timeout=8)
        proxy.mode = "hold"
        assert_silent(site.deliver(mail, timeout=120), 75)
        assert proxy.posted.is_set()
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
        assert len(proxy.filings()) == 1
    assert [decision(line) for line in log_lines(site)] == ["tempfail", "duplicate"]
    the_one_note(testbed, issue_id, text)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killed_in_the_middle_of_a_note_then_redelivered(site, testbed, token, sig):
    issue_id = make_issue(testbed, f"Switch down {token}")
    text, mail = reply(issue_id, token)
    with FaultProxy(testbed.url, target="note") as proxy:
        configure(site, "ledger-only", proxy.url)
        proxy.mode = "hold"
        killed_while_held(site, proxy, mail, sig)
        the_one_note(testbed, issue_id, text)
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
        assert len(proxy.filings()) == 1
    assert [decision(line) for line in log_lines(site)][-1] == "duplicate"
    the_one_note(testbed, issue_id, text)


@pytest.mark.parametrize("kind", KINDS)
def test_a_reply_delivered_twice_is_one_note(site, testbed, token, kind):
    issue_id = make_issue(testbed, f"Switch down {token}")
    text, mail = reply(issue_id, token)
    with FaultProxy(testbed.url, target="note") as proxy:
        configure(site, kind, proxy.url)
        assert_silent(site.deliver(mail), 0)
        assert_silent(site.deliver(mail), 0)
        assert [what for _, _, what in proxy.filings()] == ["204 forwarded"]
    assert [decision(line) for line in log_lines(site)] == ["filed", "duplicate"]
    the_one_note(testbed, issue_id, text)
