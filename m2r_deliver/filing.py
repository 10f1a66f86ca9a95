"""Filing: a Plan carried out in Redmine (or, on --dry-run, only resolved).

A new issue is filed (a note: notes.py) as the user identity.py chooses, through a connection
that switches to that user (python-redmine takes ``impersonate`` only when the
connection is made). If Redmine refuses to act as them (403, or 412 for an account
locked meanwhile), the mail goes to the fallback instead.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from redminelib import Redmine

from . import identity, keywords, relay_account
from .config import Settings
from .errors import ConfigError, RedmineRefused
from .identity import Acting, Ignored
from .keyed import Keyed, Limits, configured_project, merged, resolve_keywords
from .mail import Mail
from .maildir import keep_stopped
from .plan import Attempt, Keyword, Outcome, Plan, PlannedAttachment, size_text
from .redmine.cache import NameCache
from .redmine.client import connect
from .redmine.find import find_by_content, find_by_marker
from .redmine.issues import (add_watcher, create_issue, custom_values, not_taken)
from .redmine.names import Resolver, resolve_fields
from .redmine.uploads import upload_attachments
from .redmine.users import Directory
from .states import Action, Decision
from .valueclass import replace, valueclass

T = TypeVar("T")


def file(plan: Plan, mail: Mail, settings: Settings, attempt: Attempt, *, dry_run: bool = False,
         ) -> tuple[Outcome, Plan]:
    """File the plan (a new issue, or a note) unless Redmine already has it."""
    site = Site(settings, attempt)
    if plan.action == Action.NOTE:
        from .notes import file_note  # a reply's own path

        return file_note(plan, mail, site, dry_run)
    if plan.action == Action.BOUNCE_NOTE:
        from .bounce_note import file_bounce_note  # a bounce of our own mail

        return file_bounce_note(plan, mail, site, dry_run)
    return file_issue(plan, mail, site, dry_run)


class Site:
    """One delivery's view of Redmine: the key's connection, names, users."""

    def __init__(self, settings: Settings, attempt: Attempt):
        self.settings, self.attempt = settings, attempt
        self.connection: Redmine = connect(settings)
        self.cache = NameCache(settings.state_dir / "names.json", settings.cache_ttl, settings.url)
        self.resolver = Resolver(self.connection, self.cache)
        self.directory = Directory(self.connection, self.resolver)

    def connection_for(self, acting: Acting) -> Redmine:
        if not acting.impersonate:
            return self.connection
        return connect(self.settings, impersonate=acting.impersonate)

    def upload(self, plan: Plan, mail: Mail, acting: Acting) -> tuple[list[dict[str, Any]], Plan]:
        """Upload the plan's files as the acting user; the plan then names the files Redmine
        would not take, in its description and its warnings."""
        files = [(a, mail.attachments[a.index]) for a in plan.attachments]
        uploads, refused = upload_attachments(self.connection_for(acting), self.cache, files)
        return uploads, _with_refused(plan, refused)

    def accounts(self, addresses: tuple[str, ...]) -> list[identity.Account]:
        """The active accounts of *addresses* (none without an admin key: users cannot be
        listed); an address no account can have is not looked up."""
        if not addresses or not self.directory.me().admin:
            return []
        found = (self.directory.account_by_mail(addr) for addr in addresses if identity.plausible_address(addr))
        return [account for account in found if account and account.active]

    def served(self, plan: Plan) -> frozenset[int] | None:
        """The ids of the projects the gateway serves for this mail; None: any."""
        if plan.served is None:
            return None
        return frozenset(found for found in map(self.resolver.find_project, plan.served) if found is not None)

    def limits(self, plan: Plan) -> Limits:
        """What the mail's keywords may not do: leave the served projects, set the marker
        or the requester field."""
        served = self.served(plan)
        reserved = {marker_field(self.resolver, self.settings)}
        if self.settings.requester_field:
            found = self.resolver.custom_field(self.settings.requester_field)
            reserved.add(found["id"] if found else None)
        return Limits(None if served is None else served.__contains__,
                      frozenset(field for field in reserved if field is not None))

    def relay_watcher(self, plan: Plan, acting: Acting, record: identity.RequesterRecord) -> int | None:
        """The relay account's id when the new issue needs it as a watcher (relay_account.py)."""
        if not relay_account.watches(self.settings, plan.requester, acting, record):
            return None
        return relay_account.account(self.directory, self.settings).id

    def file_as(self, acting: Acting, plan: Plan, do: Callable[[Acting], T]) -> tuple[T, Acting] | Ignored:
        """Run *do* as *acting*; when Redmine refuses that user, once more as the fallback."""
        try:
            return do(acting), acting
        except RedmineRefused as exc:
            if not acting.impersonate or exc.status not in (403, 412):
                raise
            refused = exc
        if acting.account:
            self.directory.forget(acting.account)
        instead = identity.as_unknown(plan.author, f"Redmine refused to act as {acting.impersonate} "
                                      f"({refused.status})", self.directory, self.settings)
        if isinstance(instead, Ignored):
            return instead
        if instead.impersonate == acting.impersonate:
            raise refused
        return do(instead), instead


def _keyed_defaults(plan: Plan, site: Site, *, project_keywords: bool = True) -> tuple[Keyed, str, dict[str, Any]]:
    """The mail's keywords resolved, the project they lead to, and the API attributes of
    the configured values there. A project the mail names that lacks a configured value
    is ignored; a configured value Redmine lacks everywhere is the config's mistake.
    *project_keywords* False: the mail's project keyword is not read."""
    resolver = site.resolver
    base, base_warnings = configured_project(resolver, plan)
    mail_keywords = plan.keywords if project_keywords else _without_project(plan.keywords)
    keyed = resolve_keywords(resolver, base, mail_keywords, site.limits(plan))
    keyed = replace(keyed, warnings=(*base_warnings, *keyed.warnings))
    project = keyed.project
    if not project:
        raise ConfigError("no project for this mail: set [issue] project, a [[route]] project, or pass --project")
    fields, unknown = resolve_fields(resolver, project, plan.fields)
    if unknown and base and project != base:
        named, project = project, base
        keyed = resolve_keywords(resolver, project, _without_project(mail_keywords), site.limits(plan))
        keyed = replace(keyed, warnings=(*base_warnings, f"project {named!r} ignored: it lacks {', '.join(unknown)}",
                                         *keyed.warnings))
        fields, unknown = resolve_fields(resolver, project, plan.fields)
    if unknown:
        raise ConfigError(f"unknown in Redmine: {', '.join(unknown)} (run: m2r-deliver check)", key=plan.route)
    return keyed, project, fields


def _without_project(found: tuple[Keyword, ...]) -> tuple[Keyword, ...]:
    return tuple(k for k in found if k.attribute != "project")


def file_issue(plan: Plan, mail: Mail, site: Site, dry_run: bool) -> tuple[Outcome, Plan]:
    settings, attempt = site.settings, site.attempt
    keyed, project, defaults = _keyed_defaults(plan, site)
    acting = identity.choose(plan.author, plan.sender_trusted, plan.authentication, site.directory, settings,
                             defaults["project_id"], identity.NEW_ISSUE_PERMISSIONS, dry_run=dry_run)
    if isinstance(acting, Acting) and not acting.themselves and plan.project and _moved(keyed):
        # Keywords from a sender the gateway does not act as never change the project.
        keyed, project, defaults = _keyed_defaults(plan, site, project_keywords=False)
        keyed = replace(keyed, warnings=("project keyword ignored: the sender is not acted as themselves",
                                         *keyed.warnings))
        acting = identity.choose(plan.author, plan.sender_trusted, plan.authentication, site.directory, settings,
                                 defaults["project_id"], identity.NEW_ISSUE_PERMISSIONS, dry_run=dry_run)
    marker_id = marker_field(site.resolver, settings)
    if marker_id is not None:
        defaults = merged(defaults, {"custom_fields": [{"id": marker_id, "value": attempt.key}]})
    plan = replace(plan, project=project, warnings=plan.warnings + keyed.warnings)
    if isinstance(acting, Ignored):
        return dropped(plan, mail, settings, "unknown_user", acting.reason, dry_run)
    plan = warned(plan, acting)

    def prepare(acting: Acting) -> _Filing:
        record = _requester_record(plan, acting, site)
        fields = defaults
        if record.set_custom_field and plan.requester:
            extra, unknown = resolve_fields(site.resolver, project,
                                            {"custom_fields": {settings.requester_field: plan.requester.addr}})
            if unknown:
                raise ConfigError(f"unknown in Redmine: {', '.join(unknown)}", key="sender.requester_field")
            fields = merged(fields, {"custom_fields": extra["custom_fields"]})
        watchers = [a.id for a in site.accounts(plan.watchers) if not acting.is_address(a.mail)]
        ensured = tuple(w for w in (record.watcher_id, site.relay_watcher(plan, acting, record)) if w)
        watchers += [w for w in ensured if w not in watchers]
        if watchers:
            fields = {**fields, "watcher_user_ids": watchers}
        return _Filing(acting, record, {**fields, "subject": plan.subject}, keyed, ensured)

    if dry_run:
        filing = prepare(acting)
        shown = replace(plan, description=filing.description(plan), resolved=filing.shown(keyed))
        return Outcome(Decision.PLANNED, author=login(acting)), shown
    if attempt.look_first:
        filing = prepare(acting)
        found = _already_filed(plan, filing.description(plan), defaults["project_id"], marker_id, site)
        if found is not None:
            _add_watchers(site, found, filing)  # the attempt that filed it may have ended before
            return Outcome(Decision.DUPLICATE, found, issue_url(settings, found), note=f"duplicate of #{found}"), plan

    def create_as(acting: Acting) -> tuple[int, Plan]:
        uploads, with_refusals = site.upload(plan, mail, acting)
        filing = prepare(acting)
        attempt.sent = True
        issue_id, filed_plan = _create_with_keyword_fallbacks(site.connection_for(acting), filing, uploads,
                                                              with_refusals, marker_id, attempt.key)
        if acting.impersonate or not site.directory.me().admin:  # an administrator's watcher_user_ids are taken
            _add_watchers(site, issue_id, filing)
        return issue_id, filed_plan

    filed = site.file_as(acting, plan, create_as)
    if isinstance(filed, Ignored):
        return dropped(plan, mail, settings, "unknown_user", filed.reason, dry_run)
    (issue_id, filed_plan), acting = filed
    return Outcome(Decision.FILED, issue_id, issue_url(settings, issue_id), login(acting)), filed_plan


def _add_watchers(site: Site, issue_id: int, filing: _Filing) -> None:
    """The requester's and the relay account's watch, with the key's own connection:
    Redmine drops watcher_user_ids a filing user without "Add watchers" sets, silently
    (adding one twice is harmless)."""
    for user_id in filing.ensured:
        add_watcher(site.connection, issue_id, user_id)


def _moved(keyed: Keyed) -> bool:
    return any(keyword.attribute == "project" for keyword, _ in keyed.applied)


def warned(plan: Plan, acting: Acting) -> Plan:
    return replace(plan, warnings=(*plan.warnings, acting.warning)) if acting.warning else plan


def _already_filed(plan: Plan, description: str, project_id: int, marker_id: int | None,
                   site: Site) -> int | None:
    """The issue an earlier attempt at this mail filed, if Redmine has one: by the marker
    field anywhere, else by subject and text among the issues created since then."""
    attempt = site.attempt
    if marker_id is not None:
        found = find_by_marker(site.connection, marker_id, attempt.key)
    else:
        found = find_by_content(site.connection, project_id, attempt.since or 0, plan.subject,
                                description, attempt.not_these)
    attempt.looked = found is None
    return found


def marker_field(resolver: Resolver, settings: Settings) -> int | None:
    if not settings.marker_field:
        return None
    found = resolver.custom_field(settings.marker_field)
    if found is None:
        raise ConfigError(f"issue custom field {settings.marker_field!r} not found (a key that is not an "
                          "administrator's must give its id; run: m2r-deliver check)", key="redmine.marker_field")
    return found["id"]


def issue_url(settings: Settings, issue_id: int) -> str:
    return f"{settings.url}/issues/{issue_id}"


@valueclass(frozen=True)
class _Filing:
    """A new issue as one user files it: the attributes besides the description, the
    requester's record, and the keywords applied."""

    acting: Acting
    record: identity.RequesterRecord
    fields: dict[str, Any]
    keyed: Keyed
    #: Watchers added again after the create: the requester's account, the relay account.
    ensured: tuple[int, ...] = ()

    def description(self, plan: Plan, keyed: Keyed | None = None) -> str:
        """The mail's text without the applied keywords' lines, under the requester line."""
        text = keywords.without_lines(plan.description, (keyed or self.keyed).lines)
        header = self.record.header
        return f"{header}\n\n{text}" if header and text else header or text

    def api_fields(self, plan: Plan, keyed: Keyed) -> dict[str, Any]:
        return {**keyed.over(self.fields), "description": self.description(plan, keyed)}

    def shown(self, keyed: Keyed) -> dict[str, Any]:
        return shown(keyed.over(self.fields), self.acting, ("subject",))


def _create_with_keyword_fallbacks(connection: Redmine, filing: _Filing, uploads: list[dict[str, Any]], plan: Plan,
                                   marker_id: int | None, key: str) -> tuple[int, Plan]:
    """File the issue with the keywords' values over the defaults. A value the mail asked
    for that Redmine will not take (422) must not cost the mail: try without each keyword
    in turn, then without all of them; a keyword not applied keeps its line."""
    keyed = filing.keyed

    def create(applied: Keyed) -> tuple[int, Plan]:
        api_fields = filing.api_fields(plan, applied)
        issue_id, issue = create_issue(connection, api_fields, uploads, acting=bool(filing.acting.impersonate))
        added = applied.warnings[len(keyed.warnings):]
        if marker_id is not None and custom_values(issue).get(marker_id) != key:
            added += (f"Redmine did not store the marker in custom field #{marker_id} (is it enabled for this "
                      "project and tracker, and editable by the filing user? run: m2r-deliver check)",)
        names = {f"{name}_name": (issue.get(name) or {}).get("name") for name in ("project", "tracker")}
        return issue_id, replace(plan, description=api_fields["description"],
                                 resolved={**filing.shown(applied), **names},
                                 warnings=(*plan.warnings, *added, *not_taken(api_fields, issue)))

    candidates = [keyword for keyword, _ in keyed.applied if keyword.attribute != "project"]
    try:
        return create(keyed)
    except RedmineRefused as exc:
        if exc.status != 422 or not candidates:
            raise
        refusal = f"refused by Redmine ({exc.reason}): ignored"
    fallbacks = [*([k] for k in candidates), candidates]
    for number, dropped in enumerate(fallbacks, 1):
        try:
            return create(keyed.without(dropped, refusal))
        except RedmineRefused as exc:
            if exc.status != 422 or number == len(fallbacks):
                raise
    raise AssertionError("unreachable: the last fallback returns or raises")


def _requester_record(plan: Plan, acting: Acting, site: Site) -> identity.RequesterRecord:
    person = plan.requester
    accounts = site.accounts((person.addr,)) if person and not acting.is_address(person.addr) else []
    return identity.record_requester(person, acting, accounts[0] if accounts else None, site.settings)


def dropped(plan: Plan, mail: Mail, settings: Settings, rule: str, reason: str,
             dry_run: bool) -> tuple[Outcome, Plan]:
    """A mail the sender rules or the reply rules drop: like a guard's drop, kept in
    keep_dropped when that is set."""
    dropped = replace(plan, action=Action.DROP, guard=rule, reason=reason)
    return keep_stopped(dropped, mail, settings, dry_run=dry_run), dropped


def _with_refused(plan: Plan, refused: list[PlannedAttachment]) -> Plan:
    """The plan with the files Redmine would not take marked, named in the description
    (the issue says what is missing) and in the warnings."""
    if not refused:
        return plan
    by_index = {a.index: a for a in refused}
    return replace(
        plan,
        attachments=tuple(by_index.get(a.index, a) for a in plan.attachments),
        description=plan.description + _refusal_lines(refused),
        warnings=(*plan.warnings, *(f"{a.filename!r} left out: {a.left_out}" for a in refused)),
    )


def _refusal_lines(refused: list[PlannedAttachment]) -> str:
    return "".join(f"\n\n[Attachment not filed: {a.filename} ({size_text(a.size)}): {a.left_out}]" for a in refused)


def login(acting: Acting) -> str | None:
    return acting.impersonate or (acting.account.login if acting.account else None)


def shown(api_fields: dict[str, Any], acting: Acting, hidden: tuple[str, ...]) -> dict[str, Any]:
    """What --dry-run prints as resolved: the API fields (without the long texts) and
    whom the mail is filed as, and why."""
    shown = {k: v for k, v in api_fields.items() if k not in hidden}
    return {**shown, "as": login(acting), "why": acting.why}
