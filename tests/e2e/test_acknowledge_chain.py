"""The acknowledgement end to end: m2r-deliver run as an ordinary gateway account against
the test-bed Redmine, handing its acknowledgement to the system Postfix's
``/usr/sbin/sendmail``, which delivers it to a throwaway local requester account whose
mailbox the test reads. Then the requester's side: the same mail delivered again, the
requester's vacation auto-reply, and a reply that carries only the acknowledgement's
Message-ID.

Runs under the machine-wide lock, like every mail-chain test:
``flock /tmp/m2r-testbed.lock env M2R_REQUIRE_REDMINE=1 .venv/bin/python -m pytest -q
tests/e2e/test_acknowledge_chain.py``
"""

from __future__ import annotations

import pytest

from support.mails import make_mail

from .chain import LocalUser, delivered, program_for_users

FORM = "web-form@lists.example.org"
ENVELOPE = "request+bounces@example.org"


@pytest.fixture
def gateway(local_user, postfix, testbed):
    local_user.point_at(testbed.url, extra=(
        '[sender]\nrequester_labels = ["Email"]\n\n'
        f'[form]\nsenders = ["{FORM}"]\n\n'
        f'[guard]\ntrusted_senders = ["{FORM}"]\n\n'
        '[outgoing]\nfrom = "Helpdesk <request@example.org>"\n'
        f'envelope_sender = "{ENVELOPE}"\n\n'
        '[acknowledge]\nenabled = true\n'))
    yield local_user
    postfix.discard_queued_for(local_user.name)


def deliver(gateway: LocalUser, mail: bytes) -> str:
    """The mail delivered as the mail system would: silent, exit 0; its log line."""
    proc = gateway.run([program_for_users()], stdin=mail)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b""), gateway.log()
    return gateway.log().splitlines()[-1]


def test_a_form_request_is_acknowledged_once_and_the_requesters_reply_becomes_a_note(
        gateway, requester, postfix, testbed, token):
    address = f"{requester.name}@localhost.localdomain"  # a form field holds a dotted domain
    form_id = f"form.{token}@lists.example.org"
    form = make_mail(f"Printer jammed {token}", f"Name: Hanako Yamada\nEmail: {address}\n\nThe printer on floor 3 "
                     "is jammed.", sender=f"Web form <{FORM}>", msgid=form_id,
                     headers={"Auto-Submitted": "auto-generated", "List-Id": "<request.lists.example.org>"})

    line = deliver(gateway, form)
    [issue] = testbed.issues_with_subject(token)
    assert f" decision=filed issue=#{issue['id']} " in line and f" ack=acknowledged to={address} " in line, line
    project = testbed.get("/projects/helpdesk.json")["project"]["name"]
    ack_id = line.split(" ack_msgid=<", 1)[1].split(">", 1)[0]
    [ack] = delivered(requester, ack_id)
    assert ack.subject == f"[{project} - Support #{issue['id']}] Printer jammed {token}"
    assert ack.header("auto-submitted") == "auto-replied"
    assert ack.in_reply_to == (form_id,)
    assert ack.envelope_sender == ENVELOPE
    assert f"#{issue['id']}" in ack.body

    again = deliver(gateway, form)
    assert f" decision=duplicate issue=#{issue['id']} " in again and " ack=" not in again, again
    assert len(testbed.issues_with_subject(token)) == 1

    vacation = make_mail(f"Auto: {ack.subject}", "I am away until Monday.", sender=address,
                         headers={"Auto-Submitted": "auto-replied", "In-Reply-To": f"<{ack_id}>"})
    away = deliver(gateway, vacation)
    assert " decision=dropped " in away and " ack=" not in away, away
    assert testbed.issue(issue["id"], include="journals")["journals"] == []

    reply = make_mail("Re: thanks", "It works again, thank you.", sender=f"Hanako Yamada <{address}>",
                      headers={"In-Reply-To": f"<{ack_id}>"})
    noted = deliver(gateway, reply)
    assert f" decision=filed issue=#{issue['id']} action=note " in noted and " ack=" not in noted, noted
    journals = testbed.issue(issue["id"], include="journals")["journals"]
    assert [j["notes"] for j in journals if "It works again" in (j.get("notes") or "")], journals
    assert len(testbed.issues_with_subject(token)) == 1

    # every hand-over the gateway made is in its log: one acknowledgement, and Postfix
    # holds nothing more for the requester
    assert gateway.log().count(" ack=acknowledged ") == 1
    assert postfix.queued_for(requester.name) == []
    assert [mail.message_id for mail in delivered(requester, ack_id)] == [ack_id]
