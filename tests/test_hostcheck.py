"""scripts/hostcheck, the guard of scripts/test and scripts/demo: it refuses, before
anything is installed or changed, on a machine whose Postfix, dovecot or Redmine looks set
up for real use, and lets a fresh machine (CI) and a prepared one through. Every case
reads a fabricated machine in a temporary directory (M2R_HOSTCHECK_ROOT), Postfix's
main.cf through the real `postconf -c`; the machine's own /etc is never touched."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.paths import ROOT

pytestmark = pytest.mark.skipif(not shutil.which("postconf"), reason="needs Postfix's postconf (Debian: postfix)")

# What scripts/setup-mail leaves (and Debian's "Local only" Postfix nearly is).
PREPARED = """\
inet_interfaces = loopback-only
default_transport = error
relay_transport = error
relayhost =
mydestination = $myhostname, localhost.localdomain, localhost
virtual_alias_maps = regexp:/etc/postfix/m2r-testbed-virtual
"""
# Debian's "Internet Site" Postfix, as an administrator left it.
INTERNET_SITE = """\
myhostname = mx.example.com
mydestination = $myhostname, example.com, localhost.localdomain, localhost
relayhost =
inet_interfaces = all
"""


def machine(tmp_path: Path, main_cf: str | None = None) -> Path:
    root = tmp_path / "machine"
    root.mkdir()
    if main_cf is not None:
        (root / "etc/postfix").mkdir(parents=True)
        (root / "etc/postfix/main.cf").write_text(main_cf)
        (root / "usr/sbin").mkdir(parents=True)
        (root / "usr/sbin/sendmail").write_text("")
    return root


def hostcheck(root: Path, *args: str, script: str = "scripts/hostcheck", **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "M2R_DISPOSABLE_HOST"}
    return subprocess.run([str(ROOT / script) if script.startswith("scripts/") else script, *args],
                          capture_output=True, text=True, timeout=60,
                          env={**environment, "M2R_HOSTCHECK_ROOT": str(root), **env})


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_fresh_machine_passes_as_on_ci(tmp_path):
    root = machine(tmp_path)
    for kind in ("test", "demo"):
        done = hostcheck(root, "--for", kind, CI="true")
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""


def test_a_machine_setup_already_prepared_passes(tmp_path):
    root = machine(tmp_path, PREPARED)
    (root / "var/tmp/m2r-testbed").mkdir(parents=True)
    (root / "var/tmp/m2r-testbed/testbed.json").write_text("{}")
    done = hostcheck(root, "--for", "test", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "postconf -e" not in done.stdout and "nothing here serves real mail" in done.stdout


def test_an_internet_site_postfix_is_refused_and_left_alone(tmp_path):
    root = machine(tmp_path, INTERNET_SITE)
    before = digest(root)
    done = hostcheck(root, "--for", "test")
    assert done.returncode == 3
    assert "refuses to change this machine" in done.stderr
    assert "P2 inet_interfaces = all" in done.stderr
    assert "P3 default_transport = smtp" in done.stderr
    assert "P4 mydestination lists example.com" in done.stderr
    assert "--disposable" in done.stderr and "M2R_DISPOSABLE_HOST=1" in done.stderr
    assert digest(root) == before


@pytest.mark.parametrize("line, sign", [
    ("relayhost = [smtp.example.net]:587", "P1 relayhost = [smtp.example.net]:587"),
    ("virtual_alias_domains = example.org", "P5 virtual_alias_domains = example.org"),
    ("relay_domains = example.net", "P5 relay_domains = example.net"),
    ("virtual_alias_maps = hash:/etc/postfix/virtual", "P6 virtual_alias_maps = hash:/etc/postfix/virtual"),
    ("mydestination = $myhostname, localhost, mail.example.com", "P4 mydestination lists mail.example.com"),
])
def test_each_sign_of_a_real_postfix_is_refused(tmp_path, line, sign):
    name = line.split(" =")[0]
    main_cf = "".join(l + "\n" for l in PREPARED.splitlines() if not l.startswith(name + " ")) + line + "\n"
    done = hostcheck(machine(tmp_path, main_cf), "--for", "test")
    assert done.returncode == 3 and sign in done.stderr, done.stderr


def test_a_local_only_postfix_without_the_test_beds_map_gets_it(tmp_path):
    """Debian's "Local only" Postfix passes; setup-mail adds the map that sends the test
    bed's domains to its catch-all account, and says so."""
    main_cf = "".join(l + "\n" for l in PREPARED.splitlines() if not l.startswith("virtual_alias_maps "))
    done = hostcheck(machine(tmp_path, main_cf), "--for", "test", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "postconf -e 'virtual_alias_maps=regexp:/etc/postfix/m2r-testbed-virtual'" in done.stdout


def test_the_dry_run_says_what_would_change(tmp_path):
    done = hostcheck(machine(tmp_path, INTERNET_SITE), "--for", "test", "--dry-run")
    assert done.returncode == 3
    assert "postconf -e 'inet_interfaces=loopback-only' (now: 'all')" in done.stdout
    assert "postconf -e 'default_transport=error' (now: 'smtp')" in done.stdout
    assert "restart Postfix" in done.stdout


def test_the_demo_ignores_the_mail_system(tmp_path):
    done = hostcheck(machine(tmp_path, INTERNET_SITE), "--for", "demo", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "postconf" not in done.stdout and "dovecot" not in done.stdout


def test_another_mta_is_refused(tmp_path):
    root = machine(tmp_path)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/sendmail").write_text("")
    done = hostcheck(root, "--for", "test")
    assert done.returncode == 3 and "M1 a mail transport agent other than Postfix" in done.stderr


def dovecot(root: Path, *, running: bool = False, enabled: bool = False) -> None:
    (root / "etc/dovecot").mkdir(parents=True)
    (root / "etc/dovecot/dovecot.conf").write_text("!include conf.d/*.conf\n")
    if running:
        (root / "run/dovecot").mkdir(parents=True)
        (root / "run/dovecot/master.pid").write_text(f"{os.getpid()}\n")  # a live process
    if enabled:
        (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
        (root / "etc/systemd/system/multi-user.target.wants/dovecot.service").symlink_to("/lib/systemd/x")


def test_a_running_dovecot_with_mail_is_refused(tmp_path):
    root = machine(tmp_path, PREPARED)
    dovecot(root, running=True)
    (root / "var/mail").mkdir(parents=True)
    (root / "var/mail/alice").write_text("From bob@example.org Mon Jan  1 00:00:00 2026\n\nhello\n")
    done = hostcheck(root, "--for", "test")
    assert done.returncode == 3 and "D1 dovecot runs and" in done.stderr and "var/mail/alice holds mail" in done.stderr


def test_a_dovecot_enabled_at_boot_with_a_local_config_is_refused(tmp_path):
    root = machine(tmp_path, PREPARED)
    dovecot(root, enabled=True)
    (root / "etc/dovecot/local.conf").write_text("protocols = imap\n")
    done = hostcheck(root, "--for", "test")
    assert done.returncode == 3 and "D2 dovecot runs with a local configuration" in done.stderr


def test_a_stopped_dovecot_is_no_concern(tmp_path):
    root = machine(tmp_path, PREPARED)
    dovecot(root)
    (root / "etc/dovecot/local.conf").write_text("protocols = imap\n")
    (root / "var/mail").mkdir(parents=True)
    (root / "var/mail/alice").write_text("mail\n")
    assert hostcheck(root, "--for", "test").returncode == 0


def test_a_redmine_not_set_up_by_the_test_bed_is_refused_by_the_demo_too(tmp_path):
    root = machine(tmp_path)
    (root / "etc/redmine/default").mkdir(parents=True)
    (root / "etc/redmine/default/database.yml").write_text("production:\n  adapter: mysql2\n")
    for kind in ("demo", "test"):
        done = hostcheck(root, "--for", kind)
        assert done.returncode == 3 and "R1 Debian's Redmine instance 'default'" in done.stderr, kind


def test_a_disposable_host_goes_ahead_and_says_what_it_found(tmp_path):
    root = machine(tmp_path, INTERNET_SITE)
    for args, env in ((["--disposable"], {}), ([], {"M2R_DISPOSABLE_HOST": "1"})):
        done = hostcheck(root, "--for", "test", *args, **env)
        assert done.returncode == 0, done.stderr
        assert "declared disposable" in done.stderr and "P2 inet_interfaces = all" in done.stderr


def scripts_copy(tmp_path: Path) -> Path:
    """scripts/test, scripts/setup and scripts/hostcheck as shipped, with every step that
    would change something replaced by one that only leaves a trace."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("test", "setup", "hostcheck", "demo"):
        shutil.copy2(ROOT / "scripts" / name, repo / "scripts" / name)
    for name in ("setup-mail", "setup-redmine", "test-pythons", "test-package", "../.venv/bin/python"):
        stub = repo / "scripts" / name
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text(f"#!/bin/sh\ntouch {tmp_path}/ran-{stub.name}\n")
        stub.chmod(0o755)
    return repo


def test_scripts_test_refuses_before_changing_anything(tmp_path):
    repo = scripts_copy(tmp_path)
    root = machine(tmp_path, INTERNET_SITE)
    done = hostcheck(root, script=str(repo / "scripts/test"))
    assert done.returncode == 3 and "scripts/test refuses" in done.stderr
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == []


def test_scripts_test_on_a_fresh_machine_sets_up_and_runs(tmp_path):
    repo = scripts_copy(tmp_path)
    done = hostcheck(machine(tmp_path), script=str(repo / "scripts/test"), CI="true")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == ["ran-python", "ran-setup-mail", "ran-setup-redmine",
                                                            "ran-test-package", "ran-test-pythons"]


def test_scripts_demo_sets_up_only_redmine(tmp_path):
    repo = scripts_copy(tmp_path)
    done = hostcheck(machine(tmp_path, INTERNET_SITE), script=str(repo / "scripts/demo"))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == ["ran-python", "ran-setup-redmine"]
