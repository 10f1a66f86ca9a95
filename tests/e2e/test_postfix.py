"""examples/dot-forward, unmodified, as an ordinary user's ~/.forward, with the system's
Postfix (local delivery only, loopback-only, no relay) delivering mail sent with sendmail.
m2r-deliver is in ~/.local/bin, which is not on the PATH Postfix gives a .forward pipe:
the example's line must find it by itself."""

import time
from pathlib import Path

import pytest

from support.mails import make_mail, new_msgid

from .chain import REDMINE_DOWN, HostError, message_ids, redmine_notification, wait_for

SENDER = "taro@example.org"


class Forwarding:
    """One user's mail through Postfix and their ~/.forward."""

    def __init__(self, user, postfix):
        self.user, self.postfix = user, postfix

    def send(self, mail: bytes, sender: str = SENDER) -> None:
        self.postfix.send(mail, self.user.name, sender)

    def queued(self) -> list[dict]:
        return self.postfix.queued_for(self.user.name)

    def handed_over(self, msgid: str, times: int = 1, timeout: float = 120) -> None:
        """Wait until m2r-deliver has seen the mail *times* times and Postfix is done with it."""
        wait_for(lambda: self.user.log().count(f"msgid={msgid} ") >= times and not self.queued(),
                 f"Postfix to deliver {msgid} to m2r-deliver (log: {self.user.log()!r})", timeout)

    def flushed(self, msgid: str, times: int) -> None:
        """``postqueue -f``, repeated every few seconds until Postfix hands the mail over:
        a flush right after a deferral is now and then not acted on at once."""
        deadline = time.monotonic() + 120
        while True:
            self.postfix.flush()
            try:
                return self.handed_over(msgid, times, timeout=5)
            except HostError:
                if time.monotonic() > deadline:
                    raise

    def deferred(self) -> list[dict]:
        return wait_for(lambda: [e for e in self.queued() if e["queue_name"] == "deferred"],
                        f"Postfix to defer the mail (queue: {self.queued()})")


@pytest.fixture
def forwarding(local_user, postfix, testbed):
    local_user.put_example("dot-forward", ".forward")
    local_user.install_m2r_deliver(".local/bin")
    local_user.point_at(testbed.url)
    yield Forwarding(local_user, postfix)
    postfix.discard_queued_for(local_user.name)


def filed(testbed, token) -> list[str]:
    return [issue["subject"] for issue in testbed.issues_with_subject(token)]


def test_a_request_sent_with_sendmail_is_filed(forwarding, testbed, token):
    msgid = new_msgid()
    forwarding.send(make_mail(f"Printer jammed {token}", msgid=msgid))
    forwarding.handed_over(msgid)
    assert filed(testbed, token) == [f"Printer jammed {token}"], forwarding.user.log()
    assert forwarding.user.mailbox() == b""


def test_redmine_down_postfix_defers_and_a_flush_files_it_once(forwarding, testbed, token):
    forwarding.user.point_at(REDMINE_DOWN)
    msgid = new_msgid()
    forwarding.send(make_mail(f"VPN down {token}", msgid=msgid))
    [entry] = forwarding.deferred()  # in the queue, not bounced
    assert [r["delay_reason"] for r in entry["recipients"]] == ["temporary failure"]
    assert "decision=tempfail" in forwarding.user.log()
    assert filed(testbed, token) == [] and forwarding.user.mailbox() == b""

    forwarding.user.point_at(testbed.url)
    forwarding.flushed(msgid, times=2)
    assert filed(testbed, token) == [f"VPN down {token}"], forwarding.user.log()
    assert forwarding.user.mailbox() == b""


def test_without_m2r_deliver_installed_postfix_defers_rather_than_bounces(forwarding, testbed, token):
    """The "|| exit 75" of the line: a shell that cannot find the program exits 127, which
    Postfix would bounce."""
    for system_copy in (Path("/usr/local/bin/m2r-deliver"), Path("/usr/bin/m2r-deliver")):
        if system_copy.exists():
            pytest.skip(f"{system_copy} exists on this machine (the Debian package?): the .forward line would find it")
    link = forwarding.user.home / ".local/bin/m2r-deliver"
    link.unlink()
    msgid = new_msgid()
    forwarding.send(make_mail(f"Mail server full {token}", msgid=msgid))
    [entry] = forwarding.deferred()
    assert [r["delay_reason"] for r in entry["recipients"]] == ["temporary failure"]
    assert forwarding.user.log() == ""

    forwarding.user.install_m2r_deliver(".local/bin")
    forwarding.flushed(msgid, times=1)
    assert filed(testbed, token) == [f"Mail server full {token}"]


def test_the_whole_loop_redmines_notification_sent_back_files_nothing(forwarding, testbed, token):
    msgid = new_msgid()
    forwarding.send(make_mail(f"Disk full on db01 {token}", msgid=msgid))
    forwarding.handed_over(msgid)
    [issue] = testbed.issues_with_subject(token)
    notification = redmine_notification(testbed.info["mail_dir"], issue["id"])
    forwarding.send(notification, sender="redmine@redmine.test")
    [notification_id] = message_ids([notification])
    forwarding.handed_over(notification_id)
    assert filed(testbed, token) == [f"Disk full on db01 {token}"], forwarding.user.log()
    assert testbed.issue(issue["id"], include="journals")["journals"] == []
    assert forwarding.user.mailbox() == b""


def test_the_same_request_delivered_twice_is_filed_once(forwarding, testbed, token):
    """Postfix's local(8) may deliver to a command more than once; a list may too."""
    msgid = new_msgid()
    mail = make_mail(f"Badge reader broken {token}", msgid=msgid)
    forwarding.send(mail)
    forwarding.send(mail)
    forwarding.handed_over(msgid, times=2)
    assert filed(testbed, token) == [f"Badge reader broken {token}"]
