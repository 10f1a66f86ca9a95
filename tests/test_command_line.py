"""The command line for people and for mail systems: a person at a terminal gets usage and
exit 2 for a mistake, a mail system gets 75 (keep the mail) as always; each subcommand has
its own help; a closed pipe ends quietly; status speaks JSON and monitoring exit codes.
The terminal cases run the installed program with a real pseudo-terminal on stdin."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest

from support.paths import console_script
from m2r_deliver.config import load
from m2r_deliver.errors import RedmineUnavailable
from m2r_deliver.ledger import Ledger


def at_terminal(site, *args: str) -> subprocess.CompletedProcess:
    """Run m2r-deliver with a pseudo-terminal on stdin, as a person typing it would."""
    controller, terminal = pty.openpty()
    try:
        return subprocess.run([console_script(), *args], stdin=terminal, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "HOME": str(site.home)})
    finally:
        os.close(terminal)
        os.close(controller)


def from_mail_system(site, *args: str, mail: bytes = b"Subject: x\n\nbody\n") -> subprocess.CompletedProcess:
    return subprocess.run([console_script(), *args], input=mail, capture_output=True, timeout=60,
                          env={**os.environ, "HOME": str(site.home)})


def nothing_recorded(site) -> bool:
    return not site.state_dir.exists() and not site.log_file.exists()


def test_a_misspelt_command_at_a_terminal_is_a_usage_error(offline_site):
    done = at_terminal(offline_site, "chek", "--config", str(offline_site.config_path))
    assert done.returncode == 2
    assert done.stderr.startswith("usage: m2r-deliver")
    assert "unknown command 'chek'" in done.stderr and "check, replay, status" in done.stderr
    assert done.stdout == ""
    assert nothing_recorded(offline_site)


def test_an_unknown_flag_at_a_terminal_is_a_usage_error(offline_site):
    done = at_terminal(offline_site, "--config", str(offline_site.config_path), "--bogus")
    assert done.returncode == 2
    assert "usage: m2r-deliver" in done.stderr and "unrecognized arguments: --bogus" in done.stderr
    assert nothing_recorded(offline_site)


def test_argv_mistakes_from_a_mail_system_still_keep_the_mail(offline_site):
    for args in (["chek"], ["--bogus"]):
        done = from_mail_system(offline_site, "--config", str(offline_site.config_path), *args)
        assert done.returncode == 75, args
        assert done.stdout == b"" and done.stderr == b"", args


def test_by_hand_without_a_command_it_says_it_reads_a_mail_and_records_nothing(offline_site):
    done = at_terminal(offline_site, "--config", str(offline_site.config_path))
    assert done.returncode == 2
    assert "reads one mail on stdin" in done.stderr and "nothing recorded" in done.stderr
    assert nothing_recorded(offline_site)


@pytest.mark.parametrize("command, words", [
    ("check", "Check the config against Redmine"),
    ("status", "--max-retry-age"),
    ("replay", "MAILDIR"),
])
def test_each_subcommand_has_its_own_help(offline_site, command, words):
    done = from_mail_system(offline_site, command, "--help")
    out = done.stdout.decode()
    assert done.returncode == 0
    assert out.startswith(f"usage: m2r-deliver {command}") and words in out
    assert "Deliver one RFC 822 mail" not in out


def test_a_subcommand_argv_mistake_is_a_usage_error_even_without_a_terminal(offline_site):
    done = from_mail_system(offline_site, "status", "--bogus")
    assert done.returncode == 2 and b"usage: m2r-deliver status" in done.stderr


def fill_ledger(site, failed_last: bool) -> None:
    settings = load(str(site.config_path), {}, {"HOME": str(site.home)})
    with Ledger.open(settings.state_dir, keep_for=86400, stale_after=600) as ledger:
        for number in range(300):
            ledger.claim(f"<filed{number}@example.org>")
            ledger.settle(f"<filed{number}@example.org>", "filed", issue_id=number + 1)
        ledger.claim("<waiting@example.org>")
        ledger.fail("<waiting@example.org>", RedmineUnavailable("connection refused"), unsure_since=None)
        if not failed_last:
            ledger.claim("<later@example.org>")
            ledger.settle("<later@example.org>", "filed", issue_id=999)


def test_status_into_a_closed_pipe_ends_without_a_traceback(offline_site):
    fill_ledger(offline_site, failed_last=False)
    reader, writer = os.pipe()
    os.close(reader)  # like `| head` that has already gone
    try:
        done = subprocess.run([console_script(), "status", "--config", str(offline_site.config_path)],
                              stdin=subprocess.DEVNULL, stdout=writer, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(writer)
    assert done.stderr == b""
    assert done.returncode == 141


def test_status_json(offline_site):
    fill_ledger(offline_site, failed_last=False)
    done = from_mail_system(offline_site, "status", "--json", "--config", str(offline_site.config_path))
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["counts"]["filed"] == 301 and data["counts"]["failed"] == 1
    assert [row["key"] for row in data["in_retry"]] == ["<waiting@example.org>"]
    assert data["in_retry"][0]["error"] == "connection refused"
    assert data["recent"][0]["issue"] == 999
    assert data["quarantine"]["waiting"] == 0


def status_check(site, *args: str) -> subprocess.CompletedProcess:
    return from_mail_system(site, "status", "--check", "--config", str(site.config_path), *args)


def test_status_check_is_0_when_all_is_well(offline_site):
    fill_ledger(offline_site, failed_last=False)
    done = status_check(offline_site, "--max-retry-age", "1d")
    assert done.returncode == 0 and done.stdout.startswith(b"OK: ")


def test_status_check_is_1_for_mail_in_the_quarantine_or_held(offline_site):
    fill_ledger(offline_site, failed_last=False)
    for folder in ("quarantine", "hold"):
        new = offline_site.state_dir / folder / "new"
        new.mkdir(parents=True)
        (new / "1.mail").write_bytes(b"Subject: x\n\nx\n")
        done = status_check(offline_site, "--max-retry-age", "1d")
        assert done.returncode == 1 and done.stdout.startswith(b"WARNING: "), folder
        assert str(new).encode() in done.stdout
        (new / "1.mail").unlink()


def test_status_check_is_2_for_an_old_retry(offline_site):
    fill_ledger(offline_site, failed_last=False)
    done = status_check(offline_site, "--max-retry-age", "0s")
    assert done.returncode == 2 and done.stdout.startswith(b"CRITICAL: 1 mail(s) in retry")
    assert b"connection refused" in done.stdout


def test_status_check_is_2_when_the_last_attempt_failed(offline_site):
    fill_ledger(offline_site, failed_last=True)
    done = status_check(offline_site, "--max-retry-age", "1d")
    assert done.returncode == 2 and b"the last attempt failed" in done.stdout


def test_check_says_where_the_log_goes_and_warns_when_it_is_lost(offline_site):
    done = from_mail_system(offline_site, "check", "--config", str(offline_site.config_path))
    assert f"ok   log: [log] file {offline_site.log_file}".encode() in done.stdout
    offline_site.write_config(extra="").write_text(
        offline_site.config_path.read_text().replace(f'file = "{offline_site.log_file}"\n', ""))
    done = from_mail_system(offline_site, "check", "--config", str(offline_site.config_path))
    assert b"warn log: [log] syslog = false and no [log] file: every log line is lost" in done.stdout


def test_check_warns_when_there_is_no_syslog_socket(offline_site, tmp_path):
    from m2r_deliver.check import _check_log, _Report
    import io
    out = io.StringIO()
    settings = load(str(offline_site.config_path), {}, {"HOME": str(offline_site.home)})
    from dataclasses import replace
    _check_log(replace(settings, syslog=True, log_file=None), _Report(out), socket_path=str(tmp_path / "no-log"))
    assert "no syslog socket" in out.getvalue() and "every log line is lost" in out.getvalue()
    out = io.StringIO()
    _check_log(replace(settings, syslog=True), _Report(out), socket_path=str(tmp_path / "no-log"))
    assert f"the lines go only to {offline_site.log_file}" in out.getvalue()


def test_max_retry_age_takes_plain_seconds_as_its_message_says(offline_site):
    fill_ledger(offline_site, failed_last=False)
    assert status_check(offline_site, "--max-retry-age", "86400").returncode == 0
    assert status_check(offline_site, "--max-retry-age", "0").returncode == 2


def test_status_check_is_2_when_the_config_cannot_be_read(offline_site):
    """A gateway whose config is broken files nothing: for monitoring that is critical."""
    config = offline_site.config_path.read_text()
    offline_site.config_path.write_text(config.replace("[state]\n", "[state]\nretry_for = nan\n", 1))
    done = status_check(offline_site)
    assert done.returncode == 2 and done.stdout.startswith(b"CRITICAL: config: "), done.stdout
    assert b"retry_for" in done.stdout


def owe(site, key: str, issue_id: int, age: float) -> None:
    """An acknowledgement still owed, written the way the reply stage writes it."""
    import sqlite3
    import time

    from m2r_deliver.ledger import FILE_NAME
    from m2r_deliver.outgoing.answered import Owed, OwedLog

    db = sqlite3.connect(site.state_dir / FILE_NAME, isolation_level=None)
    try:
        OwedLog(db).owe(Owed(key, "ack", issue_id, "taro@example.org", f"<m2r.ack-{issue_id}.x@example.org>",
                             b"Subject: x\n\nx\n", time.time() - age))
    finally:
        db.close()


def test_status_shows_the_acknowledgements_still_owed(offline_site):
    fill_ledger(offline_site, failed_last=False)
    none = from_mail_system(offline_site, "status", "--config", str(offline_site.config_path))
    assert b"owed        0 mail(s) to requesters\n" in none.stdout
    assert json.loads(from_mail_system(offline_site, "status", "--json", "--config",
                                       str(offline_site.config_path)).stdout)["owed"]["count"] == 0
    owe(offline_site, "<filed3@example.org>", 4, age=600)
    owe(offline_site, "<filed7@example.org>", 8, age=60)
    text = from_mail_system(offline_site, "status", "--config", str(offline_site.config_path)).stdout.decode()
    assert "owed        2 mail(s) to requesters (ack 2), the oldest since " in text
    assert "(issue #4, to taro@example.org;" in text
    data = json.loads(from_mail_system(offline_site, "status", "--json", "--config", str(offline_site.config_path)).stdout)
    assert (data["owed"]["count"], data["owed"]["by_kind"], data["owed"]["oldest_issue"]) == (2, {"ack": 2}, 4)
    assert status_check(offline_site, "--max-retry-age", "1d").returncode == 0, "owed for less than an hour: well"


def test_status_check_warns_about_an_acknowledgement_owed_for_more_than_an_hour(offline_site):
    fill_ledger(offline_site, failed_last=False)
    owe(offline_site, "<filed3@example.org>", 4, age=2 * 3600)
    done = status_check(offline_site, "--max-retry-age", "1d")
    assert done.returncode == 1
    assert done.stdout.startswith(b"WARNING: 1 mail(s) to requesters owed (ack 1), the oldest for 2.0h")
    assert b"issue #4" in done.stdout


@pytest.mark.parametrize("argv", [
    [], ["--config", "/etc/m2r/config.toml"], ["--config=/etc/m2r/config.toml"], ["--config="], ["--config", ""],
    ["--config", "-"], ["--config", "--verbose"], ["--conf", "x.toml"], ["--config", "a", "--config", "b"],
    ["--config", "x.toml", "--dry-run"], ["-p", "ops"], ["--config=x", "-v"], ["--config=--x"], ["x.toml"],
])
def test_the_usual_command_line_read_without_argparse_means_what_argparse_reads(argv):
    """A delivery's usual command line skips the parser: for any it takes, the parser would
    have read the same config path and no other option; any other is left to the parser."""
    from m2r_deliver.cli import _config_only
    from m2r_deliver.options import build_parser, overrides_from

    config = _config_only(argv)
    if config is None:
        return  # the parser's, as before
    args = build_parser("deliver").parse_args(argv)
    assert config == (args.config or "")
    assert not args.dry_run and not args.verbose
    assert all(value is None for section in overrides_from(args).values() for value in section.values())


def test_the_usual_command_line_is_recognised():
    from m2r_deliver.cli import _config_only

    assert [_config_only(argv) for argv in ([], ["--config", "c.toml"], ["--config=c.toml"])] == ["", "c.toml", "c.toml"]
    assert [_config_only(argv) for argv in (["--conf", "c"], ["--config", "-"], ["-v"], ["--config=c", "-v"])] == [
        None, None, None, None]
