"""Staff notes relayed to the requester, in-process: Redmine is tests/support/fakeredmine.py
(with journals), the mail system a stand-in sendmail program. The same decisions against
the real test-bed Redmine and its own notification mails: test_relay_redmine.py.
"""

from __future__ import annotations

import json
import re
import sqlite3
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest

from m2r_deliver.ledger import FILE_NAME
from m2r_deliver.outgoing.tokens import message_id, secret_from_key, thread_token
from m2r_deliver.states import MailKind
from support.fakeredmine import FakeRedmine
from support.mails import make_mail
from support.testbed import Site, imported_modules
from support.sendmail import SendmailStandIn
from support.inprocess import delivered, settings_of

REQUESTER = "hanako@example.net"
RELAY_TO = "relay@redmine.test"
KEY = "0" * 40


def journal(journal_id, notes="", *, user=(2, "John Smith"), private=False, details=()):
    return {"id": journal_id, "user": {"id": user[0], "name": user[1]}, "notes": notes, "private_notes": private,
            "created_on": "2026-12-01T10:00:00Z", "details": list(details)}


def issue(*journals, description=f"Requester: Hanako Yamada <{REQUESTER}>\n\nThe printer is jammed.",
          attachments=()):
    return {"project": "helpdesk", "subject": "Printer jammed", "description": description,
            "tracker": {"id": 3, "name": "Support"}, "status": {"id": 2, "name": "In Progress", "is_closed": False},
            "journals": list(journals), "attachments": list(attachments)}


def notification(issue_id, journal_id, *, to=RELAY_TO, recipient_id=144, msgid=None):
    """Redmine's mail about a journal, as Redmine 5.0 writes it (its text is never read)."""
    return make_mail(f"[Helpdesk - Support #{issue_id}] (In Progress) Printer jammed",
                     "A forged text that must never be relayed.", sender="Redmine <redmine@redmine.test>", to=to,
                     msgid=msgid or f"redmine.journal-{journal_id}.20261201100000.{recipient_id}@redmine.test",
                     headers={"X-Mailer": "Redmine", "X-Redmine-Issue-Id": str(issue_id),
                              "Auto-Submitted": "auto-generated", "List-Id": "<redmine.redmine.test>"})


@pytest.fixture
def relay_site(tmp_path):
    with FakeRedmine() as redmine:
        site = Site(tmp_path, redmine.url, KEY)
        site.redmine, site.sendmail = redmine, SendmailStandIn(tmp_path)
        configure(site)
        yield site


def configure(site, relay="", *, acknowledge="enabled = false", state=""):
    site.write_config(
        f'[outgoing]\nsendmail = "{site.sendmail.program}"\nfrom = "Helpdesk <request@example.org>"\n'
        f'envelope_sender = "request+bounces@example.org"\n\n[acknowledge]\n{acknowledge}\n\n'
        f'[relay]\nenabled = true\n{relay}\n')
    if state:
        site.config_path.write_text(site.config_path.read_text().replace("[state]\n", f"[state]\n{state}\n"))


def deliver(site, data, *, dry_run=False):
    done = delivered(settings_of(site), data, dry_run=dry_run)
    return done.result, done.stdout


def last_line(site):
    return site.log_file.read_text().splitlines()[-1]


def subject_of(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def text_of(message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode(part.get_content_charset())


def test_a_public_note_is_relayed_to_the_requester_once(relay_site):
    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer.\r\nThen try again."))
    result, _ = deliver(relay_site, notification(12, 30))
    assert (result.status, result.outcome.decision) == (0, "relayed")
    [(argv, data)] = relay_site.sendmail.runs()
    assert argv == ["-i", "-f", "request+bounces@example.org", "--", REQUESTER]
    mail = message_from_bytes(data)
    assert subject_of(mail) == "Re: [Helpdesk - Support #12] Printer jammed"
    assert (mail["To"], mail["From"]) == (f"Hanako Yamada <{REQUESTER}>", "Helpdesk <request@example.org>")
    assert mail["Auto-Submitted"] == "auto-generated"
    secret = secret_from_key(KEY)
    ack = message_id(MailKind.ACKNOWLEDGEMENT, 12, None, "example.org", secret)
    assert (mail["In-Reply-To"], mail["References"]) == (f"<{ack}>", f"<{ack}>")
    token = thread_token(mail["Message-ID"], secret)
    assert (token.kind, token.issue_id, token.journal_id, token.verified) == (MailKind.NOTE, 12, 30, True)
    text = text_of(mail)
    assert text.startswith("Please restart the printer.\nThen try again.\n") and "forged" not in text
    assert "Answered by John Smith, Helpdesk" in text and "Status: In Progress" in text
    line = last_line(relay_site)
    assert re.search(rf" decision=relayed issue=#12 journal=30 to={REQUESTER} relay_msgid=<m2r\.note-12-30\.[0-9a-f]+"
                     r"@example\.org> ms=\d+$", line), line

    again, _ = deliver(relay_site, notification(12, 30))  # the same notification again: the ledger's duplicate
    other, _ = deliver(relay_site, notification(12, 30, msgid="redmine.journal-30.20261201100001.144@redmine.test"))
    assert (again.status, other.status, len(relay_site.sendmail.runs())) == (0, 0, 1)
    assert " decision=dropped issue=#12 journal=30 guard=relay reason=\"journal 30 of #12 was relayed already" \
        in last_line(relay_site)


@pytest.mark.parametrize("journals, reason", [
    ([journal(31, "internal: the vendor owes us", private=True)], "a private note"),
    ([journal(31, f"From: Hanako <{REQUESTER}>\n\nIt still fails.", user=(1, "Redmine Admin"))],
     "the requester's own note (it came from their mail)"),
    ([journal(31, "Filed for the requester", user=(1, "Redmine Admin"))], "a note of the gateway's own user"),
    ([journal(31, details=[{"property": "attr", "name": "priority_id", "old_value": "2", "new_value": "3"}])],
     "field changes only (no note, no status of [relay] statuses)"),
    ([journal(31, details=[{"property": "attr", "name": "status_id", "old_value": "1", "new_value": "3"}])],
     "field changes only (no note, no status of [relay] statuses)"),
    ([journal(32, "another journal")], "issue #12 has no journal 31"),
])
def test_what_is_never_relayed(relay_site, journals, reason):
    relay_site.redmine.issues[12] = issue(*journals)
    result, _ = deliver(relay_site, notification(12, 31))
    assert (result.status, result.outcome.decision) == (0, "dropped")
    assert relay_site.sendmail.runs() == []
    assert f' decision=dropped issue=#12 journal=31 guard=relay reason="{reason}" ' in last_line(relay_site)


def test_no_requester_no_mail(relay_site):
    relay_site.redmine.issues[12] = issue(journal(31, "Done."), description="Filed by staff.")
    deliver(relay_site, notification(12, 31))
    assert relay_site.sendmail.runs() == []
    assert ' guard=relay reason="issue #12 records no requester" ' in last_line(relay_site)


def test_the_requester_field_names_the_requester(relay_site):
    configure(relay_site)
    relay_site.config_path.write_text(relay_site.config_path.read_text() +
                                      '\n[sender]\nrequester_field = "Database"\n')
    relay_site.redmine.issues[12] = {**issue(journal(31, "Done."), description="no line"),
                                     "custom_fields": [{"id": 5, "name": "Database", "value": "ken@example.org"}]}
    deliver(relay_site, notification(12, 31))
    [(argv, _)] = relay_site.sendmail.runs()
    assert argv[-1] == "ken@example.org"


def test_a_status_of_relay_statuses_sends_a_short_status_mail(relay_site):
    configure(relay_site, 'statuses = ["Resolved"]')
    relay_site.redmine.issues[12] = issue(journal(33, details=[
        {"property": "attr", "name": "status_id", "old_value": "2", "new_value": "3"}]))
    deliver(relay_site, notification(12, 33))
    [(_, data)] = relay_site.sendmail.runs()
    mail = message_from_bytes(data)
    assert thread_token(mail["Message-ID"], None).kind == MailKind.STATUS
    assert text_of(mail).startswith("-----")
    assert "Status: Resolved" in text_of(mail)  # the journal's, though the issue has moved on since


def test_only_the_relay_accounts_notification_is_relayed(relay_site):
    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer."))
    deliver(relay_site, notification(12, 30, to="jsmith@example.net", recipient_id=2))
    assert relay_site.sendmail.runs() == []
    assert ' reason="not addressed to the relay account relay <relay@redmine.test>" ' in last_line(relay_site)


def test_a_relay_account_redmine_lacks_keeps_the_notification_for_the_operator(relay_site):
    """A [relay] user that does not exist is the config's mistake: exit 75, the notification
    (and the staff's answer in it) kept by the mail system until it is mended."""
    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer."))
    configure(relay_site, 'user = "nobody"')
    result, _ = deliver(relay_site, notification(12, 30, msgid="redmine.journal-30.1.1@redmine.test"))
    assert result.status == 75 and relay_site.sendmail.runs() == []
    assert "fault=config" in last_line(relay_site) and "user 'nobody' does not exist" in last_line(relay_site)


def test_without_an_administrators_key_the_notification_waits_for_the_operator(relay_site, monkeypatch):
    from support import fakeredmine

    monkeypatch.setitem(fakeredmine.ADMIN, "admin", False)
    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer."))
    result, _ = deliver(relay_site, notification(12, 30))
    assert (result.status, result.failure.fault) == (75, "config") and relay_site.sendmail.runs() == []
    assert "relay.user: the relay account 'relay' cannot be looked up with a key that is not an administrator's" \
        in last_line(relay_site)


def test_the_recipient_rules_apply(relay_site):
    robot = "Requester: no-reply@example.net\n\nx"
    relay_site.redmine.issues[12] = issue(journal(30, "Fixed."), description=robot)
    deliver(relay_site, notification(12, 30))
    assert relay_site.sendmail.runs() == []
    assert ' reason="robot address no-reply@example.net (robot_recipient)" ' in last_line(relay_site)
    relay_site.redmine.issues[13] = issue(journal(34, "Fixed."), description="Requester: request@example.org\n\nx")
    deliver(relay_site, notification(13, 34))
    assert relay_site.sendmail.runs() == [] and "(own_or_list_address)" in last_line(relay_site)
    relay_site.config_path.write_text(relay_site.config_path.read_text().replace(
        "[outgoing]\n", '[outgoing]\nnever_to = ["hanako@*"]\n'))
    relay_site.redmine.issues[14] = issue(journal(35, "Fixed."))
    deliver(relay_site, notification(14, 35))
    assert relay_site.sendmail.runs() == [] and "(never_to)" in last_line(relay_site)


def test_many_notes_to_one_requester_all_go(relay_site):
    """No once-per limit for staff answers (the acknowledgement's is per day)."""
    configure(relay_site, acknowledge="enabled = true")
    relay_site.redmine.issues[12] = issue(*(journal(40 + n, f"note {n}") for n in range(5)))
    for n in range(5):
        deliver(relay_site, notification(12, 40 + n))
    assert len(relay_site.sendmail.runs()) == 5


def test_the_hand_over_failing_for_now_is_retried_with_the_same_bytes_once(relay_site):
    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer."))
    relay_site.sendmail.exits(75)
    first, _ = deliver(relay_site, notification(12, 30))
    assert (first.status, first.failure.fault) == (75, "mail_system")
    assert " decision=relayed issue=#12 journal=30 " in last_line(relay_site)
    assert " relay=owed " in last_line(relay_site) and " fault=mail_system " in last_line(relay_site)
    # meanwhile another notification of the same journal: the mail is owed already
    other, _ = deliver(relay_site, notification(12, 30, msgid="redmine.journal-30.9.145@redmine.test",
                                                to="relay@redmine.test"))
    assert other.status == 0 and "relayed already" in last_line(relay_site)
    relay_site.sendmail.exits(0)
    second, _ = deliver(relay_site, notification(12, 30))
    assert (second.status, second.outcome.decision) == (0, "duplicate")
    runs = relay_site.sendmail.runs()
    assert len(runs) == 2 and runs[0][1] == runs[1][1]
    third, _ = deliver(relay_site, notification(12, 30))
    assert third.status == 0 and len(relay_site.sendmail.runs()) == 2
    with sqlite3.connect(relay_site.state_dir / FILE_NAME) as db:
        assert db.execute("SELECT count(*) FROM owed").fetchone() == (0,)
        assert db.execute("SELECT recipient, kind FROM answered").fetchall() == [(REQUESTER, "note")]


def test_redmine_down_while_reading_the_journal_is_a_temporary_failure(tmp_path):
    site = Site(tmp_path, "http://127.0.0.1:9", KEY)
    site.sendmail = SendmailStandIn(tmp_path)
    configure(site)
    result, _ = deliver(site, notification(12, 30))
    assert (result.status, result.failure.fault) == (75, "redmine") and site.sendmail.runs() == []


def test_files_added_with_the_note_go_along_within_attachments_max(relay_site):
    configure(relay_site, "attachments_max = 1000")
    details = [{"property": "attachment", "name": "7", "old_value": None, "new_value": "manual.pdf"},
               {"property": "attachment", "name": "8", "old_value": None, "new_value": "設定.png"},
               {"property": "attachment", "name": "9", "old_value": None, "new_value": "big.iso"}]
    attachments = [{"id": 7, "filename": "manual.pdf", "filesize": 600, "content_type": "application/pdf"},
                   {"id": 8, "filename": "設定.png", "filesize": 300, "content_type": "image/png"},
                   {"id": 9, "filename": "big.iso", "filesize": 5000, "content_type": "application/octet-stream"}]
    relay_site.redmine.files.update({7: b"%PDF" + b"x" * 596, 8: b"\x89PNG" + b"y" * 296, 9: b"z" * 5000})
    relay_site.redmine.issues[12] = issue(journal(30, "See the manual.", details=details), attachments=attachments)
    result, _ = deliver(relay_site, notification(12, 30))
    assert result.status == 0
    [(_, data)] = relay_site.sendmail.runs()
    mail = message_from_bytes(data)
    files = {part.get_filename(): part.get_payload(decode=True) for part in mail.walk() if part.get_filename()}
    assert files == {"manual.pdf": relay_site.redmine.files[7], "設定.png": relay_site.redmine.files[8]}
    assert "[Attachment not included: big.iso (4.9 KB)]" in text_of(mail)
    assert ("GET", "/attachments/download/9") not in relay_site.redmine.seen


def test_dry_run_prints_the_mail_and_sends_nothing(relay_site):
    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer."))
    result, out = deliver(relay_site, notification(12, 30), dry_run=True)
    shown = json.loads(out)["relay_mail"]
    assert (shown["decision"], shown["to"], shown["kind"]) == ("would_relay", REQUESTER, "note")
    assert shown["subject"] == "Re: [Helpdesk - Support #12] Printer jammed"
    assert shown["text"].startswith("Please restart the printer.") and shown["template"] == "(shipped) relay.en.txt"
    assert relay_site.sendmail.runs() == [] and result.status == 0


def test_the_japanese_template(relay_site):
    configure(relay_site, 'template = "relay.ja.txt"')
    relay_site.redmine.issues[12] = issue(journal(30, "プリンタを再起動してください。"))
    deliver(relay_site, notification(12, 30))
    [(_, data)] = relay_site.sendmail.runs()
    assert text_of(message_from_bytes(data)).startswith("Hanako Yamada 様\n\nプリンタを再起動してください。")


def test_without_relay_or_for_other_notifications_the_drop_path_stays_light(relay_site):
    def new_issue(n):
        return make_mail("[Helpdesk - Support #12] (New) Printer", "x", sender="redmine@redmine.test", to=RELAY_TO,
                         msgid=f"redmine.issue-12.2026120110000{n}.144@redmine.test",
                         headers={"X-Mailer": "Redmine", "X-Redmine-Issue-Id": "12"})

    heavy = {"requests", "m2r_deliver.relay", "m2r_deliver.outgoing.stage", "m2r_deliver.outgoing.destinations"}
    names = imported_modules(relay_site, new_issue(1))  # relay on, a new issue's notification
    assert "guard=redmine_own" in last_line(relay_site) and not names & heavy
    relay_site.config_path.write_text(relay_site.config_path.read_text().replace("[relay]\nenabled = true",
                                                                                 "[relay]\nenabled = false"))
    for mail in (new_issue(2), notification(12, 30)):  # relay off
        names = imported_modules(relay_site, mail)
        assert "guard=redmine_own" in last_line(relay_site) and not names & heavy


def test_our_relayed_mail_coming_back_is_dropped_not_answered(relay_site):
    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer."))
    deliver(relay_site, notification(12, 30))
    [(_, data)] = relay_site.sendmail.runs()
    result, _ = deliver(relay_site, data)
    assert result.outcome.decision == "dropped" and len(relay_site.sendmail.runs()) == 1
    assert relay_site.redmine.writes() == []


@pytest.mark.parametrize("msgid, issue_header", [
    ("redmine.journal-30.20261201100000.144@redmine.test", "١٢"),  # not ASCII digits
    ("redmine.journal-30.20261201100000.144@redmine.test", "12; DROP"),
    ("redmine.journal-9999999999999.20261201100000.144@redmine.test", "12"),  # a journal id too long
    ("redmine.journal-30.20261201100000.144@redmine.test", "99999999999"),  # no such issue
    ("redmine.journal-.20261201100000.144@redmine.test", "12"),
])
def test_hostile_notifications_end_quietly(relay_site, msgid, issue_header):
    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer."))
    data = notification(12, 30, msgid=msgid).replace(b"X-Redmine-Issue-Id: 12", f"X-Redmine-Issue-Id: {issue_header}"
                                                     .encode())
    result, out = deliver(relay_site, data)
    assert result.status in (0, 75) and out == "" and relay_site.sendmail.runs() == []
    assert " decision=dropped " in last_line(relay_site) and len(relay_site.log_file.read_text().splitlines()) == 1


def test_a_delivery_stopped_after_owing_the_mail_pays_it_on_the_retry(relay_site, monkeypatch):
    """Owed and claimed, then stopped before the notification was recorded: the retry finds
    its own claim and sends the mail, once."""
    from m2r_deliver.outgoing import stage

    owe_relay = stage.owe_relay

    def owe_then_stop(*args):
        owe_relay(*args)
        raise KeyboardInterrupt("stopped by SIGTERM")

    relay_site.redmine.issues[12] = issue(journal(30, "Please restart the printer."))
    monkeypatch.setattr(stage, "owe_relay", owe_then_stop)
    first, _ = deliver(relay_site, notification(12, 30))
    assert first.status == 75 and relay_site.sendmail.runs() == []
    monkeypatch.undo()
    second, _ = deliver(relay_site, notification(12, 30))
    assert (second.status, second.outcome.decision) == (0, "relayed") and len(relay_site.sendmail.runs()) == 1
    third, _ = deliver(relay_site, notification(12, 30))
    assert third.status == 0 and len(relay_site.sendmail.runs()) == 1
