"""The planned Redmine change: what route decided and deliver carries out.

A Plan holds names as the operator wrote them (tracker "Support", project "helpdesk")
and people as the mail named them (addresses); ``deliver`` resolves them to ids and
Redmine accounts. ``--dry-run`` prints it as JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PlannedAttachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Person:
    """Someone the mail names, by address."""

    addr: str
    name: str = ""
    #: Where the address came from: "From", or "form field <label>".
    source: str = "From"

    def __str__(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name else self.addr


@dataclass(frozen=True)
class ThreadRef:
    """One sign that the mail answers an existing issue, strongest first in a Plan."""

    #: "issue" or "journal" (a Redmine Message-ID token), "ours" (a mail we filed),
    #: or "subject" (the ``[… #N]`` tag).
    via: str
    issue_id: int | None = None
    journal_id: int | None = None
    #: A journal token's creation time (UTC, ISO 8601): where to start looking for its issue.
    since: str | None = None


@dataclass(frozen=True)
class Plan:
    #: "create" a new issue, "note" on an existing one, or "drop" the mail.
    action: str
    message_id: str | None
    sender: str | None
    subject: str = ""
    description: str = ""
    project: str | None = None
    #: Issue attributes by name: tracker, status, priority, category, assigned_to,
    #: fixed_version, private, custom_fields {name: value}.
    fields: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[PlannedAttachment, ...] = ()
    #: Which rule chose the values: "route #2", "subaddress", "defaults".
    route: str = "defaults"
    #: The guard that dropped the mail, and why.
    guard: str | None = None
    reason: str | None = None
    #: Whom to file as, if Redmine has an account for them and they may.
    author: Person | None = None
    #: False when [sender] authserv_id is set and the From address did not pass it.
    sender_trusted: bool = True
    #: What the Authentication-Results check found (None: not configured).
    authentication: str | None = None
    #: Who really asked (a form's requester field, or the From of the mail).
    requester: Person | None = None
    #: To/Cc addresses that become watchers when they belong to Redmine users.
    watchers: tuple[str, ...] = ()
    #: For "note": the issue it answers (when known without asking Redmine) and every
    #: sign of the thread, strongest first.
    issue_id: int | None = None
    thread: tuple[ThreadRef, ...] = ()
    #: For "note": the reply's own text, quotes and signature removed.
    notes: str = ""
    #: For "note": the new issue to file instead when the issue is missing or locked
    #: ([reply] missing = "new"); None drops the mail then.
    if_missing: Plan | None = None
    #: Filled by deliver on --dry-run: the ids the names resolved to.
    resolved: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=False)
