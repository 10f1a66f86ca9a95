"""examples/procmailrc, unmodified, as an ordinary user's ~/.procmailrc, with procmail run
the way an MTA or fetchmail runs it: one mail on stdin, a minimal environment, and
m2r-deliver in ~/bin."""

import pytest

from m2r_deliver.config import SCHEMA
from support.mails import make_mail

from .chain import REDMINE_DOWN, REQUEST_ADDRESS, message_ids, redmine_notification

MACHINE_FOLDER = "machine-mail"  # examples/procmailrc: MACHINE_FOLDER=$HOME/machine-mail/


@pytest.fixture
def user(local_user, testbed):
    local_user.put_example("procmailrc", ".procmailrc")
    local_user.install_m2r_deliver("bin")
    local_user.point_at(testbed.url)
    return local_user


def procmail(user, mail: bytes):
    return user.run(["procmail"], mail)


def filed(testbed, token) -> list[str]:
    return [issue["subject"] for issue in testbed.issues_with_subject(token)]


def test_a_request_is_filed(user, testbed, token):
    result = procmail(user, make_mail(f"Printer jammed {token}"))
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), user.log()
    assert filed(testbed, token) == [f"Printer jammed {token}"]
    assert user.mailbox() == b"" and user.maildir(MACHINE_FOLDER) == []


def test_redmine_down_procmail_exits_75_and_the_mail_is_in_no_mailbox(user, testbed, token):
    mail = make_mail(f"VPN down {token}")
    user.point_at(REDMINE_DOWN)
    result = procmail(user, mail)
    assert result.returncode == 75, (result, user.log())
    assert (result.stdout, result.stderr) == (b"", b"")
    assert user.mailbox() == b"" and user.maildir(MACHINE_FOLDER) == []
    assert "decision=tempfail" in user.log() and "fault=redmine" in user.log()
    assert filed(testbed, token) == []

    user.point_at(testbed.url)  # Redmine is back; the MTA or fetchmail hands the mail over again
    assert procmail(user, mail).returncode == 0
    assert filed(testbed, token) == [f"VPN down {token}"]
    assert user.mailbox() == b""


def test_the_web_forms_mail_goes_to_redmine(user, testbed, token):
    """The form posts to the request list with "Auto-Submitted: auto-generated", from the
    list's own address: it must not be taken for machine mail."""
    if "guard" in SCHEMA:  # once the loop guards exist, the site trusts its form
        user.point_at(testbed.url, extra=f'[guard]\ntrusted_senders = ["{REQUEST_ADDRESS}"]\n')
    form = make_mail(f"【依頼】VPN 接続できない {token}", "依頼者メール: taro@example.org\n対象: vpn-gw01\n",
                     sender=f"Confluence <{REQUEST_ADDRESS}>", charset="iso-2022-jp",
                     headers={"Auto-Submitted": "auto-generated", "Precedence": "list",
                              "List-Id": "<request.example.org>"})
    assert procmail(user, form).returncode == 0, user.log()
    assert filed(testbed, token) == [f"【依頼】VPN 接続できない {token}"]
    assert user.maildir(MACHINE_FOLDER) == []


@pytest.mark.parametrize("envelope_header", ["X-Original-To", "Delivered-To"])
def test_a_request_that_names_the_address_only_in_the_envelope_is_filed(user, testbed, token, envelope_header):
    """Sent by Bcc (or through an alias): To and Cc name others; only the header the MTA
    adds for the envelope recipient names the request address."""
    mail = make_mail(f"Projector broken {token}", to="team@example.net",
                     headers={envelope_header: REQUEST_ADDRESS})
    result = procmail(user, mail)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), user.log()
    assert filed(testbed, token) == [f"Projector broken {token}"]
    assert user.mailbox() == b""


def test_the_users_other_mail_goes_to_the_mailbox_untouched(user, testbed, token):
    mail = make_mail(f"Lunch on Friday? {token}", to=f"{user.name}@localhost")
    assert procmail(user, mail).returncode == 0
    assert f"Lunch on Friday? {token}".encode() in user.mailbox()
    assert user.log() == ""  # m2r-deliver never ran
    assert filed(testbed, token) == []


@pytest.mark.parametrize("kind, sender, headers, envelope", [
    ("bounce from the null sender", "Mail Delivery Subsystem <mail@mx.example.net>", {}, "MAILER-DAEMON"),
    ("bounce from MAILER-DAEMON", "Mail Delivery System <MAILER-DAEMON@mx.example.net>", {}, None),
    ("bounce from postmaster", "postmaster@mx.example.net", {}, None),
    ("auto-reply", "Hanako Suzuki <hanako@example.net>", {"Auto-Submitted": "auto-replied (vacation)"}, None),
    ("old-style vacation reply", "Hanako Suzuki <hanako@example.net>", {"X-Autoreply": "yes"}, None),
])
def test_machine_mail_to_the_request_address_is_kept_in_the_folder(user, testbed, token, kind, sender, headers,
                                                                   envelope):
    mail = make_mail(f"Re: Printer jammed {token}", f"{kind}\n", sender=sender, headers=headers, mbox_from=envelope)
    assert procmail(user, mail).returncode == 0
    assert [m for m in user.maildir(MACHINE_FOLDER) if token.encode() in m], kind
    assert user.log() == "" and user.mailbox() == b""
    assert filed(testbed, token) == []


def test_redmines_real_notification_is_filed_nowhere_and_kept(user, testbed, token):
    """The whole loop through procmail: the notification Redmine sends about the issue
    the chain just filed comes back to the same user and is only kept."""
    assert procmail(user, make_mail(f"Disk full on db01 {token}")).returncode == 0
    [issue] = testbed.issues_with_subject(token)
    notification = redmine_notification(testbed.info["mail_dir"], issue["id"])

    result = procmail(user, notification)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert message_ids(user.maildir(MACHINE_FOLDER)) == message_ids([notification])
    assert user.mailbox() == b""
    assert filed(testbed, token) == [f"Disk full on db01 {token}"]
    assert testbed.issue(issue["id"], include="journals")["journals"] == []
    assert len(user.log().splitlines()) == 1  # m2r-deliver saw the request only


def test_the_same_request_delivered_twice_is_filed_once(user, testbed, token):
    mail = make_mail(f"Badge reader broken {token}")
    assert procmail(user, mail).returncode == 0
    assert procmail(user, mail).returncode == 0
    assert filed(testbed, token) == [f"Badge reader broken {token}"]
    assert user.mailbox() == b""


#: The relay address examples/procmailrc ships with (RELAY_ADDRESS=request[+]relay@example\.org).
RELAY_ADDRESS = "request+relay@example.org"


def test_redmines_notification_to_the_relay_address_goes_to_m2r_deliver(user, testbed, token):
    """Delivered to the relay account's address (Delivered-To), Redmine's notification is
    m2r-deliver's to read (here, without [relay], it drops it); anything else to that
    address is not, and neither is a notification to another address."""
    assert procmail(user, make_mail(f"Disk full on db01 {token}")).returncode == 0
    [issue] = testbed.issues_with_subject(token)
    notification = redmine_notification(testbed.info["mail_dir"], issue["id"])

    for relay_address in (RELAY_ADDRESS, "Request+Relay@example.org"):
        result = procmail(user, f"Delivered-To: {relay_address}\n".encode() + notification)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
        assert f"msgid={message_ids([notification])[0]} " in user.log().splitlines()[-1], user.log()
    assert " decision=dropped guard=redmine_own " in user.log().splitlines()[1], user.log()
    assert len(user.log().splitlines()) == 3 and user.maildir(MACHINE_FOLDER) == []

    for not_relay in ("request+relayed@example.org", "requestxrelay@example.org"):
        assert procmail(user, f"Delivered-To: {not_relay}\n".encode() + notification).returncode == 0
    assert len(user.maildir(MACHINE_FOLDER)) == 2

    stranger = make_mail(f"Hello {token}", to=f"{user.name}@localhost", headers={"Delivered-To": RELAY_ADDRESS})
    assert procmail(user, stranger).returncode == 0
    assert f"Hello {token}".encode() in user.mailbox()
    assert len(user.log().splitlines()) == 3 and filed(testbed, token) == [f"Disk full on db01 {token}"]
