"""Exactly once, against the real Redmine (through a loopback proxy that misbehaves where a
fault is needed): every test ends by counting the issues that carry its token. Exactly one
means nothing was lost and nothing was filed twice; a mail kept outside Redmine (in the
quarantine) is compared byte for byte.

"marker" runs have ``[redmine] marker_field = "Message-ID"`` (the test-bed's filterable
custom field); "ledger-only" runs have no marker field and rely on the ledger and, for an
unknown outcome, on the search by subject and text.
"""

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from contextlib import contextmanager

import pytest

from support.paths import console_script, unavailable
from support.faultproxy import FaultProxy
from support.fakeserver import answering
from support.mails import make_mail
from support.testbed import (assert_silent, created, decision, killed_while_held, log_lines, make_project,
                             start_delivery)

KINDS = ["marker", "ledger-only"]


def configure(site, kind, *, url=None, timeout=30, extra="", issue='project = "helpdesk"\ntracker = "Support"'):
    marker = '\nmarker_field = "Message-ID"' if kind == "marker" else ""
    site.write_config(extra, redmine=f"timeout = {timeout}{marker}", url=url, issue=issue)


def set_state(site, lines):
    """Add keys to the [state] table of the site's config."""
    site.config_path.write_text(site.config_path.read_text().replace("[state]\n", f"[state]\n{lines}\n"))


def the_one_issue(testbed, token):
    """Nothing lost, nothing filed twice: exactly one issue carries the token."""
    issues = testbed.issues_with_subject(token)
    assert issues, f"lost: no issue carries {token}"
    assert len(issues) == 1, f"filed twice: issues {[i['id'] for i in issues]} all carry {token}"
    return issues[0]


def quarantined_files(site):
    new = site.state_dir / "quarantine" / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


# -- the same mail more than once --------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_delivered_twice_files_once(site, testbed, token, kind):
    configure(site, kind)
    mail = make_mail(f"twice {token}")
    assert_silent(site.deliver(mail), 0)
    issue = the_one_issue(testbed, token)
    assert_silent(site.deliver(mail), 0)
    last = log_lines(site)[-1]
    assert decision(last) == "duplicate" and f"duplicate of #{issue['id']}" in last
    assert the_one_issue(testbed, token)["id"] == issue["id"]
    if kind == "marker":
        [marker] = [cf for cf in testbed.issue(issue["id"])["custom_fields"] if cf["name"] == "Message-ID"]
        assert marker["value"].startswith("<") and marker["value"].endswith("@tests.example.org>")


@pytest.mark.parametrize("kind", KINDS)
def test_six_copies_at_once_file_one_issue(site, testbed, token, kind):
    configure(site, kind)
    mail = make_mail(f"six at once {token}")
    procs = [start_delivery(site, mail) for _ in range(6)]
    results = [(proc.wait(timeout=300), proc.stdout.read(), proc.stderr.read()) for proc in procs]
    assert results == [(0, b"", b"")] * 6
    issue = the_one_issue(testbed, token)
    outcomes = sorted(decision(line) for line in log_lines(site))
    assert outcomes == ["duplicate"] * 5 + ["filed"]
    assert all(f"#{issue['id']}" in line for line in log_lines(site))


def test_a_mail_without_message_id_is_known_by_its_digest(site, testbed, token):
    mail = make_mail(f"no message-id {token}").replace(b"Message-ID:", b"X-Old-Message-ID:")
    assert_silent(site.deliver(mail), 0)
    assert_silent(site.deliver(b"Received: from another.relay\n" + mail), 0)
    first, second = log_lines(site)
    assert "key=sha256:" in second and decision(second) == "duplicate"
    the_one_issue(testbed, token)


def test_two_hosts_with_the_marker_file_one_issue(site, testbed, token, tmp_path_factory):
    """Two MX hosts (two state dirs) receive the same list mail, one after the other."""
    from support.testbed import Site
    other = Site(tmp_path_factory.mktemp("second-host"), testbed.url, testbed.admin_key)
    for host in (site, other):
        configure(host, "marker")
    mail = make_mail(f"two hosts {token}")
    assert_silent(site.deliver(mail), 0)
    assert_silent(other.deliver(mail), 0)
    issue = the_one_issue(testbed, token)
    assert decision(log_lines(other)[-1]) == "duplicate" and f"#{issue['id']}" in log_lines(other)[-1]


def test_a_host_that_lost_its_state_dir_finds_the_issue_by_marker(site, testbed, token):
    configure(site, "marker")
    mail = make_mail(f"lost state {token}")
    assert_silent(site.deliver(mail), 0)
    import shutil
    shutil.rmtree(site.state_dir)
    assert_silent(site.deliver(mail), 0)
    issue = the_one_issue(testbed, token)
    assert f"duplicate of #{issue['id']}" in log_lines(site)[-1]


# -- Redmine misbehaving -----------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_redmine_down_then_up(site, testbed, token, kind):
    mail = make_mail(f"down then up {token}")
    with FaultProxy(testbed.url) as proxy:
        configure(site, kind, url=proxy.url)
        proxy.mode = "down"
        assert_silent(site.deliver(mail), 75)
        assert testbed.issues_with_subject(token) == []
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
        assert_silent(site.deliver(mail), 0)
    assert [decision(line) for line in log_lines(site)] == ["tempfail", "filed", "duplicate"]
    the_one_issue(testbed, token)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["drop", "error-after"])
def test_answer_lost_after_redmine_filed_it(site, testbed, token, kind, fault):
    """The hard case: Redmine saved the issue, the answer never arrived (reset, or a 500
    from a proxy). Redelivery must find the issue, not file another one."""
    mail = make_mail(f"answer lost {fault} {token}", f"Body of the {fault} case.\n\nSecond paragraph {token}.")
    with FaultProxy(testbed.url) as proxy:
        configure(site, kind, url=proxy.url)
        proxy.mode = fault
        assert_silent(site.deliver(mail), 75)
        saved = the_one_issue(testbed, token)  # Redmine did file it
        assert len(proxy.filings()) == 1
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
        assert len(proxy.filings()) == 1  # the redelivery looked, and did not post again
    last = log_lines(site)[-1]
    assert decision(last) == "duplicate" and f"duplicate of #{saved['id']}" in last
    assert the_one_issue(testbed, token)["id"] == saved["id"]


def test_answer_lost_and_an_identical_mail_filed_meanwhile(site, testbed, token):
    """Without the marker, the search compares subject and text; an identical alert with
    another Message-ID filed by this host in between is known to the ledger as another
    mail's issue, and is not taken for this one."""
    subject, body = f"Disk full on db1 {token}", "Filesystem /var is 100% full."
    first, second = make_mail(subject, body), make_mail(subject, body)
    with FaultProxy(testbed.url) as proxy:
        configure(site, "ledger-only", url=proxy.url)
        proxy.mode = "drop"
        assert_silent(site.deliver(first), 75)
        proxy.mode = "pass"
        assert_silent(site.deliver(second), 0)
        assert_silent(site.deliver(first), 0)
    issues = testbed.issues_with_subject(token)
    assert len(issues) == 2, "one issue per mail: nothing lost, nothing filed twice"
    filed_second = re.search(r"issue=#(\d+)", log_lines(site)[1]).group(1)
    found_first = re.search(r"issue=#(\d+)", log_lines(site)[2]).group(1)
    assert decision(log_lines(site)[2]) == "duplicate" and found_first != filed_second


def test_server_that_holds_its_answer_tempfails_then_the_issue_is_found(site, testbed, token):
    mail = make_mail(f"held answer {token}")
    with FaultProxy(testbed.url) as proxy:
        configure(site, "ledger-only", url=proxy.url, timeout=8)
        proxy.mode = "hold"
        result = site.deliver(mail, timeout=120)
        assert_silent(result, 75)
        assert proxy.posted.is_set() and "creating the issue: no answer within the timeout" in log_lines(site)[-1]
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
    assert decision(log_lines(site)[-1]) == "duplicate"
    the_one_issue(testbed, token)


def test_500_then_201(site, testbed, token):
    mail = make_mail(f"500 then 201 {token}")
    with FaultProxy(testbed.url) as proxy:
        configure(site, "ledger-only", url=proxy.url)
        proxy.mode = "error-first"
        assert_silent(site.deliver(mail), 75)
        assert testbed.issues_with_subject(token) == []
        assert_silent(site.deliver(mail), 0)
        assert [what for _, _, what in proxy.filings()] == ["500 without forwarding", "201 forwarded"]
    assert [decision(line) for line in log_lines(site)] == ["tempfail", "filed"]
    the_one_issue(testbed, token)


# -- m2r-deliver killed mid-request ---------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killed_while_redmine_files_then_redelivered(site, testbed, token, kind, sig):
    mail = make_mail(f"killed {sig.name} {token}")
    with FaultProxy(testbed.url) as proxy:
        configure(site, kind, url=proxy.url)
        proxy.mode = "hold"
        killed_while_held(site, proxy, mail, sig)
        saved = the_one_issue(testbed, token)
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
        assert len(proxy.filings()) == 1
    assert f"duplicate of #{saved['id']}" in log_lines(site)[-1]
    the_one_issue(testbed, token)


# -- refusals, lifetime, quarantine and replay ------------------------------------------

def test_permanent_422_is_retried_then_quarantined_byte_for_byte(offline_site):
    mail = (b"From taro@example.org Fri Nov 27 10:00:00 2026\r\n"
            + make_mail("refused forever").replace(b"\n", b"\r\n") + b"8-bit tail: \xff\xfe\r\n")
    body = b'{"errors": ["Tracker is not included in the list"]}'
    me = json.dumps({"user": {"id": 7, "login": "gateway", "admin": False}}).encode()
    with answering(422, body, paths={"/users/current.json": (200, me)}) as (url, seen):
        offline_site.write_config(url=url, issue='project = "7"\ntracker = "3"')
        statuses = [offline_site.deliver(mail).returncode for _ in range(4)]
    assert statuses == [75, 75, 0, 0]
    posts = [path for method, path in seen if method == "POST"]
    assert len(posts) == 3, "max_attempts (3) tries, then no more: nothing was filed, nothing filed twice"
    [kept] = quarantined_files(offline_site)
    assert kept.read_bytes() == mail, "lost nothing: quarantined byte for byte as received"
    decisions = [decision(line) for line in log_lines(offline_site)]
    assert decisions == ["refused", "refused", "quarantined", "duplicate"]
    assert "max_attempts 3" in log_lines(offline_site)[2] and "Tracker is not included" in log_lines(offline_site)[2]


def test_a_mail_the_real_redmine_refuses_is_tried_max_attempts_times_then_quarantined(site, testbed, token):
    """Redmine 422s an issue for a closed version ("Target version is not included in the
    list"): three refusals, the third quarantines (byte for byte), a fourth copy is a
    duplicate, and Redmine holds nothing."""
    project = make_project(testbed, f"r{token}")
    created(testbed, f"/projects/{project['identifier']}/versions.json",
            {"version": {"name": "retired", "status": "closed"}}, "version")
    configure(site, "ledger-only", issue=f'project = "{project["identifier"]}"\nfixed_version = "retired"')
    mail = make_mail(f"refused by Redmine {token}")
    statuses = [site.deliver(mail).returncode for _ in range(4)]
    assert statuses == [75, 75, 0, 0]
    assert [decision(line) for line in log_lines(site)] == ["refused", "refused", "quarantined", "duplicate"]
    assert "max_attempts 3" in log_lines(site)[2]
    [kept] = quarantined_files(site)
    assert kept.read_bytes() == mail
    assert testbed.issues_with_subject(token) == []


def test_temporary_failure_is_quarantined_after_retry_for(offline_site):
    set_state(offline_site, 'retry_for = "1s"')
    mail = make_mail("Redmine never comes back")
    assert_silent(offline_site.deliver(mail), 75)
    time.sleep(1.5)
    assert_silent(offline_site.deliver(mail), 0)
    assert decision(log_lines(offline_site)[-1]) == "quarantined" and "retry_for" in log_lines(offline_site)[-1]
    [kept] = quarantined_files(offline_site)
    assert kept.read_bytes() == mail


def test_refused_mail_is_quarantined_and_replayed_after_the_fix(site, testbed, token):
    # a sub-address naming no project, with no configured one to fall back to: Redmine
    # refuses the mail (a configured project it lacks would be the config's fault)
    configure(site, "marker", issue='project_from_subaddress = "desk@example.org"')
    set_state(site, "max_attempts = 1")
    mail = make_mail(f"replayed {token}", to="desk+no-such-project@example.org")
    assert_silent(site.deliver(mail), 0)
    assert decision(log_lines(site)[-1]) == "quarantined" and "no-such-project" in log_lines(site)[-1]
    [kept] = quarantined_files(site)
    assert testbed.issues_with_subject(token) == []
    status = run(site, "status")
    assert "quarantined 1" in status.stdout and "1 waiting in new/" in status.stdout

    site.config_path.write_text(site.config_path.read_text().replace('project_from_subaddress = "desk@example.org"',
                                                                     'project = "helpdesk"'))
    replayed = run(site, "replay")
    assert replayed.returncode == 0, replayed.stdout
    issue = the_one_issue(testbed, token)
    assert f"filed #{issue['id']}: {kept.name}" in replayed.stdout
    assert quarantined_files(site) == []
    [moved] = (site.state_dir / "quarantine" / "cur").iterdir()
    assert moved.name == kept.name + ":2,PS" and moved.read_bytes() == mail
    assert "replayed 0" in run(site, "replay").stdout
    assert_silent(site.deliver(mail), 0)  # the mail system delivers it once more: a duplicate
    assert f"duplicate of #{issue['id']}" in log_lines(site)[-1]
    the_one_issue(testbed, token)
    assert f"filed #{issue['id']}" in run(site, "status").stdout


def test_replay_leaves_what_still_fails(offline_site):
    set_state(offline_site, 'retry_for = "0s"')
    assert_silent(offline_site.deliver(make_mail("still failing")), 0)
    [kept] = quarantined_files(offline_site)
    replayed = run(offline_site, "replay")
    assert replayed.returncode == 1
    assert f"left: {kept.name}: redmine:" in replayed.stdout and "0 left" not in replayed.stdout
    assert quarantined_files(offline_site) == [kept], "left where it was, not quarantined twice"


# -- the state dir -----------------------------------------------------------------------

@contextmanager
def mounted_tmpfs(path, options):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}): needs root with CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.parametrize("how", ["read-only mount", "file in the way"])
def test_unwritable_state_dir_tempfails_and_files_nothing(site, testbed, token, how):
    """Root ignores permission bits, so the state dir is made unwritable in ways that bind
    root too: a read-only tmpfs mounted on it, or a file where the directory must be."""
    configure(site, "ledger-only")
    mail = make_mail(f"unwritable {how} {token}")

    def fixed():
        if how == "file in the way":
            site.state_dir.unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(site.state_dir)], check=True)

    with (mounted_tmpfs(site.state_dir, "ro,size=1m") if how == "read-only mount" else _file_at(site.state_dir)):
        assert_silent(site.deliver(mail), 75)
        assert "fault=state" in log_lines(site)[-1]
        assert testbed.issues_with_subject(token) == [], "never file without a record"
        fixed()
        assert_silent(site.deliver(mail), 0)
        assert_silent(site.deliver(mail), 0)
    assert [decision(line) for line in log_lines(site)] == ["tempfail", "filed", "duplicate"]
    the_one_issue(testbed, token)


@contextmanager
def _file_at(path):
    path.write_text("not a directory")
    yield path


def test_full_state_dir_tempfails_and_files_nothing(site, testbed, token):
    configure(site, "ledger-only")
    first, second = make_mail(f"before full {token}"), make_mail(f"while full {token}")
    with mounted_tmpfs(site.state_dir, "size=256k"):
        assert_silent(site.deliver(first), 0)
        filler = site.state_dir / "filler"
        with pytest.raises(OSError), open(filler, "wb") as out:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
        assert_silent(site.deliver(second), 75)
        assert "fault=state" in log_lines(site)[-1]
        assert testbed.issues_with_subject(f"while full {token}") == []
        filler.unlink()
        assert_silent(site.deliver(second), 0)
        assert_silent(site.deliver(first), 0)
    assert [decision(line) for line in log_lines(site)] == ["filed", "tempfail", "filed", "duplicate"]
    assert len(testbed.issues_with_subject(token)) == 2, "one issue per mail"


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_ledger(site, testbed, token, kind):
    """Without the marker the program refuses (75) and leaves the file for the admin: a new
    ledger would not know what was filed. With it, Redmine can vouch: the damaged file is
    set aside and a new ledger started."""
    configure(site, kind)
    mail = make_mail(f"damaged ledger {token}")
    assert_silent(site.deliver(mail), 0)
    ledger = site.state_dir / "ledger.sqlite3"
    junk = b"\x00garbage, not SQLite\x00" * 512
    for extra in ("-wal", "-shm"):
        if os.path.exists(f"{ledger}{extra}"):
            os.unlink(f"{ledger}{extra}")
    ledger.write_bytes(junk)
    result = site.deliver(mail)
    if kind == "ledger-only":
        assert_silent(result, 75)
        assert "is damaged" in log_lines(site)[-1] and "Move it aside" in log_lines(site)[-1]
        assert ledger.read_bytes() == junk, "left as it was for the admin"
    else:
        assert_silent(result, 0)
        assert decision(log_lines(site)[-1]) == "duplicate" and "set aside" in log_lines(site)[-1]
        [aside] = site.state_dir.glob("ledger.sqlite3.damaged-*")
        assert aside.read_bytes() == junk
        with sqlite3.connect(ledger) as db:
            assert db.execute("SELECT state FROM deliveries").fetchall() == [("filed",)]
    the_one_issue(testbed, token)


def run(site, command):
    return subprocess.run([console_script(), command, "--config", str(site.config_path)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HOME": str(site.home)})


def test_a_second_copy_waits_a_bounded_time_then_its_retry_finds_the_issue(site, testbed, token):
    """Copy A is stuck in Redmine; copy B (same state dir, shorter timeout) waits for A
    as long as its timeout, then tempfails; after A is gone, the retry finds the issue."""
    mail = make_mail(f"second copy waits {token}")
    with FaultProxy(testbed.url) as proxy:
        configure(site, "ledger-only", url=proxy.url, timeout=120)
        patient = site.config_path.read_text()
        proxy.mode = "hold"
        first = start_delivery(site, mail)
        assert proxy.posted.wait(timeout=120)
        site.config_path.write_text(patient.replace("timeout = 120", "timeout = 2"))
        assert_silent(site.deliver(mail), 75)
        assert "fault=concurrent" in log_lines(site)[-1] and f"process {first.pid}" in log_lines(site)[-1]
        first.kill()
        first.wait(timeout=60)
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
        assert len(proxy.filings()) == 1
    assert decision(log_lines(site)[-1]) == "duplicate"
    the_one_issue(testbed, token)


def test_check_verifies_the_marker_field(site, testbed):
    configure(site, "marker")
    checked = run(site, "check")
    assert checked.returncode == 0, checked.stdout
    marker = testbed.info["custom_fields"]["Message-ID"]
    assert f"ok   marker field #{marker} 'Message-ID': an issue text field used as a filter" in checked.stdout
    assert f"ok   marker field #{marker} works as an exact filter with this key in project 'helpdesk'" in checked.stdout

    site.write_config(redmine='timeout = 30\nmarker_field = "No such field"')
    checked = run(site, "check")
    assert checked.returncode == 1
    assert "FAIL marker field 'No such field' not found; create it in Redmine: Administration" in checked.stdout
    assert "'Used as a filter'" in checked.stdout

    site.write_config(redmine="timeout = 30")
    assert "warn no [redmine] marker_field" in run(site, "check").stdout


def test_check_with_a_key_that_is_not_an_administrators(site, testbed):
    site.key_file.write_text(testbed.info["gateway_key"])
    site.write_config(redmine='timeout = 30\nmarker_field = "Message-ID"')
    checked = run(site, "check")
    assert checked.returncode == 1 and "set [redmine] marker_field to the field's id" in checked.stdout
    marker = testbed.info["custom_fields"]["Message-ID"]
    site.write_config(redmine=f"timeout = 30\nmarker_field = {marker}")
    checked = run(site, "check")
    assert checked.returncode == 0, checked.stdout
    assert f"warn marker field #{marker}: the key cannot read custom field definitions" in checked.stdout
    assert f"ok   marker field #{marker} works as an exact filter with this key in project 'helpdesk'" in checked.stdout


def test_a_marker_field_redmine_cannot_filter_on_is_a_config_error(site, testbed, token):
    """The real Redmine ignores a filter on a field not 'Used as a filter' and answers with
    every issue (test_record.py shows the same against a hand-written answer)."""
    site.write_config(redmine='timeout = 30\nmarker_field = "Not a filter"')
    assert_silent(site.deliver(make_mail(f"unfiltered marker {token}")), 75)
    field_id = testbed.info["custom_fields"]["Not a filter"]
    assert "fault=config" in log_lines(site)[-1]
    assert f"ignored the filter on custom field #{field_id}" in log_lines(site)[-1]
    assert testbed.issues_with_subject(token) == [], "nothing filed without a working marker"


def test_status_of_a_state_dir_without_a_ledger(offline_site):
    shown = run(offline_site, "status")
    assert shown.returncode == 0 and "none yet" in shown.stdout
