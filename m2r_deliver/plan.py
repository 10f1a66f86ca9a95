"""The planned Redmine change: what route decided and deliver carries out, and what
became of it (the Outcome, and the Attempt the ledger asks of a delivery).

A Plan holds names as the operator wrote them (tracker "Support", project "helpdesk")
and people as the mail named them (addresses); ``deliver`` resolves them to ids and
Redmine accounts. ``--dry-run`` prints it as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .states import Action, Decision, MailKind, Via
from .valueclass import asdict, field, valueclass


@valueclass(frozen=True)
class PlannedAttachment:
    """One attachment of the mail: to be filed, or left out and why."""

    #: Position in Mail.attachments.
    index: int
    filename: str
    content_type: str
    size: int
    #: Why the file is not filed ("empty", an exclusion pattern, Redmine's refusal), or None.
    left_out: str | None = None


@valueclass(frozen=True)
class Keyword:
    """A ``Name: value`` line of the description that may set an attribute."""

    #: An attribute of config.OVERRIDABLE, or "custom_field".
    attribute: str
    #: The value, checked and converted (a date string, int, float, bool or text).
    value: Any
    #: The line's index in the description, taken out once the keyword is applied.
    line: int
    #: The custom field's name as written.
    name: str = ""
    #: Found only because every custom field may be set: when Redmine has no field of
    #: this name, the line is ordinary text, not a mistake.
    speculative: bool = False


@valueclass(frozen=True)
class Person:
    """Someone the mail names, by address."""

    addr: str
    name: str = ""
    #: Where the address came from: "From", or "form field <label>".
    source: str = "From"

    def __str__(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name else self.addr


@valueclass(frozen=True)
class ThreadRef:
    """One sign that the mail answers an existing issue, strongest first in a Plan."""

    via: Via
    issue_id: int | None = None
    journal_id: int | None = None
    #: A journal token's creation time (UTC, ISO 8601): where to start looking for its issue.
    since: str | None = None
    #: Via.MARKER: the delivery key (``<Message-ID>``) to look up in the marker field.
    key: str | None = None


@valueclass(frozen=True)
class RelayFile:
    """A file added with a relayed journal, as Redmine lists it."""

    attachment_id: int
    filename: str
    content_type: str
    size: int
    #: Goes along with the mail (within [relay] attachments_max), else only named in its text.
    attached: bool = True


@valueclass(frozen=True)
class RelayNote:
    """A journal to mail to the issue's requester, as Redmine's REST API tells it."""

    kind: MailKind
    issue_id: int
    journal_id: int
    subject: str
    project: str
    tracker: str
    url: str
    requester: Person
    #: The journal's author's name as Redmine shows it.
    author: str
    notes: str
    #: The issue's status after the journal.
    status: str
    files: tuple[RelayFile, ...] = ()


@valueclass(frozen=True)
class Plan:
    """What is to be done with the mail: the action and everything Redmine is to be sent."""

    action: Action
    message_id: str | None
    sender: str | None
    subject: str = ""
    description: str = ""
    project: str | None = None
    #: The project the config chose (default or route), which a sub-address may override.
    default_project: str | None = None
    #: The projects the gateway serves for this mail: the [issue] project, the routes'
    #: projects and this mail's sub-address project. A keyword moves an issue only among
    #: them, an outsider's note goes only into them. None: no project is configured, the
    #: mail names its own (any the key's user can see).
    served: tuple[str, ...] | None = None
    #: Issue attributes by name from the config: tracker, status, priority, category,
    #: assigned_to, fixed_version, private, custom_fields {name: value}.
    fields: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[PlannedAttachment, ...] = ()
    #: Keyword lines that may override ``fields``; deliver applies those Redmine knows.
    keywords: tuple[Keyword, ...] = ()
    #: For the log: keyword values not applied, files Redmine refused.
    warnings: tuple[str, ...] = ()
    #: Which rule chose the values: "route #2", "subaddress", "defaults".
    route: str = "defaults"
    #: The guard that dropped or held the mail, and why.
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
    #: (and [reply] missing = "new"), or when the sender may not add a note to it.
    if_missing: Plan | None = None
    #: Filled by deliver on --dry-run: the ids the names resolved to (and, once filed, the
    #: project's and tracker's names as Redmine answered).
    resolved: dict[str, Any] | None = None
    #: Filled on --dry-run when [acknowledge] is on: the acknowledgement a new issue would get.
    acknowledgement: dict[str, Any] | None = None
    #: For "relay": the journal Redmine's notification names (with ``issue_id``), and what
    #: the REST API says of it once read; on --dry-run, the mail that would be sent.
    journal_id: int | None = None
    relay: RelayNote | None = None
    relay_mail: dict[str, Any] | None = None

    def to_json(self) -> str:
        import json

        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=False)


def size_text(size: int) -> str:
    """A file size as people read it: 512 bytes, 10.5 KB, 20.0 MB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


@valueclass(frozen=True)
class Outcome:
    """What was done: the decision, the issue filed or noted, or where a dropped mail was kept."""

    decision: Decision
    issue_id: int | None = None
    url: str | None = None
    #: The login the issue or note was filed as.
    author: str | None = None
    #: Where a dropped or held mail was kept.
    saved: Path | None = None
    #: Why a duplicate is one, or what else the admin should know.
    note: str | None = None
    #: What the reply did to an issue's status, as log fields: ``reopened``/``resumed`` and
    #: the status set, or ``follows`` and the closed issue a new one is related to.
    changed: tuple[tuple[str, str], ...] = ()


@valueclass
class Attempt:
    """What the ledger asks of this delivery, and how far it got (which the ledger needs
    to know whether a failed attempt may have filed the mail)."""

    #: The delivery key; stored in the marker field when the site has one.
    key: str
    #: Ask Redmine whether the mail is already filed before filing it.
    look_first: bool = False
    #: Without a marker field, the look searches what was written since then by content,
    #: skipping the issues of other mail.
    since: float | None = None
    not_these: frozenset[int] = frozenset()
    #: Progress: the look found nothing; the request that files was started.
    looked: bool = False
    sent: bool = False
