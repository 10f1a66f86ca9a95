"""Staff notes relayed against the real test-bed Redmine: an issue filed for an outside
requester, the relay account made a watcher (here by the test itself), staff notes added
over REST, and Redmine's own notification mails to the relay account (its mail_dir) fed
to the installed m2r-deliver, whose mail goes to a stand-in sendmail program that keeps
argv and message. Run under /tmp/m2r-testbed.lock.
"""

from __future__ import annotations

import time
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest

from m2r_deliver.outgoing.tokens import thread_token
from m2r_deliver.states import MailKind
from support.mails import make_mail
from support.testbed import filed_issue_id, notifications, wait_for
from support.sendmail import SendmailStandIn

pytestmark = pytest.mark.patient

FROM = "Helpdesk <request@example.org>"


@pytest.fixture
def relay(site, testbed, tmp_path):
    site.sendmail = SendmailStandIn(tmp_path)
    configure(site, "relay")
    return site


def configure(site, user):
    site.write_config(f'[outgoing]\nsendmail = "{site.sendmail.program}"\nfrom = "{FROM}"\n'
                      f'envelope_sender = "request+bounces@example.org"\n\n[relay]\nenabled = true\nuser = "{user}"\n')


def file_for_requester(site, testbed, token, *watchers):
    requester = f"hanako-{token}@example.net"
    result = site.deliver(make_mail(f"Printer jammed {token}", "The printer says PC LOAD LETTER.",
                                    sender=f"Hanako Yamada <{requester}>"))
    issue_id = filed_issue_id(result)
    for login in watchers:
        response = testbed.api("POST", f"/issues/{issue_id}/watchers.json",
                               json={"user_id": testbed.info["users"][login]["id"]})
        assert response.status_code in (200, 204), response.text
    return issue_id, requester


def staff_note(testbed, issue_id, notes, **fields):
    response = testbed.api("PUT", f"/issues/{issue_id}.json", key=testbed.info["jsmith_key"],
                           json={"issue": {"notes": notes, **fields}})
    assert response.status_code == 204, response.text
    return testbed.issue(issue_id)["journals"][-1]["id"]


def journal_mails(testbed, login, issue_id, count):
    """Redmine's notifications of *issue_id*'s journals to *login*, once there are *count*."""
    address = testbed.info["users"][login]["mail"]

    def found():
        mails = [m for m in notifications(testbed, address) if m["X-Redmine-Issue-Id"] == str(issue_id)
                 and "redmine.journal-" in (m["Message-ID"] or "")]
        return mails if len(mails) >= count else None

    return wait_for(found, f"{count} notification(s) of #{issue_id} to {address}")


def journal_of(message) -> int:
    return int(message["Message-ID"].split("redmine.journal-", 1)[1].split(".", 1)[0])


def feed(site, message):
    result = site.deliver(message.as_bytes())
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result
    return site.last_log_line()


def test_a_staff_note_reaches_the_requester_once_and_a_private_one_never(relay, testbed, token):
    issue_id, requester = file_for_requester(relay, testbed, token, "relay", "relayleaky")
    public = staff_note(testbed, issue_id, f"Please restart the printer ({token}).")
    private = staff_note(testbed, issue_id, f"internal {token}: the vendor owes us", private_notes=True)
    leaky = journal_mails(testbed, "relayleaky", issue_id, 2)  # Redmine sent this one both notes
    assert sorted(map(journal_of, leaky)) == [public, private]
    [notice] = journal_mails(testbed, "relay", issue_id, 1)  # a Reporter: never the private one
    assert journal_of(notice) == public

    assert f" decision=relayed issue=#{issue_id} journal={public} to={requester} " in feed(relay, notice)
    [(argv, data)] = relay.sendmail.runs()
    assert argv == ["-i", "-f", "request+bounces@example.org", "--", requester]
    mail = message_from_bytes(data)
    assert str(make_header(decode_header(mail["Subject"]))) == f"Re: [Helpdesk - Support #{issue_id}] Printer jammed {token}"
    assert (mail["To"], mail["From"], mail["Auto-Submitted"]) == (f"Hanako Yamada <{requester}>", FROM,
                                                                   "auto-generated")
    token_read = thread_token(mail["Message-ID"], None)
    assert (token_read.kind, token_read.issue_id, token_read.journal_id) == (MailKind.NOTE, issue_id, public)
    assert thread_token(mail["In-Reply-To"], None).kind == MailKind.ACKNOWLEDGEMENT
    text = mail.get_payload(decode=True).decode(mail.get_content_charset() or "ascii")
    assert text.startswith(f"Please restart the printer ({token}).\n") and "vendor" not in text
    assert "Answered by John Smith, Helpdesk" in text

    assert "decision=duplicate" in feed(relay, notice)  # the same notification again
    configure(relay, "relayleaky")  # a relay account that wrongly may see private notes
    lines = {journal_of(m): feed(relay, m) for m in leaky}
    assert 'reason="a private note"' in lines[private]
    assert "relayed already" in lines[public]
    assert len(relay.sendmail.runs()) == 1, "a second mail, or the private note, left"
    assert f"internal {token}".encode() not in b"".join(run[1] for run in relay.sendmail.runs())

    # the requester answers the relayed mail, naming only its Message-ID: a note on the same issue
    configure(relay, "relay")
    reply = make_mail("Re: your answer", f"Restarted, it works ({token}).", sender=f"Hanako Yamada <{requester}>",
                      headers={"In-Reply-To": mail["Message-ID"]})
    result = relay.deliver(reply)
    assert result.returncode == 0 and f" decision=filed issue=#{issue_id} action=note " in result.log.splitlines()[-1]
    notes = [j for j in testbed.issue(issue_id)["journals"] if f"it works ({token})" in (j.get("notes") or "")]
    assert len(notes) == 1
    # Redmine tells the relay account of that note too: it is the requester's own, never echoed
    echo = next(m for m in journal_mails(testbed, "relay", issue_id, 2) if journal_of(m) == notes[0]["id"])
    assert 'reason="the requester\'s own note (it came from their mail)"' in feed(relay, echo)
    # and the relayed mail itself, should it come back to the gateway, is no one's request
    assert "decision=dropped" in feed(relay, message_from_bytes(data))
    assert len(relay.sendmail.runs()) == 1


#: The issue's 50 notes; fewer with M2R_RELAY_NOTES (each is two deliveries of the program).
NOTES = 50


def test_many_notes_each_notified_twice_make_as_many_mails(relay, testbed, token):
    import os

    count = int(os.environ.get("M2R_RELAY_NOTES", NOTES))
    issue_id, requester = file_for_requester(relay, testbed, token, "relay")
    journals = [staff_note(testbed, issue_id, f"Step {n} of {count} ({token}).") for n in range(count)]
    mails = journal_mails(testbed, "relay", issue_id, count)
    started = time.monotonic()
    for message in mails + mails:
        assert "decision=" in feed(relay, message)
    elapsed = time.monotonic() - started
    runs = relay.sendmail.runs()
    assert len(runs) == count, f"{len(runs)} mails for {count} notes"
    relayed = sorted(thread_token(message_from_bytes(data)["Message-ID"], None).journal_id for _, data in runs)
    assert relayed == sorted(journals)
    assert {argv[-1] for argv, _ in runs} == {requester}
    print(f"{2 * count} notifications delivered in {elapsed:.1f} s ({elapsed / (2 * count) * 1000:.0f} ms each)")


def test_field_changes_are_not_relayed_but_a_status_of_relay_statuses_is(relay, testbed, token):
    relay.config_path.write_text(relay.config_path.read_text().replace('user = "relay"',
                                                                       'user = "relay"\nstatuses = ["Resolved"]'))
    issue_id, requester = file_for_requester(relay, testbed, token, "relay")
    priority = staff_note(testbed, issue_id, "", priority_id=testbed.info["priorities"]["High"])
    resolved = staff_note(testbed, issue_id, "", status_id=testbed.info["statuses"]["Resolved"])
    lines = {journal_of(m): feed(relay, m) for m in journal_mails(testbed, "relay", issue_id, 2)}
    assert 'reason="field changes only (no note, no status of [relay] statuses)"' in lines[priority]
    assert f" decision=relayed issue=#{issue_id} journal={resolved} to={requester} " in lines[resolved]
    [(_, data)] = relay.sendmail.runs()
    mail = message_from_bytes(data)
    assert thread_token(mail["Message-ID"], None).kind == MailKind.STATUS
    assert "Status: Resolved" in mail.get_payload(decode=True).decode()
