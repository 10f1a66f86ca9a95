"""A whole conversation through the real mail system: the system Postfix delivers to an
ordinary gateway account whose ~/.procmailrc is the shipped examples/procmailrc (its site
values set), m2r-deliver files into the test-bed Redmine and sends through Postfix's
``/usr/sbin/sendmail`` to a throwaway requester account whose mailbox the test reads.

The test-bed Redmine sends its notifications by SMTP to the same Postfix
(``delivery_method: :smtp``, testbed/redmine-testbed, when scripts/setup-mail prepared
Postfix). The relay account is made for each test over REST: a Reporter in helpdesk,
notified only of what it watches, with the relay address
``<gateway>+relay@localhost.localdomain`` (Postfix's recipient delimiter ``+``), which
Postfix delivers to the gateway account: Redmine's notifications to it reach procmail and
m2r-deliver by themselves, the test hands over none. Those to the test bed's own users
(dlopes@example.net...) go through Postfix to its catch-all account, which files them where
the tests read them (tests/support/testbed.py ``notifications``).

    the form's mail           → an issue, and one acknowledgement to the requester
    jsmith: a public note and a private note
                              → one mail to the requester: the public note
    the requester's reply     → a note on the same issue (its notification relays nothing)
    the requester's vacation auto-reply to the relayed note
                              → nothing filed, nothing sent
    jsmith closes the issue   → a short status mail to the requester ([relay] statuses)
    the requester writes again → the issue reopened with their note ([reply] reopen_status)

Runs under the machine-wide lock, like every mail-chain test:
``flock /tmp/m2r-testbed.lock env M2R_REQUIRE_REDMINE=1 .venv/bin/python -m pytest -q
tests/e2e/test_conversation.py``
"""

from __future__ import annotations

import re
import secrets
import pytest

from support.mails import make_mail, new_msgid
from support.testbed import created, notifications

from .chain import EXAMPLES, REQUEST_ADDRESS, HostError, LocalUser, delivered, running_as, wait_for

FORM = "web-form@lists.example.org"
ENVELOPE = "request+bounces@example.org"
MACHINE_FOLDER = "machine-mail"  # examples/procmailrc: MACHINE_FOLDER=$HOME/machine-mail/
#: A domain Postfix delivers locally that Redmine takes in an account's address (it wants a dot).
LOCAL_DOMAIN = "localhost.localdomain"


def procmail_escaped(address: str) -> str:
    """As examples/procmailrc writes its addresses: dots escaped, a plus as [+]."""
    return address.replace(".", "\\.").replace("+", "[+]")


def shipped_procmailrc(request: str, relay: str) -> str:
    """examples/procmailrc with its site values set, nothing below them changed."""
    text = (EXAMPLES / "procmailrc").read_text()
    for name, value in (("REQUEST_ADDRESS", request), ("RELAY_ADDRESS", relay)):
        line = f"{name}={procmail_escaped(value)}"
        text, count = re.subn(rf"(?m)^{name}=.*$", line.replace("\\", "\\\\"), text)
        assert count == 1, f"examples/procmailrc has no {name} line"
    return text


def journal_message_id(message) -> int | None:
    """The journal a notification of Redmine's is about (its Message-ID names it)."""
    found = re.match(r"<redmine\.journal-(\d+)\.", message.get("Message-ID", ""))
    return int(found.group(1)) if found else None


def header(message: bytes, name: str) -> str | None:
    found = re.search(rb"(?im)^%s:[ \t]*<?([^>\r\n]*)>?" % name.encode(), message.split(b"\n\n", 1)[0])
    return found.group(1).decode() if found else None


class Conversation:
    """The gateway account, its relay address, and Postfix between them and the requester."""

    def __init__(self, gateway: LocalUser, relay_address: str, postfix, testbed):
        self.gateway, self.relay_address, self.postfix, self.testbed = gateway, relay_address, postfix, testbed

    def send(self, message: bytes, sender: str, recipient: str | None = None) -> str:
        """Hand *message* to the real sendmail for the gateway account (or *recipient*);
        wait until m2r-deliver has seen it and Postfix is done; its log line."""
        msgid = header(message, "Message-ID")
        self.postfix.send(message, recipient or f"{self.gateway.name}@localhost", sender)
        return self.handled(msgid)

    def handled(self, msgid: str) -> str:
        return self._handled(f"msgid={msgid} ", msgid)

    def notification_handled(self, journal: int) -> str:
        """Redmine's notification of *journal* to the relay address, sent by Redmine through
        Postfix and procmail; m2r-deliver's log line about it."""
        return self._handled(f"msgid=redmine.journal-{journal}.", f"Redmine's notification of journal {journal}")

    def saw_notification(self, journal: int) -> bool:
        return f"msgid=redmine.journal-{journal}." in self.gateway.log()

    def _handled(self, needle: str, what: str) -> str:
        try:
            line = wait_for(lambda: next((line for line in self.gateway.log().splitlines()
                                          if needle in line), None)
                            if not self.postfix.queued_for(self.gateway.name) else None,
                            f"Postfix and procmail to hand {what} to m2r-deliver")
        except HostError as exc:
            procmail_log = self.gateway.home / ".procmail.log"
            raise HostError(f"{exc}; m2r-deliver's log: {self.gateway.log()!r}; procmail's: "
                            f"{procmail_log.read_text() if procmail_log.exists() else ''!r}; "
                            f"queued: {self.postfix.queued_for(self.gateway.name)}") from None
        wait_for(lambda: not running_as(self.gateway.name), f"the delivery to {self.gateway.name} to end", 60)
        return line

    def kept(self, msgid: str) -> bool:
        """Whether procmail kept the mail in the machine-mail folder (never handed over)."""
        return any(f"<{msgid}>".encode() in mail for mail in self.gateway.maildir(MACHINE_FOLDER))


@pytest.fixture
def relay_account(testbed, local_user, token):
    """The relay account of this test's gateway: a Reporter in helpdesk with the gateway's
    relay address, notified only of the issues it watches; deleted afterwards."""
    address = f"{local_user.name}+relay@{LOCAL_DOMAIN}"
    user = created(testbed, "/users.json", {"user": {
        "login": f"relay{token}", "firstname": "Mail", "lastname": "Relay", "mail": address,
        "password": secrets.token_urlsafe(16), "mail_notification": "only_my_events"}}, "user")
    try:
        created(testbed, "/projects/helpdesk/memberships.json", {"membership": {
            "user_id": user["id"], "role_ids": [testbed.info["roles"]["Reporter"]]}}, "membership")
        yield {**user, "mail": address}
    finally:
        testbed.api("DELETE", f"/users/{user['id']}.json")


@pytest.fixture
def conversation(local_user, relay_account, postfix, redmine_by_smtp, testbed):
    local_user.put(".procmailrc", shipped_procmailrc(REQUEST_ADDRESS, relay_account["mail"]))
    local_user.install_m2r_deliver("bin")
    local_user.point_at(testbed.url, extra=(
        '[sender]\nrequester_labels = ["Email"]\n\n'
        f'[form]\nsenders = ["{FORM}"]\n\n'
        f'[guard]\ntrusted_senders = ["{FORM}"]\n\n'
        '[outgoing]\nfrom = "Helpdesk <request@example.org>"\n'
        f'envelope_sender = "{ENVELOPE}"\n\n'
        '[acknowledge]\nenabled = true\n\n'
        '[reply]\nreopen_status = "In Progress"\n\n'
        f'[relay]\nenabled = true\nuser = "{relay_account["login"]}"\nstatuses = ["Closed"]\n'))
    yield Conversation(local_user, relay_account["mail"], postfix, testbed)
    postfix.discard_queued_for(local_user.name)


def add_note(testbed, issue_id: int, text: str, *, private: bool = False) -> int:
    """jsmith writes a note over REST; its journal id."""
    response = testbed.api("PUT", f"/issues/{issue_id}.json", key=testbed.info["jsmith_key"],
                           json={"issue": {"notes": text, "private_notes": private}})
    assert response.status_code == 204, (response.status_code, response.text)
    journals = testbed.issue(issue_id, include="journals")["journals"]
    return max(j["id"] for j in journals if j.get("notes") == text)


def close(testbed, issue_id: int) -> int:
    """jsmith closes the issue over REST, without a note; the journal id."""
    closed = testbed.info["statuses"]["Closed"]
    response = testbed.api("PUT", f"/issues/{issue_id}.json", key=testbed.info["jsmith_key"],
                           json={"issue": {"status_id": closed}})
    assert response.status_code == 204, (response.status_code, response.text)
    journals = testbed.issue(issue_id, include="journals")["journals"]
    return max(j["id"] for j in journals if any(d.get("name") == "status_id" and d.get("new_value") == str(closed)
                                                for d in j.get("details", [])))


def test_a_conversation_through_the_mail_system(conversation, requester, relay_account, testbed, token):
    address = f"{requester.name}@{LOCAL_DOMAIN}"  # a form field holds a dotted domain
    form_id = f"form.{token}@lists.example.org"
    form = make_mail(f"Printer jammed {token}", f"Name: Hanako Yamada\nEmail: {address}\n\nThe printer on floor 3 "
                     "is jammed.", sender=f"Web form <{FORM}>", to=REQUEST_ADDRESS, msgid=form_id,
                     headers={"Auto-Submitted": "auto-generated", "List-Id": "<request.lists.example.org>"})

    # the request: an issue the relay account watches, and one acknowledgement
    line = conversation.send(form, FORM)
    [issue] = testbed.issues_with_subject(token)
    assert f" decision=filed issue=#{issue['id']} " in line and f" ack=acknowledged to={address} " in line, line
    watchers = testbed.issue(issue["id"], include="watchers")["watchers"]
    assert [w["id"] for w in watchers] == [relay_account["id"]]
    ack_id = line.split(" ack_msgid=<", 1)[1].split(">", 1)[0]
    [ack] = delivered(requester, ack_id)
    assert ack.header("auto-submitted") == "auto-replied" and ack.in_reply_to == (form_id,)

    # staff answer: a private note, then a public one
    private = add_note(testbed, issue["id"], f"Internal: the toner supplier is late {token}", private=True)
    public = add_note(testbed, issue["id"], f"A technician is on the way {token}.")
    # Redmine mails both by SMTP: the private note to dlopes (a Developer, notified of all),
    # through Postfix to the test bed's catch-all; the public one to the relay address too,
    # through Postfix and the gateway's procmail to m2r-deliver, which relays it
    wait_for(lambda: any(journal_message_id(m) == private for m in notifications(testbed, "dlopes@example.net")),
             f"Redmine's notification of the private note {private}")
    relayed = conversation.notification_handled(public)
    assert all(f" {field} " in relayed for field in ("decision=relayed", f"issue=#{issue['id']}",
                                                     f"journal={public}", f"to={address}")), relayed
    assert not conversation.saw_notification(private)  # a Reporter is not sent private notes
    note_id = relayed.split(" relay_msgid=<", 1)[1].split(">", 1)[0]
    mails = delivered(requester, note_id)
    assert [m.message_id for m in mails][0] == ack_id and len(mails) == 2, [m.message_id for m in mails]
    note = mails[1]
    assert note.message_id.startswith(f"m2r.note-{issue['id']}-{public}."), note.message_id
    assert f"A technician is on the way {token}." in note.body
    assert not any("toner supplier" in m.body for m in mails)
    assert note.envelope_sender == ENVELOPE

    # the requester answers the relayed note: a note on the same issue
    reply_id = new_msgid("reply")
    reply = make_mail(f"Re: {note.subject}", "Thank you, I will be at my desk.", sender=f"Hanako Yamada <{address}>",
                      to=REQUEST_ADDRESS, msgid=reply_id, headers={"In-Reply-To": f"<{note.message_id}>"})
    noted = conversation.send(reply, address)
    assert f" decision=filed issue=#{issue['id']} action=note " in noted, noted
    journals = testbed.issue(issue["id"], include="journals")["journals"]
    [reply_journal] = [j["id"] for j in journals if "I will be at my desk" in (j.get("notes") or "")]
    assert len(testbed.issues_with_subject(token)) == 1
    # Redmine tells the relay account of that note too; it goes back to nobody
    echoed = conversation.notification_handled(reply_journal)
    assert " decision=relayed " not in echoed and " decision=dropped " in echoed, echoed

    # the requester's vacation auto-reply to the relayed note: kept by the recipe, never filed or answered
    vacation_id = new_msgid("away")
    vacation = make_mail(f"Auto: {note.subject}", "I am away until Monday.", sender=address, to=REQUEST_ADDRESS,
                         msgid=vacation_id, headers={"Auto-Submitted": "auto-replied",
                                                     "In-Reply-To": f"<{note.message_id}>"})
    conversation.postfix.send(vacation, f"{conversation.gateway.name}@localhost", address)
    wait_for(lambda: conversation.kept(vacation_id), f"procmail to keep {vacation_id} in {MACHINE_FOLDER}")
    assert f"msgid={vacation_id} " not in conversation.gateway.log()
    assert testbed.issue(issue["id"], include="journals")["journals"] == journals

    # every mail the gateway sent is in its log: one acknowledgement, one relayed note, and
    # Postfix holds nothing more for the requester; the private note never reached the gateway
    log = conversation.gateway.log()
    assert not conversation.saw_notification(private), log
    assert log.count(" ack=acknowledged ") == 1 and log.count(" decision=relayed ") == 1, log
    assert conversation.postfix.queued_for(requester.name) == []
    assert [m.message_id for m in delivered(requester, ack_id)] == [ack_id, note.message_id]

    # staff close the issue: the requester gets the short status mail ([relay] statuses)
    closing = close(testbed, issue["id"])
    status_line = conversation.notification_handled(closing)
    assert f" decision=relayed issue=#{issue['id']} " in status_line and f" journal={closing} " in status_line
    status_id = status_line.split(" relay_msgid=<", 1)[1].split(">", 1)[0]
    assert status_id.startswith(f"m2r.status-{issue['id']}-{closing}.")
    assert [m.message_id for m in delivered(requester, status_id)][-1] == status_id

    # the requester writes again: the issue, closed minutes ago, is reopened with their note
    again = make_mail(f"Re: {note.subject}", "It jammed again this morning.", sender=f"Hanako Yamada <{address}>",
                      to=REQUEST_ADDRESS, msgid=new_msgid("again"), headers={"In-Reply-To": f"<{note.message_id}>"})
    reopened = conversation.send(again, address)
    assert f" decision=filed issue=#{issue['id']} action=note " in reopened and ' reopened="In Progress" ' in reopened
    after = testbed.issue(issue["id"], include="journals")
    assert after["status"]["name"] == "In Progress" and len(testbed.issues_with_subject(token)) == 1
    assert "It jammed again this morning." in after["journals"][-1]["notes"]
    # Redmine's notification of that note goes back to nobody: the requester's own words
    echoed = conversation.notification_handled(after["journals"][-1]["id"])
    assert " decision=relayed " not in echoed, echoed
