"""Route: a parsed Mail and the Settings become a Plan. Pure: no network, no state.

Values come from, in rising order of precedence: the [issue] defaults, the first
[[route]] whose patterns all match, the [form] fields of the body, and a project named
by a sub-address (``redmine+ops@example.org``, rdm-mailhandler's
--project-from-subaddress). A mail that answers an existing issue (thread.py) becomes a
note on it, carrying the new issue to file instead if that issue is gone.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from . import form, keywords, thread
from .config import Route, Settings
from .guards import Verdict
from .guards.own_mail import RedmineOwnMail, journal_notification
from .mail import Mail
from .plan import Person, Plan, PlannedAttachment, ThreadRef
from .states import Action
from .valueclass import replace

SUBJECT_LIMIT = 255  # Redmine's issues.subject column
#: The rule under which a notification of a journal not relayed is dropped (``guard=relay``).
RELAY_RULE = "relay"


def plan_issue(mail: Mail, settings: Settings,
               own_issue: thread.OwnIssueLookup = thread.issue_of_own_message) -> Plan:
    """A new issue, or a note when the mail answers an existing one. *own_issue* maps a
    Message-ID this program filed to its issue (the delivery ledger's lookup)."""
    new = _new_issue(mail, settings)
    refs = thread.references(mail, own_issue, site_key=settings.key, by_marker=bool(settings.marker_field))
    return plan_note(mail, settings, refs, new) if refs else new


def _new_issue(mail: Mail, settings: Settings) -> Plan:
    from . import identity  # the people a new issue names; a dropped mail never needs it

    values: dict[str, Any] = dict(settings.issue)
    chosen = "defaults"
    route = first_matching_route(mail, settings.routes)
    if route is not None:
        values.update(route.values)
        chosen = f"route #{route.index}"
    default_project = values.get("project")
    fields = _form_values(mail, settings)
    if fields:
        form_values = form.attributes(fields, settings.form_fields)
        if "custom_fields" in form_values:
            form_values["custom_fields"] = {**values.get("custom_fields", {}), **form_values["custom_fields"]}
        values.update(form_values)
        chosen = f"{chosen}, form"
    requester = identity.requester(mail, settings.requester_labels,
                                   form.requester_address(fields, settings.requester_labels))
    sender = _sender(mail)
    from_form = requester is not None and requester.source != "From" and form.is_form_sender(mail, settings)
    trusted, finding = identity.authenticate(mail, settings.authserv_id)
    subject = mail.subject
    if fields and settings.form_subject:
        subject = form.subject(settings.form_subject, fields, mail.subject)
    subaddress_project = project_from_subaddress(mail, settings.project_from_subaddress)
    if subaddress_project:
        values["project"] = subaddress_project
        chosen = f"{chosen}, sub-address"
    project = values.pop("project", None)
    body = mail.html_body if settings.prefer_html and mail.html_body else mail.body
    description = truncate_at_delimiters(body, settings.body_delimiters, regex=settings.body_delimiters_regex)
    found, warnings = keywords.find(description, settings.allow_override, project_given=bool(project))
    watchers, not_looked_up = identity.watchers(mail, settings)
    if not_looked_up:
        description = f"{description}\n\n{not_looked_up}" if description else not_looked_up
        warnings = (*warnings, not_looked_up.strip("[]"))
    return Plan(
        action=Action.CREATE,
        message_id=mail.message_id,
        sender=mail.sender.addr if mail.sender else None,
        subject=issue_subject(subject, settings.empty_subject),
        description=description,
        project=project,
        default_project=default_project,
        served=served_projects(settings, subaddress_project),
        fields={k: v for k, v in values.items() if v not in (None, "", {})},
        attachments=tuple(plan_attachments(mail, settings)),
        keywords=found,
        warnings=warnings,
        route=chosen,
        author=requester if from_form else sender,
        sender_trusted=trusted,
        authentication=finding,
        requester=requester,
        watchers=watchers,
    )


def served_projects(settings: Settings, subaddress_project: str | None) -> tuple[str, ...] | None:
    """The projects the gateway serves for a mail (see Plan.served); None when the config
    names none, so that the mail names its own."""
    if not (settings.issue.get("project") or settings.project_from_subaddress
            or any(route.values.get("project") for route in settings.routes)):
        return None
    names = [settings.issue.get("project"), *(route.values.get("project") for route in settings.routes),
             subaddress_project]
    return tuple(dict.fromkeys(str(name) for name in names if name))


def plan_attachments(mail: Mail, settings: Settings):
    """Every attachment, with the reason it is left out: an exclusion pattern, or no
    content (Redmine skips empty files too)."""
    for index, attachment in enumerate(mail.attachments):
        excluded = next((text for text, pattern in settings.excluded_filenames
                         if pattern.fullmatch(attachment.filename)), None)
        reason = (f"matches excluded_filenames {excluded!r}" if excluded is not None
                  else "empty" if attachment.size == 0 else None)
        yield PlannedAttachment(index, attachment_name(attachment.filename), attachment.content_type,
                                attachment.size, reason)


#: Redmine's attachments.filename column, and most file systems' name limit.
FILENAME_LIMIT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def attachment_name(name: str) -> str:
    """The name a file is filed under: without control characters (a NUL makes Redmine
    answer 500), shortened to FILENAME_LIMIT characters keeping its extension (a longer
    one is refused, or the request is too long: 414)."""
    name = _CONTROL.sub("", name).strip() or "attachment"
    if len(name) <= FILENAME_LIMIT:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16:
        return name[:FILENAME_LIMIT]
    return stem[:FILENAME_LIMIT - len(extension) - 1] + "." + extension


def plan_note(mail: Mail, settings: Settings, refs: tuple[ThreadRef, ...], new: Plan) -> Plan:
    """A note on the issue *refs* point at, by the From address; *new* is filed instead
    when that issue is missing or locked and [reply] missing = "new"."""
    text = truncate_at_delimiters(mail.body, settings.body_delimiters + settings.reply_delimiters,
                                  regex=settings.body_delimiters_regex)
    from . import quotes  # only replies need it

    notes = quotes.strip_reply(text)
    # Keywords in a reply change the issue (``Status: Resolved`` closes it), under the same
    # allow_override rules; a reply never moves the issue to another project.
    found, warnings = keywords.find(notes, settings.allow_override, project_given=True)
    from . import identity  # loaded by plan_issue already: a note is planned with its new issue

    _, not_looked_up = identity.watchers(mail, settings)
    if not_looked_up:
        notes = f"{notes}\n\n{not_looked_up}" if notes else not_looked_up
        warnings = (*warnings, not_looked_up.strip("[]"))
    return replace(
        new,
        action=Action.NOTE,
        description="",
        project=None,
        fields={},  # Redmine likewise ignores the new-issue defaults on a reply
        keywords=found,
        warnings=warnings,
        route="reply",
        author=_sender(mail),
        requester=None,
        issue_id=next((ref.issue_id for ref in refs if ref.issue_id), None),
        thread=refs,
        notes=notes,
        if_missing=new,
    )


def _sender(mail: Mail) -> Person | None:
    return Person(mail.sender.addr, mail.sender.name, "From") if mail.sender else None


def _form_values(mail: Mail, settings: Settings) -> dict[str, str]:
    labels = {*settings.requester_labels, *settings.form_fields, *form.template_labels(settings.form_subject)}
    return form.read_fields(mail.body, labels) if labels and form.applies(mail, settings) else {}


def plan_stopped(mail: Mail, verdict: Verdict, settings: Settings) -> Plan:
    """A mail a guard stopped: dropped or held — but with [relay] on, Redmine's own
    notification of a journal becomes a relay of that journal (relay.py reads it over REST
    and decides). Redmine's mail is never filed either way."""
    journal = (journal_notification(mail) if settings.relay.enabled and verdict.guard == RedmineOwnMail.name
               else None)
    if journal is None:
        if not settings.outgoing.from_address:  # the program sends nothing: no bounce is ours
            return plan_drop(mail, verdict.guard, verdict.reason, verdict.action)
        from .own_bounce import bounce_or_drop  # a bounce of our own mail becomes a private note

        return bounce_or_drop(mail, verdict, settings)
    return Plan(action=Action.RELAY, message_id=mail.message_id, sender=mail.sender.addr if mail.sender else None,
                subject=mail.subject, route=RELAY_RULE, issue_id=journal[0], journal_id=journal[1])


def plan_drop(mail: Mail, guard: str, reason: str, action: Action = Action.DROP) -> Plan:
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
    it); with *regex*, a delimiter is a regular expression the whole line must match."""
    if not delimiters:
        return body
    wanted = {d.strip() for d in delimiters if d.strip()}
    patterns = [re.compile(d) for d in wanted] if regex else []
    lines = body.split("\n")
    for number, line in enumerate(lines):
        text = re.sub(r"^[> ]*", "", line).strip()
        matched = any(p.fullmatch(text) for p in patterns) if regex else text in wanted
        if matched:
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
