"""Test data made in the shared test-bed Redmine at test time (unique names, never
global settings), and Redmine's notification mails read back from its mail_dir."""

from __future__ import annotations

import email
import email.policy
import re
import time
from email.message import Message
from pathlib import Path

ISSUE_LINE = re.compile(r"decision=filed issue=#(\d+)")


def filed_issue_id(result) -> int:
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


def make_project(testbed, identifier: str, *, public: bool = True) -> dict:
    body = {"project": {"name": f"Test {identifier}", "identifier": identifier, "is_public": public}}
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


def notifications(testbed, address: str) -> list[Message]:
    """Every mail Redmine wrote for *address* (its file holds them back to back, each
    starting at its Date: header)."""
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
