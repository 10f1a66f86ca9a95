"""Identity: who files the issue or note, and who really asked.

With an administrator's API key the gateway files *as* the Redmine user whose address
sent the mail (``X-Redmine-Switch-User``), so Redmine's permissions, authorship and
notifications are right. A sender it cannot act as (no account, locked, no permission
in the project, or a From address that failed [sender] authserv_id) is "unknown" and
[sender] unknown_user decides: ``accept`` files as [sender] fallback_user (else as the
key's own user), ``ignore`` drops the mail, ``create`` makes the account the way
Redmine's mail handler does. The Redmine lookups go through a ``Directory``
(redmine/users.py); everything else here is pure.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Protocol

from .config import Settings
from .errors import ConfigError
from .lazy import Pattern
from .mail import Mail
from .plan import Person
from .valueclass import valueclass

NEW_ISSUE_PERMISSIONS = ("add_issues",)
#: RFC 8601 fields: folding undone, then anything but printable ASCII, SP and HTAB voids the field.
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_NOT_TEXT = re.compile(r"[^\t\x20-\x7e]")
_SP_HTAB = re.compile(r"[ \t]+")
NOTE_PERMISSIONS = ("add_issue_notes", "edit_issues")  # either will do, as in Redmine
_LOGIN = Pattern(r"^[a-z0-9_\-@.]{1,60}$", re.I)  # Redmine's login format and length
_NAME_LIMIT = 30  # Redmine's firstname/lastname columns
#: The longest address there can be: RFC 5321's 256-octet path less its angle brackets.
ADDRESS_LIMIT = 254
#: At most this many To/Cc addresses are looked up as watchers per mail (each look-up is
#: a request or two, and all must fit in the delivery's deadline); the rest are named in
#: a line of the issue or note.
WATCHER_LIMIT = 10


@valueclass(frozen=True)
class Account:
    id: int
    login: str
    mail: str = ""
    active: bool = True
    admin: bool = False


@valueclass(frozen=True)
class NewAccount:
    """A Redmine account to create for an unknown sender."""

    login: str
    mail: str
    firstname: str
    lastname: str
    #: Redmine's mail_notification: "only_my_events" like its mail handler, or "none".
    mail_notification: str
    #: Mail the new user their login and password (Redmine's send_information).
    send_information: bool
    groups: tuple[str, ...]


@valueclass(frozen=True)
class Acting:
    """Whom the mail is filed as, and why."""

    #: None only on a dry run that would create the account.
    account: Account | None
    #: The login to switch to; None files as the key's own user.
    impersonate: str | None
    why: str
    #: The mail is filed as the person who sent (or, from a form, requested) it; False
    #: for the fallback or the key's user standing in for someone else.
    themselves: bool = False
    #: Why the sender was not acted as, when the log should say so.
    warning: str | None = None

    def is_address(self, addr: str) -> bool:
        return bool(self.account and self.account.mail.lower() == addr.lower())


@valueclass(frozen=True)
class Ignored:
    """[sender] unknown_user = "ignore" applied: the mail is dropped."""

    reason: str


class Directory(Protocol):
    """Redmine's users, as identity needs them (redmine.users.Directory)."""

    def me(self) -> Account: ...

    def account_by_mail(self, addr: str) -> Account | None: ...

    def account_by_login(self, login: str) -> Account | None: ...

    def may(self, account: Account, project_id: int, permissions: tuple[str, ...]) -> bool | None: ...

    def create_account(self, new: NewAccount) -> Account: ...


# --- who sent it -------------------------------------------------------------------

def authenticate(mail: Mail, authserv_id: str | None) -> tuple[bool, str | None]:
    """(trusted, finding): may the From address be acted as?

    With [sender] authserv_id, an ``Authentication-Results`` header of that host (RFC
    8601) must show dkim=pass for the From domain or a parent of it, spf=pass for a
    MAIL FROM in such a domain, or dmarc=pass for the From domain. The receiving MX must
    remove such headers that arrive from outside (RFC 8601 section 5); every header of
    that host is read, as RFC 8601 defines it: from the raw field (no RFC 2047 decoding,
    which would let an encoded word pass for the host's name), the authserv-id a token
    ended only by SP, HTAB, a comment or ";", and a field holding control characters or
    8-bit bytes ignored, since the MX only strips fields that carry its name exactly.
    """
    if not authserv_id:
        return True, None
    if not mail.sender:
        return False, "no From address"
    domain = mail.sender.addr.rpartition("@")[2]
    wanted = authserv_id.lower()
    raw = [value for name, value in mail.message.raw_items() if name.lower() == "authentication-results"]
    results = [r for header in raw for r in [_parse_results(header)] if r and r[0] == wanted]
    if not results:
        return False, f"no Authentication-Results from {authserv_id}"
    for _, methods in results:
        for method, result, props in methods:
            if result != "pass":
                continue
            if method == "dkim" and _aligned(props.get("header.d") or props.get("header.i", ""), domain):
                return True, f"dkim=pass header.d={props.get('header.d') or props.get('header.i')}"
            if method == "spf" and _aligned(props.get("smtp.mailfrom", ""), domain):
                return True, f"spf=pass smtp.mailfrom={props['smtp.mailfrom']}"
            if method == "dmarc" and props.get("header.from", "").lower() == domain:
                return True, f"dmarc=pass header.from={domain}"
    found = "; ".join(f"{m}={r}" for _, methods in results for m, r, _ in methods) or "none"
    return False, f"{authserv_id} found no pass for {domain} ({found})"


def _parse_results(header: object) -> tuple[str, list[tuple[str, str, dict[str, str]]]] | None:
    """``authserv-id [version]; method=result ptype.prop=value …; …`` from a raw field,
    comments removed; None for a field that is not plain 7-bit text."""
    if not isinstance(header, str):
        return None
    text = _UNFOLD.sub(" ", header)
    if _NOT_TEXT.search(text):
        return None
    text = _without_comments(text)
    authserv, _, rest = text.partition(";")
    ident = _SP_HTAB.split(authserv.strip(" \t"))[0].strip('"').lower()  # then an optional version
    if not ident:
        return None
    methods = []
    for part in rest.split(";"):
        words = [w for w in _SP_HTAB.split(part) if w]
        if not words or "=" not in words[0]:
            continue
        method, _, result = words[0].partition("=")
        props = {}
        for word in words[1:]:
            key, _, value = word.partition("=")
            props[key.lower()] = value.strip('"').lower()
        methods.append((method.split("/")[0].lower(), result.lower(), props))
    return ident, methods


def _without_comments(text: str) -> str:
    """RFC 5322 comments (nested, with quoted pairs) replaced by a space, in one pass;
    quoted strings kept as they are."""
    out, depth, quoted, escaped = [], 0, False, False
    for ch in text:
        if escaped:
            escaped = False
            if not depth:
                out.append(ch)
        elif ch == "\\":
            escaped = True
            if not depth:
                out.append(ch)
        elif quoted:
            quoted = ch != '"'
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if not depth:
                out.append(" ")
        elif not depth:
            quoted = ch == '"'
            out.append(ch)
    return "".join(out)


def _aligned(identity: str, from_domain: str) -> bool:
    """The authenticated domain is the From domain or a parent of it (never a bare TLD)."""
    domain = identity.rpartition("@")[2].lower().rstrip(".")
    return "." in domain and (from_domain == domain or from_domain.endswith("." + domain))


# --- who asked ---------------------------------------------------------------------

def requester(mail: Mail, labels: tuple[str, ...], found: tuple[str, str] | None) -> Person | None:
    """The address in a requester form field (*found*: label, address), else the From."""
    if found:
        label, addr = found
        return Person(addr, source=f"form field {label}")
    if mail.sender:
        return Person(mail.sender.addr, mail.sender.name, "From")
    return None


@valueclass(frozen=True)
class RequesterRecord:
    """What the issue records of the requester when it is not filed as them."""

    set_custom_field: bool = False
    header: str | None = None
    watcher_id: int | None = None


def record_requester(person: Person | None, acting: Acting, account: Account | None,
                     settings: Settings) -> RequesterRecord:
    """A form's requester always goes to [sender] requester_field; the From address only
    when the mail is filed as someone else. Then the requester watches the issue if
    they have an active account, or is named in a header line of the description."""
    if person is None:
        return RequesterRecord()
    filed_as_them = acting.is_address(person.addr)
    custom = bool(settings.requester_field) and (person.source != "From" or not filed_as_them)
    if filed_as_them:
        return RequesterRecord(custom)
    if account is not None and account.active:
        return RequesterRecord(custom, watcher_id=account.id)
    header = settings.requester_header.format(requester=person, name=person.name or person.addr, addr=person.addr)
    return RequesterRecord(custom, header=header)


# --- whom to file as ---------------------------------------------------------------

def choose(person: Person | None, trusted: bool, finding: str | None, directory: Directory, settings: Settings,
           project_id: int, permissions: tuple[str, ...], *, dry_run: bool = False) -> Acting | Ignored:
    """Whom to file as in *project_id*, needing one of *permissions*."""
    me = directory.me()
    if not me.admin:
        itself = person is not None and me.mail.lower() == person.addr.lower()
        return Acting(me, None, "the key's user: not an administrator, nobody is impersonated", itself)
    if person is None:
        return as_unknown(None, "no sender address", directory, settings)
    if not plausible_address(person.addr):
        return as_unknown(person, "an address no Redmine account can have", directory, settings)
    if not trusted:
        return as_unknown(person, f"not authenticated: {finding}", directory, settings)
    account = directory.account_by_mail(person.addr)
    if account is None:
        if settings.unknown_user == "create":
            return _create(person, directory, settings, project_id, permissions, dry_run)
        return as_unknown(person, "no Redmine account", directory, settings)
    if account.admin and not settings.authserv_id:
        # Anyone can write an administrator's address in From: without [sender]
        # authserv_id to vouch for it, it never carries an administrator's rights.
        return as_unknown(person, f"{account.login} is a Redmine administrator, acted as only with [sender] "
                          "authserv_id", directory, settings, warn=True)
    return _if_permitted(account, person, directory, settings, project_id, permissions)


def plausible_address(addr: str) -> bool:
    """Whether *addr* can be a Redmine account's address at all: one ``@``, no spaces or
    control characters, no longer than an address can be. Others are not looked up
    (a NUL or a 3,000-character address makes Redmine answer 500 or 414)."""
    local, at, domain = addr.rpartition("@")
    return (bool(at and local and domain) and len(addr) <= ADDRESS_LIMIT
            and not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in addr))


def as_unknown(person: Person | None, reason: str, directory: Directory, settings: Settings, *,
               warn: bool = False) -> Acting | Ignored:
    """[sender] unknown_user for a sender the gateway cannot act as (accounts are
    created only for addresses without one, see ``choose``). *warn*: the log line says
    why (a reason an operator should see even when the mail is filed)."""
    who = person.addr if person else "(no address)"
    if settings.unknown_user == "ignore":
        return Ignored(f"{who}: {reason}; [sender] unknown_user = ignore")
    return fallback(f"{who}: {reason}", directory, settings, warning=f"not acted as {who}: {reason}" if warn else None)


def fallback(reason: str, directory: Directory, settings: Settings, *, warning: str | None = None) -> Acting:
    if not settings.fallback_user:
        return Acting(directory.me(), None, f"the key's user, because {reason}", warning=warning)
    account = directory.account_by_login(settings.fallback_user)
    if account is None or not account.active:
        state = "does not exist" if account is None else "is locked"
        raise ConfigError(f"user {settings.fallback_user!r} {state} in Redmine", key="sender.fallback_user")
    return Acting(account, account.login, f"fallback_user, because {reason}", warning=warning)


def _if_permitted(account: Account, person: Person, directory: Directory, settings: Settings, project_id: int,
                  permissions: tuple[str, ...]) -> Acting | Ignored:
    if not account.active:
        return as_unknown(person, f"account {account.login} is locked", directory, settings)
    if settings.permission_check and directory.may(account, project_id, permissions) is False:
        return as_unknown(person, f"{account.login} lacks {' or '.join(permissions)} in the project",
                          directory, settings)
    return Acting(account, account.login, "sender" if person.source == "From" else f"requester ({person.source})",
                  themselves=True)


def _create(person: Person, directory: Directory, settings: Settings, project_id: int,
            permissions: tuple[str, ...], dry_run: bool) -> Acting | Ignored:
    new = new_account(person, settings)
    if dry_run:
        return Acting(None, new.login, f"new account {new.login} (not created: dry run)", themselves=True)
    account = directory.create_account(new)
    acting = _if_permitted(account, person, directory, settings, project_id, permissions)
    if isinstance(acting, Acting) and acting.account == account:
        return Acting(account, account.login, f"new account {account.login}", themselves=True)
    return acting


def new_account(person: Person, settings: Settings) -> NewAccount:
    """Like Redmine's mail handler: the address as login, the display name split into
    first name and the rest (else the address's local part split at dots)."""
    names = person.name.split() if person.name.strip() else person.addr.partition("@")[0].split(".")
    firstname = (names[0] if names else "")[:_NAME_LIMIT].strip() or "-"
    lastname = " ".join(names[1:])[:_NAME_LIMIT].strip() or "-"
    login = person.addr if _LOGIN.match(person.addr) else random_login()
    return NewAccount(
        login=login,
        mail=person.addr,
        firstname=firstname,
        lastname=lastname,
        mail_notification="only_my_events" if settings.notification else "none",
        send_information=settings.account_notice,
        groups=tuple(g.strip() for g in (settings.default_group or "").split(",") if g.strip()),
    )


def random_login() -> str:
    import secrets

    return f"user{secrets.token_hex(6)}"


# --- who watches -------------------------------------------------------------------

def watchers(mail: Mail, settings: Settings) -> tuple[tuple[str, ...], str | None]:
    """The To and Cc addresses to look up as watchers, at most WATCHER_LIMIT of them, and
    the line that says how many more there were (None when none)."""
    candidates = [a for a in watcher_addresses(mail, settings) if plausible_address(a)]
    excess = len(candidates) - WATCHER_LIMIT
    if excess <= 0:
        return tuple(candidates), None
    return tuple(candidates[:WATCHER_LIMIT]), (f"[{excess} more recipient(s) not looked up as watchers: at most "
                                               f"{WATCHER_LIMIT} are, per mail]")


def watcher_addresses(mail: Mail, settings: Settings) -> tuple[str, ...]:
    """To and Cc, minus the gateway's own addresses and the sender: [sender]
    own_addresses, the addresses the mail was delivered to, the sub-address base and its
    ``+project`` forms, and the [[route]] ``to`` patterns."""
    own = [*settings.own_addresses, *mail.delivered_to, *(route_to for route in settings.routes
                                                            for route_to in route.match.get("to", ()))]
    if settings.project_from_subaddress:
        local, _, domain = settings.project_from_subaddress.lower().partition("@")
        own += [f"{local}@{domain}", f"{local}+*@{domain}"]
    sender = mail.sender.addr if mail.sender else None
    candidates = dict.fromkeys(a for a in (*mail.to, *mail.cc) if a != sender)
    return tuple(a for a in candidates if not any(fnmatch.fnmatchcase(a, pattern.lower()) for pattern in own))
