"""Route: a parsed Mail and the Settings become a Plan. Pure: no network, no state.

Values come from, in rising order of precedence: the [issue] defaults, the first
[[route]] whose patterns all match, and a project named by a sub-address
(``redmine+ops@example.org``, rdm-mailhandler's --project-from-subaddress).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from . import keywords
from .config import Route, Settings
from .mail import Mail
from .plan import Plan, PlannedAttachment

SUBJECT_LIMIT = 255  # Redmine's issues.subject column


def plan_issue(mail: Mail, settings: Settings) -> Plan:
    values: dict[str, Any] = dict(settings.issue)
    chosen = "defaults"
    route = first_matching_route(mail, settings.routes)
    if route is not None:
        values.update(route.values)
        chosen = f"route #{route.index}"
    subaddress_project = project_from_subaddress(mail, settings.project_from_subaddress)
    if subaddress_project:
        values["project"] = subaddress_project
        chosen = f"{chosen}, sub-address"
    project = values.pop("project", None)
    body = mail.html_body if settings.prefer_html and mail.html_body else mail.body
    description = truncate_at_delimiters(body, settings.body_delimiters, regex=settings.body_delimiters_regex)
    found, warnings = keywords.find(description, settings.allow_override, project_given=bool(project))
    return Plan(
        action="create",
        message_id=mail.message_id,
        sender=mail.sender.addr if mail.sender else None,
        subject=issue_subject(mail.subject, settings.empty_subject),
        description=description,
        project=project,
        fields={k: v for k, v in values.items() if v not in (None, "", {})},
        attachments=tuple(plan_attachments(mail, settings)),
        keywords=found,
        warnings=warnings,
        route=chosen,
    )


def plan_attachments(mail: Mail, settings: Settings):
    """Every attachment, with the reason it is left out: an exclusion pattern, or no
    content (Redmine skips empty files too)."""
    for index, attachment in enumerate(mail.attachments):
        excluded = next((text for text, pattern in settings.excluded_filenames
                         if pattern.fullmatch(attachment.filename)), None)
        reason = (f"matches excluded_filenames {excluded!r}" if excluded is not None
                  else "empty" if attachment.size == 0 else None)
        yield PlannedAttachment(index, attachment.filename, attachment.content_type, attachment.size, reason)


def plan_drop(mail: Mail, guard: str, reason: str, action: str = "drop") -> Plan:
    """A mail a guard stopped: dropped, or held by the rate limit (*action* "hold")."""
    return Plan(
        action=action,
        message_id=mail.message_id,
        sender=mail.sender.addr if mail.sender else None,
        subject=mail.subject,
        guard=guard,
        reason=reason,
    )


def issue_subject(subject: str, placeholder: str) -> str:
    subject = " ".join(subject.split())
    return (subject or placeholder)[:SUBJECT_LIMIT]


def truncate_at_delimiters(body: str, delimiters: tuple[str, ...], *, regex: bool = False) -> str:
    """Cut the body at the first line that is a delimiter (quote markers allowed before
    it), or with *regex* a line the whole of which a delimiter expression matches."""
    if not delimiters:
        return body
    wanted = {d.strip() for d in delimiters if d.strip()}
    lines = body.split("\n")
    for number, line in enumerate(lines):
        line = re.sub(r"^[> ]*", "", line).strip()
        if any(re.fullmatch(d, line) for d in wanted) if regex else line in wanted:
            return "\n".join(lines[:number]).rstrip()
    return body


def _matches(patterns: tuple[str, ...], candidates: list[str], *, regex: bool = False) -> bool:
    for pattern in patterns:
        for candidate in candidates:
            if regex and re.search(pattern, candidate, re.IGNORECASE):
                return True
            if not regex and fnmatch.fnmatchcase(candidate.lower(), pattern.lower()):
                return True
    return False


def first_matching_route(mail: Mail, routes: tuple[Route, ...]) -> Route | None:
    fields = {
        "from": [a for a in (mail.sender.addr if mail.sender else None, mail.envelope_sender) if a],
        "to": list(mail.recipients),
        "list_id": [mail.list_id] if mail.list_id else [],
        "subject": [mail.subject],
    }
    for route in routes:
        if all(_matches(patterns, fields[name], regex=name == "subject") for name, patterns in route.match.items()):
            return route
    return None


def project_from_subaddress(mail: Mail, address: str | None) -> str | None:
    """``user+project@domain`` among the recipients names the project."""
    if not address or "@" not in address:
        return None
    local, domain = address.lower().split("@", 1)
    pattern = re.compile(rf"^{re.escape(local)}\+([^@]+)@{re.escape(domain)}$")
    for recipient in mail.recipients:
        match = pattern.match(recipient)
        if match:
            return match.group(1)
    return None
