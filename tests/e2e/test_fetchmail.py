"""examples/fetchmailrc as an ordinary user's ~/.fetchmailrc, with only its site values
(servers, users, passwords) filled in, polling a real dovecot over TLS on loopback.
fetchmail runs with cron's PATH and m2r-deliver in ~/.local/bin, as pipx installs it: the
example's mda line must find it by itself."""

import re

import pytest

from support.mails import make_mail

from .chain import EXAMPLES, REDMINE_DOWN, HostError, redmine_notification

#: After a delivery: POP3 deletes the message ("no keep"); IMAP keeps it, seen ("keep").
LEFT_ON_SERVER = {"pop3": 0, "imap": 1}


def site_fetchmailrc(server: str, accounts: dict) -> str:
    """examples/fetchmailrc with this test's server, users and passwords in place of the
    site values it ships with; everything else stays as shipped."""
    text = (EXAMPLES / "fetchmailrc").read_text()
    site_values = {
        "poll pop.example.org ": f"poll {server} ",
        "poll imap.example.org ": f"poll {server} ",
        'user "request" password "pop-password-here"':
            f'user "{accounts["pop3"].name}" password "{accounts["pop3"].password}"',
        'user "request" password "imap-password-here"':
            f'user "{accounts["imap"].name}" password "{accounts["imap"].password}"',
    }
    for shipped, ours in site_values.items():
        assert text.count(shipped) == 1, f"examples/fetchmailrc no longer says {shipped!r} once: update this test"
        text = text.replace(shipped, ours)
    return text


class Fetching:
    """One user's fetchmail and the two server accounts it polls."""

    def __init__(self, user, dovecot, accounts):
        self.user, self.dovecot, self.accounts = user, dovecot, accounts

    def poll(self):
        """One poll of every account, as the daemon does every 5 minutes."""
        result = self.user.run(["fetchmail", "--daemon", "0", "--nosyslog"],
                               env={"SSL_CERT_FILE": str(self.dovecot.cert)})
        # 0: mail was handed over; 1: there was none. Anything else is a broken poll.
        if result.returncode not in (0, 1) or b"Query status=" in result.stdout + result.stderr:
            raise HostError(f"fetchmail's poll failed: {result}")
        return result

    def arrives(self, protocol: str, mail: bytes) -> None:
        self.dovecot.receive(self.accounts[protocol], mail)

    def on_server(self, protocol: str) -> tuple[int, int]:
        """(messages on the server, of which unseen)."""
        return self.dovecot.inbox(self.accounts[protocol])


@pytest.fixture
def fetching(local_user, dovecot, testbed):
    accounts = {"pop3": dovecot.account(), "imap": dovecot.account()}
    local_user.put(".fetchmailrc", site_fetchmailrc(dovecot.HOST, accounts), mode=0o600)
    local_user.install_m2r_deliver(".local/bin")
    local_user.point_at(testbed.url)
    return Fetching(local_user, dovecot, accounts)


def filed(testbed, token) -> list[str]:
    return [issue["subject"] for issue in testbed.issues_with_subject(token)]


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_a_request_on_the_server_is_filed_and_then_gone_or_seen(fetching, testbed, token, protocol):
    fetching.arrives(protocol, make_mail(f"Printer jammed {token}"))
    fetching.poll()
    assert filed(testbed, token) == [f"Printer jammed {token}"], fetching.user.log()
    assert fetching.on_server(protocol) == (LEFT_ON_SERVER[protocol], 0)
    fetching.poll()
    assert filed(testbed, token) == [f"Printer jammed {token}"]


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_redmine_down_the_request_stays_on_the_server_and_the_next_poll_files_it_once(
        fetching, testbed, token, protocol):
    fetching.user.point_at(REDMINE_DOWN)
    fetching.arrives(protocol, make_mail(f"VPN down {token}"))
    fetching.poll()
    assert "decision=tempfail" in fetching.user.log()
    assert filed(testbed, token) == []
    assert fetching.on_server(protocol) == (1, 1)

    fetching.user.point_at(testbed.url)
    fetching.poll()
    assert filed(testbed, token) == [f"VPN down {token}"], fetching.user.log()
    assert fetching.on_server(protocol) == (LEFT_ON_SERVER[protocol], 0)
    fetching.poll()
    assert filed(testbed, token) == [f"VPN down {token}"]


def test_the_whole_loop_redmines_notification_fetched_back_files_nothing(fetching, testbed, token):
    fetching.arrives("pop3", make_mail(f"Disk full on db01 {token}"))
    fetching.poll()
    [issue] = testbed.issues_with_subject(token)
    fetching.arrives("pop3", redmine_notification(testbed.info["mail_dir"], issue["id"]))
    fetching.poll()
    assert filed(testbed, token) == [f"Disk full on db01 {token}"], fetching.user.log()
    assert testbed.issue(issue["id"], include="journals")["journals"] == []
    assert fetching.on_server("pop3") == (0, 0)  # handled, not left to be fetched forever


def test_a_request_fetched_again_is_filed_once(fetching, testbed, token):
    """fetchmail died after m2r-deliver filed the mail but before the server marked it
    seen: the next poll hands the same mail over again."""
    fetching.arrives("imap", make_mail(f"Badge reader broken {token}"))
    assert fetching.poll().returncode == 0, "the first poll handed the mail over"
    fetching.dovecot.forget_seen(fetching.accounts["imap"])
    assert fetching.on_server("imap") == (1, 1)
    assert fetching.poll().returncode == 0, "the second poll handed the same mail over again"
    assert filed(testbed, token) == [f"Badge reader broken {token}"]
    decisions = re.findall(r"decision=(\S+)", fetching.user.log())
    assert decisions == ["filed", "duplicate"], fetching.user.log()
    assert fetching.on_server("imap") == (1, 0)
