"""A bounce of our own acknowledgement, end to end through the system Postfix: the gateway
account (examples/procmailrc, with this account's addresses as its site values) files a
request from an address that has no mailbox; its acknowledgement goes to
``/usr/sbin/sendmail`` with the account's ``+bounces`` address as envelope sender; Postfix
cannot deliver it and sends its own bounce there; procmail hands that to m2r-deliver, which
adds one private note to the issue.

Runs under the machine-wide lock, like every mail-chain test:
``flock /tmp/m2r-testbed.lock env M2R_REQUIRE_REDMINE=1 .venv/bin/python -m pytest -q
tests/e2e/test_own_bounce_chain.py``
"""

from __future__ import annotations

import re

import pytest

from support.mails import make_mail

from .chain import EXAMPLES, HostError, program_for_users, wait_for

DOMAIN = "localhost.localdomain"


@pytest.fixture
def gateway(local_user, postfix, testbed):
    name = local_user.name
    rc = (EXAMPLES / "procmailrc").read_text()
    site_values = {"REQUEST_ADDRESS": rf"{name}@localhost\.localdomain",
                   "BOUNCE_ADDRESS": rf"{name}[+]bounces@localhost\.localdomain"}
    for variable, value in site_values.items():
        line = f"{variable}={value}"
        rc, replaced = re.subn(rf"(?m)^{variable}=.*$", lambda _, line=line: line, rc)
        assert replaced == 1, f"examples/procmailrc sets {variable} once"
    local_user.put(".procmailrc", rc)
    local_user.install_m2r_deliver("bin")
    local_user.point_at(testbed.url, extra=(
        f'[outgoing]\nfrom = "Helpdesk <{name}@{DOMAIN}>"\nenvelope_sender = "{name}+bounces@{DOMAIN}"\n\n'
        '[acknowledge]\nenabled = true\n'))
    yield local_user
    postfix.discard_queued_for(local_user.name)


def test_postfixs_bounce_of_an_acknowledgement_becomes_one_private_note(gateway, postfix, testbed, token):
    nobody = f"m2r-nobody-{token[:8]}@{DOMAIN}"  # no such account: Postfix's local(8) bounces
    request = make_mail(f"Printer jammed {token}", "The printer on floor 3 is jammed.",
                        sender=f"Nobody Here <{nobody}>", to=f"{gateway.name}@{DOMAIN}")
    proc = gateway.run([program_for_users()], stdin=request)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b""), gateway.log()
    [issue] = testbed.issues_with_subject(token)
    assert f" ack=acknowledged to={nobody} " in gateway.log(), gateway.log()

    def noted() -> list[str] | None:
        lines = gateway.log().splitlines()
        return lines if len(lines) >= 2 and not postfix.queued_for(gateway.name) else None

    try:
        filed, bounced = wait_for(noted, "Postfix's bounce to reach m2r-deliver")[:2]
    except HostError as exc:
        procmail_log = gateway.home / ".procmail.log"
        raise HostError(f"{exc}; m2r-deliver's log: {gateway.log()!r}; procmail's: "
                        f"{procmail_log.read_text() if procmail_log.exists() else None!r}; "
                        f"queue: {postfix.queued_for(gateway.name)}; mailbox: {gateway.mailbox()[:2000]!r}") from None
    assert f" decision=filed issue=#{issue['id']} action=bounce_note " in bounced, bounced
    assert " ack=" not in bounced
    notes = [j for j in testbed.issue(issue["id"], include="journals")["journals"] if j.get("notes")]
    [note] = notes
    assert note["private_notes"] is True
    first, second = note["notes"].replace("\r\n", "\n").split("\n")
    assert first == "Our acknowledgement for this issue came back undelivered."
    assert second.startswith(f"Mail to {nobody} could not be delivered: ") and "unknown user" in second, second
    assert len(testbed.issues_with_subject(token)) == 1
    assert gateway.mailbox() == b"" and gateway.maildir("machine-mail") == []
    assert len(gateway.log().splitlines()) == 2  # one request, one bounce: nothing answered the bounce
