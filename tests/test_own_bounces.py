"""Bounces of the program's own mail: recognised by a verified token of ours in the
returned part, they become one private note on the issue; every other bounce is dropped
as before. The recognition in-process (bounces built around a real acknowledgement made
by outgoing/acknowledge.py with the test key; forged and foreign bounces; hostile ones),
then the installed program against the real test-bed Redmine. The same through the real
Postfix is tests/e2e/test_own_bounce_chain.py."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from m2r_deliver import guards, own_bounce
from m2r_deliver.config import Settings
from m2r_deliver.guards.bounce import Bounce
from m2r_deliver.config.outgoing import OutgoingSettings
from m2r_deliver.outgoing import templates
from m2r_deliver.outgoing.acknowledge import FiledIssue, acknowledgement
from m2r_deliver.outgoing.compose import OutgoingMail, to_bytes
from m2r_deliver.outgoing.tokens import message_id, secret_from_key
from m2r_deliver.plan import Person
from m2r_deliver.states import Action, MailKind
from support import bounces
from support.faultproxy import FaultProxy
from support.mails import make_mail, parsed
from support.paths import corpus_dir, corpus_file
from support.sendmail import SendmailStandIn
from support.testbed import assert_silent, decision, imported_modules, log_lines, make_issue, make_project

KEY = "0123456789abcdef0123456789abcdef01234567"
OUTGOING = OutgoingSettings(from_address="Helpdesk <request@example.org>", envelope_sender=bounces.ENVELOPE)
SETTINGS = Settings(url="http://127.0.0.1:9", key=KEY, outgoing=OUTGOING)
UNKNOWN = "550 5.1.1 <taro@example.org>: Recipient address rejected: User unknown"


def ack(issue_id: int = 123, key: str = KEY, to: str = "taro@example.org") -> bytes:
    """The acknowledgement outgoing/acknowledge.py writes for *issue_id* under *key*."""
    issue = FiledIssue(issue_id, "Printer on floor 3 is jammed", "Helpdesk", "Support", f"u/{issue_id}")
    return to_bytes(acknowledgement(issue, Person(to, "Taro Yamada"), parsed(make_mail()),
                                    templates.load("ack.en.txt", None), OUTGOING, secret_from_key(key)))


def relayed_note(issue_id: int, journal_id: int) -> bytes:
    note = OutgoingMail(kind=MailKind.NOTE, issue_id=issue_id, journal_id=journal_id,
                        from_address="request@example.org", to=(("", "taro@example.org"),),
                        subject=f"[Helpdesk - Support #{issue_id}] x", body="The printer is fixed.",
                        message_id=message_id(MailKind.NOTE, issue_id, journal_id, "example.org",
                                              secret_from_key(KEY)))
    return to_bytes(note)


def planned(mail: bytes, settings: Settings = SETTINGS):
    """What the pipeline plans for *mail*: the guards, then own_bounce for a stopped mail."""
    found = parsed(mail)
    verdict = guards.run(found, settings)
    assert verdict is not None, "every bounce here is stopped by a guard"
    return verdict, own_bounce.bounce_or_drop(found, verdict, settings)


# --- recognition ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["message/rfc822", "text/rfc822-headers", "quoted in the text"])
def test_a_bounce_of_our_acknowledgement_becomes_a_note_on_its_issue(shape):
    bounce = (bounces.quoted(ack()) if shape == "quoted in the text"
              else bounces.report(ack(), headers_only=shape == "text/rfc822-headers"))
    _, plan = planned(bounce)
    assert (plan.action, plan.issue_id, plan.guard) == (Action.BOUNCE_NOTE, 123, None)
    first, second = plan.notes.splitlines()
    assert first == "Our acknowledgement for this issue came back undelivered."
    if shape == "quoted in the text":
        assert second == ("Mail to taro@example.org could not be delivered: <taro@example.org>: Sorry, no mailbox "
                          "here by that name. (#5.1.1)")
    else:
        assert second == f"Mail to taro@example.org could not be delivered: {UNKNOWN}"


def test_a_bounce_of_a_relayed_note_names_the_journal():
    _, plan = planned(bounces.report(relayed_note(77, 456)))
    assert (plan.action, plan.issue_id) == (Action.BOUNCE_NOTE, 77)
    assert plan.notes.splitlines()[0] == "Our relayed note (journal 456) for this issue came back undelivered."


def test_one_line_per_failed_recipient_and_no_more_than_the_limit():
    head, tail = bounces.report(ack()).split(b"Final-Recipient", 1)
    blocks = "".join(f"Final-Recipient: rfc822; user{n}@example.org\nAction: failed\nStatus: 5.1.1\n"
                     f"Diagnostic-Code: smtp; 550 no user{n}\n\n" for n in range(30))
    _, plan = planned(head + blocks.encode() + b"Final-Recipient" + tail)
    lines = plan.notes.splitlines()
    assert len(lines) == 1 + own_bounce.MAX_RECIPIENTS + 1
    assert "Mail to user0@example.org could not be delivered: 550 no user0" in lines
    assert lines[-1] == f"… and {31 - own_bounce.MAX_RECIPIENTS} more recipients."


def test_a_forged_token_changes_nothing():
    forged = ack().replace(b"m2r.ack-123.", b"m2r.ack-124.")
    verdict, plan = planned(bounces.report(forged))
    assert (plan.action, plan.guard) == (Action.DROP, verdict.guard)
    assert plan.reason.startswith(verdict.reason)
    assert re.search(r"sent to our bounce address request\+bounces@example.org but returned Message-ID "
                     r"<m2r\.ack-124\.[0-9a-f]+@example\.org> does not verify as ours$", plan.reason), plan.reason


def test_another_sites_token_is_not_ours():
    _, plan = planned(bounces.report(ack(key="f" * 40)))
    assert plan.action == Action.DROP and "does not verify as ours" in plan.reason


def test_the_bounce_address_alone_is_not_enough():
    _, plan = planned(bounces.report(make_mail(msgid="someone-elses@example.net")))
    assert plan.action == Action.DROP
    assert plan.reason.endswith("; sent to our bounce address request+bounces@example.org but returns no "
                                "Message-ID of ours")


def test_our_token_outside_the_returned_part_is_no_sign():
    """In the bounce's own Message-ID, or only in the returned mail's References or body."""
    ours = message_id(MailKind.ACKNOWLEDGEMENT, 123, None, "example.org", secret_from_key(KEY))
    own_header = bounces.report(make_mail(), msgid=ours)
    in_references = bounces.report(make_mail(headers={"References": f"<{ours}>", "In-Reply-To": f"<{ours}>"}))
    in_body = bounces.report(make_mail(body=f"Message-ID: <{ours}>\n"))
    for bounce in (own_header, in_references, in_body):
        _, plan = planned(bounce)
        assert plan.action == Action.DROP and plan.reason.endswith("returns no Message-ID of ours"), plan.reason


def test_a_delay_warning_of_our_mail_is_dropped_and_says_so():
    _, plan = planned(bounces.report(ack(), action="delayed", status="4.4.1",
                                     diagnostic="smtp; 451 4.4.1 try again later"))
    assert (plan.action, plan.guard) == (Action.DROP, "own_bounce")
    assert plan.reason == "bounce of our acknowledgement of #123 names no permanently failed recipient (a delay warning?)"


def test_the_loop_guards_come_first():
    """Mail that says it is Redmine's, or carries our loop marker, is never a note."""
    settings = replace(SETTINGS, guard=replace(SETTINGS.guard, loop_markers=("request@example.org",)))
    for headers in ("X-Mailer: Redmine\n", "X-Loop: request@example.org\n"):
        verdict, plan = planned(bounces.report(ack(), extra_headers=headers), settings)
        assert verdict.guard in own_bounce.LOOP_GUARDS and (plan.action, plan.reason) == (Action.DROP, verdict.reason)


def test_a_persons_mail_quoting_our_token_is_no_bounce():
    """A requester's reply to the acknowledgement that pastes its headers: a note by the
    ordinary reply path, never a bounce note."""
    pasted = make_mail("Re: your mail", ack().decode("ascii").split("\n\n", 1)[0])
    assert guards.run(parsed(pasted), SETTINGS) is None


def test_no_foreign_bounce_of_the_corpus_becomes_a_note():
    """The 103 real bounces: each still dropped by its guard for the same reason. Sent to
    our bounce address, each is still dropped, and each the bounce guard's signs show to be
    a bounce says it returns no mail of ours; the others (relayed through a list, or
    Auto-Submitted without a report) keep their guard's reason."""
    files = sorted(corpus_dir("bounces").glob("*.txt"))
    assert len(files) == 103
    said = []
    for path in files:
        data = path.read_bytes()
        verdict, plan = planned(data)
        assert (plan.action, plan.guard, plan.reason) == (Action.DROP, verdict.guard, verdict.reason), path.name
        start = data.index(b"\n") + 1 if data.startswith(b"From ") else 0
        addressed = data[:start] + f"Delivered-To: {bounces.ENVELOPE}\n".encode() + data[start:]
        verdict, plan = planned(addressed)
        assert plan.action == Action.DROP, path.name
        assert plan.reason.startswith(verdict.reason), path.name
        if plan.reason.endswith("; sent to our bounce address request+bounces@example.org but returns no Message-ID "
                                "of ours"):
            said.append(path.name)
        else:
            assert plan.reason == verdict.reason and not Bounce().check(parsed(addressed), SETTINGS), path.name
    assert len(said) > 90


HOSTILE_DIAGNOSTICS = [
    "smtp; 550 " + "x" * 5000,
    "smtp; 550 user\r\n unknown\x00\x1b[31m\u2028<script>",
    "smtp; 550 \udcff\udcfe raw bytes",
]


@pytest.mark.parametrize("diagnostic", HOSTILE_DIAGNOSTICS)
def test_hostile_diagnostics_are_one_bounded_line(diagnostic):
    bounce = bounces.report(ack(), diagnostic="PLACEHOLDER").replace(
        b"PLACEHOLDER", diagnostic.encode("utf-8", "surrogateescape"))
    _, plan = planned(bounce)
    assert plan.action == Action.BOUNCE_NOTE
    [_, line] = plan.notes.splitlines()
    assert line.startswith("Mail to taro@example.org could not be delivered: 550 ")
    assert len(line) <= len("Mail to taro@example.org could not be delivered: ") + own_bounce.DIAGNOSTIC_LIMIT
    assert line.isprintable() and "\x00" not in line


def test_hostile_structure_ends_in_a_drop_not_a_failure():
    ours = ack()
    broken = [
        bounces.report(ours).replace(b"Content-Type: message/delivery-status", b"Content-Type: message/delivery-status"
                                     b"\nContent-Transfer-Encoding: base64"),
        bounces.report(b"\xff\xfe" * 1000 + ours),
        bounces.report(ours, recipient="\udcff@\udcfe".encode("utf-8", "surrogateescape").decode("latin-1")),
        bounces.report(b"Message-ID: <m2r.ack-99999999999999.zz@example.org>\n\nx"),
    ]
    for bounce in broken:
        _, plan = planned(bounce)
        assert plan.action in (Action.DROP, Action.BOUNCE_NOTE)
        assert plan.action == Action.DROP or plan.issue_id == 123


# --- the installed program, offline ----------------------------------------------------------

def outgoing_config(site, sendmail: str = "/bin/false", **config: str) -> None:
    site.write_config(f'[outgoing]\nsendmail = "{sendmail}"\nfrom = "Helpdesk <request@example.org>"\n'
                      f'envelope_sender = "{bounces.ENVELOPE}"\n\n[acknowledge]\nenabled = true\n', **config)


def test_a_foreign_bounce_at_our_bounce_address_loads_neither_the_http_stack_nor_tokens(offline_site):
    outgoing_config(offline_site)
    data = corpus_file("bounces", "postfix_02.txt").read_bytes()
    loaded = imported_modules(offline_site, f"Delivered-To: {bounces.ENVELOPE}\n".encode() + data)
    assert not {m for m in loaded if m.split(".")[0] in ("requests", "urllib3", "redminelib")}
    assert not {m for m in loaded if m.startswith(("m2r_deliver.filing", "m2r_deliver.bounce_note", "flufl"))}
    # the config reads the acknowledgement's template; nothing else of the outgoing package loads
    assert not loaded & {"m2r_deliver.outgoing.tokens", "m2r_deliver.outgoing.destinations",
                         "m2r_deliver.outgoing.stage", "smtplib"}
    line = offline_site.last_log_line()
    assert " decision=dropped guard=bounce " in line and "returns no Message-ID of ours" in line, line


def test_a_forged_bounce_is_dropped_by_the_program(offline_site):
    outgoing_config(offline_site)
    forged = bounces.report(ack(5, key=offline_site.key_file.read_text()).replace(b"m2r.ack-5.", b"m2r.ack-6."))
    assert_silent(offline_site.deliver(forged), 0)
    assert " decision=dropped guard=auto_submitted " in offline_site.last_log_line()


# --- the real Redmine -------------------------------------------------------------------------

def private_notes(testbed, issue_id: int) -> list[dict]:
    return [j for j in testbed.issue(issue_id)["journals"] if j.get("notes")]


def test_a_bounce_of_an_acknowledgement_becomes_one_private_note(site, testbed, token, tmp_path):
    sendmail = SendmailStandIn(tmp_path)
    outgoing_config(site, str(sendmail.program))
    result = site.deliver(make_mail(f"Printer jammed {token}", sender="Taro Yamada <taro@example.org>"))
    line = site.last_log_line()
    assert result.returncode == 0 and " ack=acknowledged to=taro@example.org " in line, line
    issue_id = int(re.search(r" issue=#(\d+) ", line).group(1))
    [(_, acknowledgement_sent)] = sendmail.runs()

    bounce = bounces.report(acknowledgement_sent)
    dry = site.deliver(bounce, "--dry-run")
    assert dry.returncode == 0 and '"action": "bounce_note"' in dry.stdout and f'"issue_id": {issue_id},' in dry.stdout
    assert private_notes(testbed, issue_id) == []
    assert_silent(site.deliver(bounce), 0)
    line = site.last_log_line()
    assert f" decision=filed issue=#{issue_id} action=bounce_note author=admin " in line, line
    assert " ack=" not in line and len(sendmail.runs()) == 1  # never an answer to a bounce
    [note] = private_notes(testbed, issue_id)
    assert note["private_notes"] is True and note["user"]["id"] == testbed.get("/users/current.json")["user"]["id"]
    assert note["notes"].replace("\r\n", "\n") == ("Our acknowledgement for this issue came back undelivered.\n"
                                                   f"Mail to taro@example.org could not be delivered: {UNKNOWN}")

    assert_silent(site.deliver(bounce), 0)
    assert decision(site.last_log_line()) == "duplicate"
    assert len(private_notes(testbed, issue_id)) == 1
    assert len(testbed.issues_with_subject(token)) == 1


def test_a_bounce_about_a_missing_issue_is_dropped_never_filed(site, testbed, token):
    outgoing_config(site)
    count = testbed.issue_count()
    bounce = bounces.report(ack(99999999, key=testbed.admin_key))
    assert_silent(site.deliver(bounce), 0)
    line = site.last_log_line()
    assert " decision=dropped guard=own_bounce " in line and "issue #99999999, which does not exist" in line, line
    assert testbed.issue_count() == count


def test_a_bounce_about_an_issue_in_a_closed_project_is_dropped(site, testbed, token):
    outgoing_config(site)
    project = make_project(testbed, f"b{token}")
    issue_id = make_issue(testbed, f"Closed project {token}", project=project["identifier"])
    assert testbed.api("PUT", f"/projects/{project['identifier']}/close.json").status_code == 204
    assert_silent(site.deliver(bounces.report(ack(issue_id, key=testbed.admin_key))), 0)
    line = site.last_log_line()
    assert " decision=dropped guard=own_bounce " in line and "closed or archived project" in line, line
    assert testbed.issue(issue_id)["journals"] == []


@pytest.mark.parametrize("fault", ["drop", "error-after"])
def test_a_bounce_note_whose_answer_was_lost_is_added_once(site, testbed, token, fault):
    issue_id = make_issue(testbed, f"Mail to nowhere {token}")
    bounce = bounces.report(ack(issue_id, key=testbed.admin_key))
    with FaultProxy(testbed.url, target="note") as proxy:
        outgoing_config(site, redmine="timeout = 30", url=proxy.url)
        proxy.mode = fault
        assert_silent(site.deliver(bounce), 75)
        proxy.mode = "pass"
        assert_silent(site.deliver(bounce), 0)
        assert len(proxy.filings()) == 1, "the retry looked, and did not add the note again"
    assert [decision(line) for line in log_lines(site)] == ["tempfail", "duplicate"]
    [note] = private_notes(testbed, issue_id)
    assert note["private_notes"] is True
