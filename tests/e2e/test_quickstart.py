"""The README's "Quick start from zero", walked as a new administrator walks it, against
the installed Debian package, the test-bed Redmine and the machine's Postfix and procmail.

The shell blocks are read from README.md, not retyped here: a step the README drops or
changes is dropped or changed here too. What a reader fills in is filled in: the account
(a fresh one), the address (that account at localhost, which Postfix receives), the
Redmine URL, key and project of the test bed, the ``editor`` lines (the settings their
comments name), and a token in the test mail's subject. Where ``m2r-deliver check`` says
the log would be lost (a machine with no syslog socket), its advice is followed.

scripts/test-package runs it (M2R_REQUIRE_PACKAGE=1); elsewhere it skips, saying why."""

from __future__ import annotations

import os
import pwd
import re
import subprocess

import pytest

from support.paths import ROOT
from support.testbed import wait_for

from .chain import SYSTEM_PATH, HostError, running_as

pytestmark = pytest.mark.package

PROGRAM = "/usr/bin/m2r-deliver"
README = ROOT / "README.md"
#: What the quick start writes in for what a reader fills in.
ACCOUNT = "helpdesk"
ADDRESS = "helpdesk@example.org"
API_KEY = "'the-api-key'"
CONFIG = "~/.config/m2r-deliver/config.toml"
#: The key reaches the user's shell in its environment, never in a command line or output.
KEY_VARIABLE = "M2R_QUICKSTART_KEY"
LOG_ADVICE = re.compile(r'no syslog socket .*set \[log\] file = ("[^"]+")')


def quick_start_steps() -> list[tuple[str, list[tuple[str, str]]]]:
    """The numbered steps of the section: (the step's prose, its fenced blocks as
    (language, text)), in order."""
    text = README.read_text()
    if "\n## Quick start from zero\n" not in text:
        pytest.fail("README.md has no section \"Quick start from zero\"", pytrace=False)
    section = text.split("\n## Quick start from zero\n", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"(?m)^\*\*\d+\. ", section)[1:]
    fence = re.compile(r"(?ms)^```(\w*)\n(.*?)^```\n?")
    return [(fence.sub("", part), fence.findall(part)) for part in parts]


@pytest.fixture
def package(mail_host) -> None:
    owner = subprocess.run(["dpkg-query", "-S", PROGRAM], capture_output=True, text=True,
                           env={**os.environ, "PATH": SYSTEM_PATH})
    if owner.returncode != 0 or not owner.stdout.startswith("m2r-deliver:"):
        reason = (f"{PROGRAM} is not installed from the Debian package: the quick start is walked by "
                  "scripts/test-package, which builds and installs it")
        if os.environ.get("M2R_REQUIRE_PACKAGE") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


class Administrator:
    """The reader at the keyboard: root's shell, then the account's (``su - ACCOUNT``)."""

    def __init__(self, account: str, address: str, testbed, token: str):
        self.account, self.address, self.testbed, self.token = account, address, testbed, token
        self.as_user = False
        self.log_file: str | None = None  # set when check says to
        self.log_command = ""  # the README's, to read the journal
        self.subject = ""  # of the mail the quick start sends
        self.transcript: list[str] = []

    def filled_in(self, block: str) -> str:
        """The block with the reader's values in place of the README's."""
        block = block.replace(ADDRESS.replace(".", "\\."), self.address).replace(ADDRESS, self.address)
        block = re.sub(rf"\b{ACCOUNT}\b", self.account, block)
        block = block.replace(API_KEY, f'"${KEY_VARIABLE}"')
        block = re.sub(r"Subject: ([^\\']+)", self.with_token, block)
        return "\n".join(self.edited(line) for line in block.splitlines())

    def with_token(self, subject: re.Match) -> str:
        self.subject = f"{subject.group(1)} {self.token}"
        return f"Subject: {self.subject}"

    def edited(self, line: str) -> str:
        """``editor FILE  # what to set``, done without an editor: ``NAME=VALUE`` as given,
        a bare key name with the test bed's value."""
        match = re.match(r"\s*editor\s+(\S+)\s*#\s*(.*)", line)
        if not match:
            return line
        path, wanted = match.groups()
        assignments = re.findall(r"([A-Z_]+)=(\S+)", wanted)
        values = {"url": self.testbed.url, "project": self.testbed.info["project"]}
        if not assignments:
            keys = [key.strip() for key in wanted.split(",")]
            unknown = [key for key in keys if key not in values]
            if unknown:
                pytest.fail(f"README.md: {line.strip()!r} asks to set {unknown}, which this test cannot fill in")
            assignments = [(key, f'"{values[key]}"') for key in keys]
        separator = " = " if path.endswith(".toml") else "="
        return "\n".join(f"grep -q '^{key}{separator}' {path}\n"
                         f"sed -i 's|^{key}{separator}.*|{key}{separator}{value}|' {path}"
                         for key, value in assignments)

    def run(self, script: str, step: str) -> str:
        """A block, stopping at its first failing command; its output, for the next step."""
        done = self.shell(script)
        self.transcript.append(f"--- {step} (as {self.account if self.as_user else 'root'}), "
                               f"exit {done.returncode}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            pytest.fail("a step of the quick start failed; the walk so far:\n" + "\n".join(self.transcript),
                        pytrace=False)
        return done.stdout

    def shell(self, script: str) -> subprocess.CompletedProcess:
        if self.as_user:
            argv = ["runuser", "-l", self.account, "-w", KEY_VARIABLE, "-c", "set -e\n" + script]
        else:
            argv = ["bash", "-e", "-c", script]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                              env={**os.environ, "PATH": SYSTEM_PATH, KEY_VARIABLE: self.testbed.admin_key})

    def follow(self, steps) -> None:
        for number, (prose, blocks) in enumerate(steps, 1):
            self.as_user = self.as_user or f"su - {ACCOUNT}" in prose
            for language, block in blocks:
                step = f"step {number}, {language} block"
                if language == "sh":
                    script = self.filled_in(block)
                    journal = re.search(r"(?m)^journalctl .*$", script)
                    if journal:  # read once the mail is through; or not at all when check said where
                        self.log_command = journal.group(0)
                        script = script.replace(self.log_command, "")
                    self.take_advice(self.run(script, step), step)
                elif language == "toml":  # a setting the step says to put in the config
                    self.append_to_config(self.filled_in(block), step)
                    self.run("m2r-deliver check", f"{step}: check again")
                else:
                    pytest.fail(f"README.md quick start, {step}: a block this test cannot run", pytrace=False)

    def take_advice(self, output: str, step: str) -> None:
        """What ``m2r-deliver check`` says to do about the log, done."""
        advice = LOG_ADVICE.search(output)
        if advice and not self.log_file:
            self.log_file = advice.group(1).strip('"')
            self.append_to_config(f"[log]\nfile = {advice.group(1)}\n", f"{step}: as check advises")

    def append_to_config(self, toml: str, step: str) -> None:
        self.run(f"cat >> {CONFIG} <<'EOF'\n\n{toml.rstrip()}\nEOF", step)

    def log(self) -> str:
        """The log lines, read where they went: the file check asked for, or the journal,
        as the README reads it."""
        if not (self.log_file or self.log_command):
            pytest.fail("the quick start never says where to read the log", pytrace=False)
        done = self.shell(f"cat {self.log_file}" if self.log_file else self.log_command)
        return done.stdout + done.stderr


def remove_account(name: str) -> None:
    """The account, its home, its mailbox, its group; after the mail system is done with it."""
    try:
        home = pwd.getpwnam(name).pw_dir
    except KeyError:
        return
    try:
        wait_for(lambda: not running_as(name), f"the processes of {name} to end", timeout=60, failure=HostError)
    finally:
        subprocess.run(["userdel", "--remove", "--force", name], capture_output=True, timeout=60,
                       env={**os.environ, "PATH": SYSTEM_PATH})
    if os.path.exists(home) or os.path.exists(f"/var/mail/{name}"):
        raise HostError(f"userdel --remove {name} left its home or mailbox")


def test_the_readmes_quick_start_files_a_mail_sent_through_postfix_and_procmail(package, postfix, testbed, token):
    account = f"m2rqs{token[:8]}"
    admin = Administrator(account, f"{account}@localhost", testbed, token)
    try:
        admin.follow(quick_start_steps())
        assert admin.as_user, "the quick start never says to go on as the new account (su -)"
        assert admin.subject, "the quick start sends no test mail (printf 'Subject: …' | sendmail)"

        def filed() -> list[dict]:
            return testbed.issues_with_subject(token)

        try:
            [issue] = wait_for(filed, f"an issue whose subject has {token}", timeout=180)
        except AssertionError:
            mailbox = f"/var/mail/{account}"
            pytest.fail("no issue filed; the walk:\n" + "\n".join(admin.transcript)
                        + f"\n--- Postfix's queue for {account}: {postfix.queued_for(account)}"
                        + f"\n--- {mailbox}: {os.path.getsize(mailbox) if os.path.exists(mailbox) else 0} bytes",
                        pytrace=False)
        assert (issue["subject"], issue["project"]["id"]) == (
            admin.subject, testbed.info["projects"][testbed.info["project"]])
        line = f"decision=filed issue=#{issue['id']} "
        wait_for(lambda: line in admin.log(), f"{line!r} in the log ({admin.log_file or 'the journal'})", timeout=60)
        assert not os.path.exists(f"/var/mail/{account}") or os.path.getsize(f"/var/mail/{account}") == 0
    finally:
        postfix.discard_queued_for(account)
        remove_account(account)
