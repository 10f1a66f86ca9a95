"""Handing mail to the mail system, and every way it fails, classified: the sendmail
program (stand-in scripts for the faults; the real Postfix one is in
tests/e2e/test_outgoing_postfix.py) and SMTP (a loopback fake for the faults)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from fakesmtp import FakeSMTP
from support.testbed import wait_for
from m2r_deliver.errors import ConfigError, MailSystemRefused, MailSystemUnavailable, exit_status
from m2r_deliver.outgoing.destinations import SMTP, Sendmail, for_settings, read_secret, split_host_port
from m2r_deliver.config.outgoing import OutgoingSettings

MESSAGE = b"From: Helpdesk <request@example.org>\nTo: taro@example.org\nSubject: hello\n\nbody\n.\nmore\n"


def stand_in(tmp_path: Path, body: str, name: str = "sendmail") -> Path:
    """A sendmail stand-in: a script that records its arguments and stdin, then does *body*."""
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/argv\ncat > {tmp_path}/stdin\n{body}\n")
    script.chmod(0o755)
    return script


# --- sendmail ------------------------------------------------------------------------------

def test_sendmail_gets_recipients_on_the_command_line_and_the_message_on_stdin(tmp_path):
    program = stand_in(tmp_path, "exit 0")
    Sendmail(str(program)).send(MESSAGE, "request+bounces@example.org", ["taro@example.org", "hanako@example.org"])
    assert (tmp_path / "argv").read_text().split("\n")[:-1] == [
        "-i", "-f", "request+bounces@example.org", "--", "taro@example.org", "hanako@example.org"]
    assert (tmp_path / "stdin").read_bytes() == MESSAGE


def test_sendmail_never_reads_recipients_from_headers():
    argv = Sendmail("/usr/sbin/sendmail").command(None, ["taro@example.org"])
    assert "-t" not in argv and argv == ["/usr/sbin/sendmail", "-i", "--", "taro@example.org"]


@pytest.mark.parametrize("status, error", [
    (75, MailSystemUnavailable),  # EX_TEMPFAIL
    (1, MailSystemUnavailable),  # an unexplained failure is retried, never lost
    (71, MailSystemUnavailable),
    (78, ConfigError),  # EX_CONFIG
    (64, ConfigError),  # EX_USAGE: the program does not take sendmail's options
    (67, MailSystemRefused),  # EX_NOUSER
])
def test_sendmail_exit_statuses_are_classified(tmp_path, status, error):
    program = stand_in(tmp_path, f"echo 'postdrop: warning: trouble' >&2\nexit {status}")
    with pytest.raises(error) as raised:
        Sendmail(str(program)).send(MESSAGE, None, ["taro@example.org"])
    assert f"exited {status}" in raised.value.reason and "postdrop: warning: trouble" in raised.value.reason


def test_a_temporary_failure_to_hand_over_keeps_the_mail(tmp_path):
    program = stand_in(tmp_path, "exit 75")
    with pytest.raises(MailSystemUnavailable) as raised:
        Sendmail(str(program)).send(MESSAGE, None, ["taro@example.org"])
    assert raised.value.temporary and exit_status(raised.value) == 75


def test_sendmail_output_is_captured_never_printed(tmp_path, capfd):
    program = stand_in(tmp_path, "echo chatter; echo more chatter >&2; exit 0")
    Sendmail(str(program)).send(MESSAGE, None, ["taro@example.org"])
    assert capfd.readouterr() == ("", "")


def test_sendmail_missing_or_not_executable_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Sendmail(str(tmp_path / "nowhere")).send(MESSAGE, None, ["taro@example.org"])
    with pytest.raises(ConfigError, match="does not exist"):
        Sendmail(str(tmp_path / "nowhere")).probe()
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\nexit 0\n")
    plain.chmod(0o644)
    if os.geteuid() != 0:  # root may run anything with an x bit; this file has none
        with pytest.raises(ConfigError, match="cannot be run"):
            Sendmail(str(plain)).send(MESSAGE, None, ["taro@example.org"])
    with pytest.raises(ConfigError, match="not executable"):
        Sendmail(str(plain)).probe()


def test_sendmail_that_hangs_is_stopped_with_what_it_started_and_retried_later(tmp_path):
    """The hanging child holds the output pipes open: only stopping it too ends the wait."""
    program = stand_in(tmp_path, f"sleep 300 & echo $! > {tmp_path}/child\nwait")
    with pytest.raises(MailSystemUnavailable, match="did not finish within 0.5 s"):
        Sendmail(str(program), timeout=0.5).send(MESSAGE, None, ["taro@example.org"])
    child = Path(f"/proc/{int((tmp_path / 'child').read_text())}/stat")
    wait_for(lambda: _ended(child), "the stand-in's child to end (it closed the pipes while being killed)", 30)


def _ended(stat_file: Path) -> bool:
    """Gone, or a zombie not yet collected by whoever inherited it."""
    try:
        return stat_file.read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_sendmail_killed_by_a_signal_is_temporary(tmp_path):
    program = stand_in(tmp_path, "kill -9 $$")
    with pytest.raises(MailSystemUnavailable, match="killed by signal 9"):
        Sendmail(str(program)).send(MESSAGE, None, ["taro@example.org"])


@pytest.mark.parametrize("recipient", ["-oQ/tmp/x@example.org", "taro@example.org\nbcc@evil.example",
                                       "taro", "<taro@example.org>", "tarō@example.org", "a b@example.org"])
def test_an_unusable_recipient_is_refused_before_anything_runs(tmp_path, recipient):
    program = stand_in(tmp_path, "exit 0")
    with pytest.raises(MailSystemRefused, match="not a usable recipient"):
        Sendmail(str(program)).send(MESSAGE, None, [recipient])
    assert not (tmp_path / "argv").exists()


def test_an_unusable_envelope_sender_is_the_configs_mistake(tmp_path):
    with pytest.raises(ConfigError, match="envelope sender"):
        Sendmail(str(stand_in(tmp_path, "exit 0"))).send(MESSAGE, "-bd", ["taro@example.org"])


# --- SMTP --------------------------------------------------------------------------------

def smtp(fake: FakeSMTP, **kwargs) -> SMTP:
    return SMTP("127.0.0.1", fake.port, starttls=kwargs.pop("starttls", False), timeout=10, **kwargs)


def test_smtp_hands_over_with_the_envelope_given():
    with FakeSMTP() as fake:
        smtp(fake).send(MESSAGE, "request+bounces@example.org", ["taro@example.org"])
    [got] = fake.messages
    assert got.mail_from == "request+bounces@example.org" and got.rcpt_to == ["taro@example.org"]
    assert got.data.replace(b"\r\n", b"\n") == MESSAGE  # the lone "." line was escaped and unescaped


@pytest.mark.parametrize("replies, error, words", [
    ({"rcpt": "450 4.2.0 mailbox busy"}, MailSystemUnavailable, "450"),
    ({"rcpt": "550 5.1.1 user unknown"}, MailSystemRefused, "550 5.1.1 user unknown"),
    ({"mail": "451 4.3.0 try later"}, MailSystemUnavailable, "451"),
    ({"mail": "553 5.7.1 sender rejected"}, ConfigError, "envelope sender"),
    ({"end": "452 4.3.1 insufficient storage"}, MailSystemUnavailable, "452"),
    ({"end": "554 5.7.1 message refused"}, MailSystemRefused, "554"),
    ({"greeting": "421 4.3.2 shutting down"}, MailSystemUnavailable, "421"),
    ({"greeting": "554 5.7.1 no service for you"}, ConfigError, "does not serve this client"),
])
def test_smtp_refusals_are_classified(replies, error, words):
    with FakeSMTP(replies) as fake:
        with pytest.raises(error) as raised:
            smtp(fake).send(MESSAGE, "request+bounces@example.org", ["taro@example.org"])
    assert words in raised.value.reason
    assert fake.messages == []


def test_one_recipient_refused_for_now_retries_the_mail():
    with FakeSMTP({"rcpt:hanako@example.org": "451 4.7.1 greylisted"}) as fake:
        with pytest.raises(MailSystemUnavailable, match="hanako@example.org: 451"):
            smtp(fake).send(MESSAGE, None, ["taro@example.org", "hanako@example.org"])


def test_smtp_connection_refused_is_temporary():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, not listening: a connection is refused
        with pytest.raises(MailSystemUnavailable, match="ConnectionRefusedError"):
            SMTP("127.0.0.1", port, starttls=False, timeout=5).send(MESSAGE, None, ["taro@example.org"])


def test_smtp_server_that_says_nothing_times_out_as_temporary():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(MailSystemUnavailable):
            SMTP("127.0.0.1", silent.getsockname()[1], starttls=False, timeout=0.5).send(
                MESSAGE, None, ["taro@example.org"])


def test_an_unknown_smtp_host_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown host"):
        SMTP("no-such-host.invalid", 25, starttls=False, timeout=5).send(MESSAGE, None, ["taro@example.org"])


def test_starttls_wanted_but_not_offered_is_refused_not_sent_in_clear():
    with FakeSMTP() as fake:
        with pytest.raises(ConfigError, match="does not offer STARTTLS"):
            smtp(fake, starttls=True).send(MESSAGE, None, ["taro@example.org"])
    assert fake.messages == []


def test_smtp_auth_logs_in_and_a_wrong_password_is_a_config_error():
    with FakeSMTP(password="s3cret") as fake:
        smtp(fake, user="gateway", password="s3cret").send(MESSAGE, None, ["taro@example.org"])
        with pytest.raises(ConfigError, match="refused the login: 535"):
            smtp(fake, user="gateway", password="wrong").send(MESSAGE, None, ["taro@example.org"])
    assert len(fake.messages) == 1 and fake.messages[0].logins == [("gateway", "s3cret")]


def test_auth_against_a_server_without_auth_is_a_config_error():
    with FakeSMTP() as fake:
        with pytest.raises(ConfigError):
            smtp(fake, user="gateway", password="x").send(MESSAGE, None, ["taro@example.org"])


def test_the_password_never_shows():
    server = SMTP("127.0.0.1", 25, user="gateway", password="s3cret")
    assert "s3cret" not in repr(server)


def test_smtp_probe_says_what_answered():
    with FakeSMTP() as fake:
        assert smtp(fake).probe() == f"SMTP server 127.0.0.1:{fake.port}"
    assert fake.messages == []


# --- choosing and configuring ------------------------------------------------------------

def test_smtp_setting_chooses_smtp_else_sendmail(tmp_path):
    assert isinstance(for_settings(OutgoingSettings()), Sendmail)
    secret = tmp_path / "password"
    secret.write_text("s3cret\nsecond line\n")
    secret.chmod(0o600)
    chosen = for_settings(OutgoingSettings(smtp="mail.example.org:587", smtp_user="gw", smtp_password_file=secret))
    assert isinstance(chosen, SMTP)
    assert (chosen.host, chosen.port, chosen.user, chosen.password) == ("mail.example.org", 587, "gw", "s3cret")
    with pytest.raises(ConfigError, match="no smtp_password_file"):
        for_settings(OutgoingSettings(smtp="mail.example.org", smtp_user="gw"))


@pytest.mark.parametrize("value, expected", [("localhost", ("localhost", 25)), ("mx:2525", ("mx", 2525)),
                                             ("[::1]:587", ("::1", 587))])
def test_host_and_port(value, expected):
    assert split_host_port(value) == expected


@pytest.mark.parametrize("value", ["", "host:port", "a b:25", "host:0", "host:70000"])
def test_bad_host_and_port(value):
    with pytest.raises(ConfigError):
        split_host_port(value)


def test_a_password_file_others_may_read_is_refused(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    secret.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600") as raised:
        read_secret(secret, "outgoing.smtp_password_file")
    assert "s3cret" not in str(raised.value)
    secret.chmod(stat.S_IRUSR)
    assert read_secret(secret, "outgoing.smtp_password_file") == "s3cret"


@pytest.mark.parametrize("content, words", [(b"", "empty"), (b"\nlater\n", "empty"), (b"\xff\xfe\n", "not UTF-8")])
def test_an_unusable_password_file_is_a_config_error(tmp_path, content, words):
    secret = tmp_path / "password"
    secret.write_bytes(content)
    secret.chmod(0o600)
    with pytest.raises(ConfigError, match=words):
        read_secret(secret, "outgoing.smtp_password_file")
    with pytest.raises(ConfigError, match="cannot read"):
        read_secret(tmp_path / "missing", "outgoing.smtp_password_file")


