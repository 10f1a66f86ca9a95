"""The test-bed Redmine as the tests see it (``Testbed``: the tests' own REST calls and
reads), an operator's site around the installed program (``Site``), test data made in the
shared test bed at test time (unique names, never global settings), and Redmine's
notification mails read back from its mail_dir: Redmine sends them by SMTP to the local
Postfix, whose catch-all account files them there (testbed.json ``"notifications":
"smtp"``, as scripts/setup-mail prepares a test machine), or writes them there itself
(``"file"``, a machine without the mail system)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import requests

from support.paths import TESTBED_DIR, console_script


@dataclass
class Testbed:
    info: dict = field(repr=False)  # it holds every user's API key: kept out of failure reports
    url: str = ""
    admin_key: str = field(default="", repr=False)

    def api(self, method: str, path: str, key: str | None = None, **kwargs) -> requests.Response:
        """The tests' own REST call (setting up users, issues, notes; reading results). The
        test bed's SQLite answers 500 "database is locked" now and then when Redmine's mail
        jobs write at the same moment; the tests' own calls try again then (what
        m2r-deliver does with a 500 is tested on its own: it tempfails)."""
        headers = {"X-Redmine-API-Key": key or self.admin_key}
        for pause in (1, 2, 4, 0):
            response = requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)
            if response.status_code != 500 or not pause:
                return response
            time.sleep(pause)
        return response

    def get(self, path: str, **params) -> dict:
        response = self.api("GET", path, params=params)
        response.raise_for_status()
        return response.json()

    def issue(self, issue_id: int, include: str = "attachments,journals") -> dict:
        return self.get(f"/issues/{issue_id}.json", include=include)["issue"]

    def issues_with_subject(self, text: str, project: str | None = None) -> list[dict]:
        """Issues whose subject contains *text*, any status, newest first."""
        params = {"status_id": "*", "subject": f"~{text}", "sort": "id:desc", "limit": 100}
        if project:
            params["project_id"] = project
        return self.get("/issues.json", **params)["issues"]

    def issue_count(self) -> int:
        return self.get("/issues.json", status_id="*", limit=1)["total_count"]

    def journal_count(self) -> int:
        """Notes across all issues: the sum over every issue's journals."""
        total = 0
        offset = 0
        while True:
            page = self.get("/issues.json", status_id="*", limit=100, offset=offset)
            for issue in page["issues"]:
                total += len(self.issue(issue["id"], include="journals").get("journals", []))
            offset += 100
            if offset >= page["total_count"]:
                return total


@dataclass
class Delivered:
    returncode: int
    stdout: str
    stderr: str
    log: str


class Site:
    """One operator's setup in a temporary home: config, key file, state dir, log."""

    def __init__(self, home: Path, url: str, key: str):
        self.home = home
        self.url = url
        self.key_file = home / "api-key"
        self.key_file.write_text(key)
        self.key_file.chmod(0o600)
        self.state_dir = home / "state"
        self.log_file = home / "m2r.log"
        self.config_path = home / "config.toml"
        self.write_config()

    def write_config(self, extra: str = "", *, issue: str = 'project = "helpdesk"\ntracker = "Support"',
                     redmine: str = "timeout = 10", url: str | None = None) -> Path:
        self.config_path.write_text(
            f'[redmine]\nurl = "{url or self.url}"\nkey_file = "{self.key_file}"\n{redmine}\n\n'
            f"[issue]\n{issue}\n\n"
            f'[state]\ndir = "{self.state_dir}"\n\n'
            f'[log]\nsyslog = false\nfile = "{self.log_file}"\n\n{extra}'
        )
        self.config_path.chmod(0o600)
        return self.config_path

    def deliver(self, mail: bytes, *args: str, timeout: float = 120, env: dict | None = None) -> Delivered:
        command = [console_script(), "--config", str(self.config_path), *args]
        proc = subprocess.run(command, input=mail, capture_output=True, timeout=timeout,
                              env={**os.environ, "HOME": str(self.home), **(env or {})})
        log = self.log_file.read_text() if self.log_file.exists() else ""
        return Delivered(proc.returncode, proc.stdout.decode(), proc.stderr.decode(), log)

    def last_log_line(self) -> str:
        lines = self.log_file.read_text().splitlines() if self.log_file.exists() else []
        return lines[-1] if lines else ""


ISSUE_LINE = re.compile(r"decision=filed issue=#(\d+)")


def filed_issue_id(result: Delivered) -> int:
    """The issue the delivery's log line names, after checking it was silent and exit 0."""
    assert result.returncode == 0, result
    assert result.stdout == "" and result.stderr == "", result
    match = ISSUE_LINE.search(result.log.strip().splitlines()[-1])
    assert match, result.log
    return int(match.group(1))


def created(testbed, path: str, body: dict, kind: str) -> dict:
    """POST *body* and return the created *kind*. The shared SQLite test bed answers 500
    (database is locked) under load; such a request was rolled back and is sent again."""
    for _ in range(3):
        response = testbed.api("POST", path, json=body)
        if response.status_code < 500:
            break
    assert response.status_code == 201, (response.status_code, response.text)
    return response.json()[kind]


def make_user(testbed, login: str, name: str = "Test User", **user) -> dict:
    first, _, last = name.partition(" ")
    body = {"user": {"login": login, "firstname": first, "lastname": last or "-", "mail": f"{login}@example.com",
                     "password": "Passw0rd-" + login, **user}}
    return created(testbed, "/users.json", body, "user")


def make_project(testbed, identifier: str, *, public: bool = True, **fields) -> dict:
    body = {"project": {"name": f"Test {identifier}", "identifier": identifier, "is_public": public, **fields}}
    return created(testbed, "/projects.json", body, "project")


def make_issue(testbed, subject: str, project: str = "helpdesk", **fields) -> int:
    body = {"issue": {"project_id": project, "subject": subject, "tracker_id": testbed.info["trackers"]["Bug"],
                      "priority_id": testbed.info["priorities"]["Normal"], **fields}}
    return created(testbed, "/issues.json", body, "issue")["id"]


def add_note(testbed, issue_id: int, notes: str, **fields) -> dict:
    """Add a note as the admin and return it (the issue's newest journal)."""
    response = testbed.api("PUT", f"/issues/{issue_id}.json", json={"issue": {"notes": notes, **fields}})
    assert response.status_code == 204, response.text
    return testbed.issue(issue_id)["journals"][-1]


def wait_for(condition, what: str, timeout: float = 180, *, failure: type[Exception] = AssertionError):
    """Poll until *condition* returns something truthy (Redmine mails asynchronously; a
    mail system hands over in its own time). A bound on a test, not a timing check."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise failure(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def notifications_by_smtp() -> bool:
    """Whether the test-bed Redmine sends its notifications by SMTP (testbed.json)."""
    try:
        return json.loads((TESTBED_DIR / "testbed.json").read_text()).get("notifications") == "smtp"
    except (OSError, ValueError):
        return False


def smtp_answers(host: str = "127.0.0.1", port: int = 25) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def notifications(testbed, address: str) -> list[Message]:
    """Every mail Redmine sent to *address*, as filed in its mail_dir (by the catch-all
    account behind Postfix, or by Redmine itself): back to back, each starting at its
    Date: header."""
    path = Path(testbed.info["mail_dir"]) / address
    if not path.exists():
        return []
    raw = path.read_bytes()
    chunks = re.split(rb"(?m)^(?=Date: [^\n]*\r?\nFrom: )", raw)
    return [email.message_from_bytes(c, policy=email.policy.compat32) for c in chunks if c.strip()]


def notification_about(testbed, address: str, issue_id: int, kind: str = "issue") -> Message | None:
    """The newest notification of *kind* ("issue": the new issue, "journal": a note)
    about *issue_id* sent to *address*."""
    for message in reversed(notifications(testbed, address)):
        if message.get("X-Redmine-Issue-Id") == str(issue_id) and f"redmine.{kind}-" in message.get("Message-ID", ""):
            return message
    return None


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


def filed_issue(result: Delivered, testbed: Testbed) -> dict:
    """The issue the delivery filed (or noted on), read back from Redmine."""
    return testbed.issue(filed_issue_id(result))


def mail_text(issue: dict) -> str:
    """The description below the "Requester: …" line that an issue from an unknown
    sender starts with (docs/guide.md: Who files the issue); the line itself is tested in test_identity."""
    text = issue["description"].replace("\r\n", "\n")
    header, blank, rest = text.partition("\n\n")
    assert header.startswith("Requester: ") and blank, text
    return rest


# -- a site's deliveries as the exactly-once tests read them ---------------------------

def log_lines(site):
    return site.log_file.read_text().splitlines() if site.log_file.exists() else []


def decision(line):
    return re.search(r"decision=(\S+)", line).group(1)


def assert_silent(result, status):
    assert result.returncode == status, result
    assert result.stdout == "" and result.stderr == ""


def start_delivery(site, mail):
    """Run m2r-deliver in the background as the mail system does; returns the process."""
    proc = subprocess.Popen([console_script(), "--config", str(site.config_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HOME": str(site.home)})
    proc.stdin.write(mail)
    proc.stdin.close()
    return proc


def killed_while_held(site, proxy, mail: bytes, sig: int) -> None:
    """Deliver *mail* in the background through *proxy* (in "hold" mode), and once Redmine
    has saved what it filed, stop the program with *sig*: silent, 75 after SIGTERM."""
    proc = start_delivery(site, mail)
    assert proxy.posted.wait(timeout=120), "the filing request never reached Redmine"
    proc.send_signal(sig)
    status = proc.wait(timeout=60)
    assert (proc.stdout.read(), proc.stderr.read()) == (b"", b"")
    assert status == (75 if sig == signal.SIGTERM else -signal.SIGKILL)


def imported_modules(site, mail: bytes, *args: str) -> set[str]:
    """Every module the installed program imported while handling *mail*, as Python's
    own -X importtime reports it."""
    command = [sys.executable, "-X", "importtime", console_script(), "--config", str(site.config_path), *args]
    proc = subprocess.run(command, input=mail, capture_output=True, timeout=120,
                          env={**os.environ, "HOME": str(site.home)})
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.decode().splitlines()
             if line.startswith("import time:") and "|" in line}
    assert "m2r_deliver.pipeline" in names, proc.stderr[-2000:]
    return names
