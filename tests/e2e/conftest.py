"""Fixtures for the mail-chain tests. They need root (they make local users and run
Postfix and dovecot) on Debian with the mail programs installed (scripts/setup installs
them); elsewhere they skip and say why. Under scripts/test (M2R_REQUIRE_CHAIN=1) and in CI
(CI=true) they fail instead, so CI cannot pass by skipping them."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from support.paths import in_ci
from support.testbed import notifications_by_smtp

from .chain import SYSTEM_PATH, Dovecot, LocalUser, Postfix, program_for_users, running_as, wait_for

PROGRAMS = ("procmail", "fetchmail", "dovecot", "postfix", "postconf", "postqueue", "postsuper", "sendmail",
            "openssl", "useradd", "userdel")


def cannot_run(reason: str):
    if os.environ.get("M2R_REQUIRE_CHAIN") == "1" or in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mail_host() -> None:
    if sys.platform != "linux" or not Path("/etc/debian_version").exists():
        cannot_run("the mail-chain tests run the Debian packages of procmail, fetchmail, dovecot and Postfix")
    if os.geteuid() != 0:
        cannot_run("the mail-chain tests need root: they create local users and run Postfix and dovecot")
    missing = [name for name in PROGRAMS if not shutil.which(name, path=SYSTEM_PATH)]
    if missing:
        cannot_run(f"not installed: {', '.join(missing)} (scripts/setup installs them)")


@pytest.fixture
def local_user(mail_host, testbed, token):
    """A fresh ordinary user whose home holds m2r-deliver's API key; removed afterwards."""
    user = LocalUser(f"m2r{token}", testbed.admin_key)
    try:
        probe = user.run([program_for_users(), "--version"])
        if probe.returncode != 0:
            cannot_run(f"an ordinary user cannot run {program_for_users()} "
                       f"({probe.stderr.decode(errors='replace').strip()[:200]})")
        yield user
    finally:
        user.remove()


@pytest.fixture(scope="session")
def dovecot(mail_host):
    server = Dovecot(Path(tempfile.mkdtemp(prefix="m2r-dovecot-")), f"m2rstore{secrets.token_hex(3)}")
    taken = server.ports_taken()
    if taken:
        shutil.rmtree(server.workdir)
        cannot_run(f"port(s) {taken} on 127.0.0.1 already in use (the system's dovecot? scripts/setup disables it)")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redmine_by_smtp(testbed) -> None:
    """The test-bed Redmine sends its notifications by SMTP to the system's Postfix
    (testbed.json; testbed/redmine-testbed does so where scripts/setup-mail prepared Postfix)."""
    if not notifications_by_smtp():
        cannot_run("the test-bed Redmine writes its notifications to files: run scripts/setup-mail, "
                   "then testbed/redmine-testbed up")


@pytest.fixture(scope="session")
def postfix(mail_host):
    mta = Postfix()
    unsafe = mta.unsafe_settings()
    if unsafe:
        cannot_run(f"Postfix is not set up loopback-only without relay: {'; '.join(unsafe)} (scripts/setup does it)")
    mta.start()
    yield mta
    if not notifications_by_smtp():  # else the test-bed Redmine sends through it: it stays up
        mta.stop()


@pytest.fixture
def requester(mail_host, postfix, token):
    """The person who filled in the form: a local account without a Redmine account."""
    user = LocalUser(f"m2r-req-{token[:8]}", "not used")
    try:
        yield user
    finally:
        postfix.discard_queued_for(user.name)
        wait_for(lambda: not running_as(user.name), f"the local delivery to {user.name} to end", timeout=60)
        user.remove()
