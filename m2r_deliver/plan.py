"""The planned Redmine change: what route decided and deliver carries out.

A Plan holds names as the operator wrote them (tracker "Support", project "helpdesk");
``deliver`` resolves them to ids. ``--dry-run`` prints it as JSON.
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
class Plan:
    #: "create" a new issue, "drop" the mail (a guard fired), or "hold" it (the rate limit).
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
    #: The guard that dropped or held the mail, and why.
    guard: str | None = None
    reason: str | None = None
    #: Filled by deliver on --dry-run: the ids the names resolved to.
    resolved: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=False)
