"""Every key of the config file, once: its kind (type, range, choices), its default and
what it is for. Validation, the defaults the program runs with and the key list of
m2r-deliver.toml(5) are all read from here.
"""

from __future__ import annotations

from typing import Any

from .kinds import (Choice, Duration, FieldRef, Flag, Kind, Location, Number, Patterns, Strings, Table, Text,
                    Url)

ISSUE_FIELDS = ("project", "tracker", "status", "priority", "category", "assigned_to", "fixed_version")
ROUTE_MATCHES = ("from", "to", "list_id", "subject")
#: The guards' names, each also a [guard] on/off key; guards.CHAIN runs them in this order.
GUARD_NAMES = ("redmine_own", "loop_marker", "auto_submitted", "bounce", "not_addressed", "auto_reply", "bulk",
               "mailing_list", "daemon_sender")
UNKNOWN_USER_ACTIONS = ("accept", "ignore", "create")
BODY_PARTS = ("plain", "html")
REPLY_MISSING_ACTIONS = ("new", "drop")
REPLY_CLOSED_ACTIONS = ("note", "missing")
#: Charsets the text of a mail the program sends may be written in.
OUTGOING_CHARSETS = ("utf-8", "iso-2022-jp")
#: [reply] outsiders: who may add a note without being acted as themselves.
REPLY_OUTSIDER_POLICIES = ("requester", "anyone")


class Key:
    """One key: *kind*; *default* as written in the file (None: unset, and the program
    does without, or *unset* says what happens); *doc*, one line for the man page;
    *unset*, what an unset key means when that is not simply "none"."""

    __slots__ = ("name", "kind", "default", "doc", "unset")

    def __init__(self, name: str, kind: Kind, default: Any, doc: str, unset: str = ""):
        self.name, self.kind, self.default, self.doc, self.unset = name, kind, default, doc, unset

    @property
    def value(self) -> Any:
        """The default as the program uses it."""
        return None if self.default is None else self.kind.convert(self.default)


class Section:
    """A table of the file, *array* True when written [[name]] (an array of tables)."""

    __slots__ = ("name", "doc", "keys", "array")

    def __init__(self, name: str, doc: str, keys: tuple[Key, ...], array: bool = False):
        self.name, self.doc, self.keys, self.array = name, doc, keys, array

    def __getitem__(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(key.name == name for key in self.keys)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)


def _issue_values(unset: str) -> tuple[Key, ...]:
    """The attributes of a new issue: in [issue], and per route."""
    docs = {
        "project": "project identifier (or numeric id) new issues are filed in",
        "tracker": "tracker name of new issues",
        "status": "status name of new issues",
        "priority": "priority name of new issues",
        "category": "category name of new issues",
        "assigned_to": "assignee of new issues: a login, an e-mail address or a group name",
        "fixed_version": "target version name of new issues",
    }
    return (*(Key(name, Text(), None, docs[name], unset=unset) for name in ISSUE_FIELDS),
            Key("private", Flag(), None, "file new issues as private (true) or public (false)", unset=unset),
            Key("custom_fields", Table(), None, 'custom field values of new issues: { "Field name" = "value" }',
                unset=unset))


REDMINE = Section("redmine", "Where Redmine is and how to talk to it.", (
    Key("url", Url(), None, "Redmine's base URL (not a project's page); required, or --url", unset="required"),
    Key("key", Text(blank_ok=False), None, "the API key itself; prefer key_file (this file must then be "
        "chmod 600)"),
    Key("key_file", Location(), None, "file whose first line is the API key (chmod 600); required unless key is "
        "set, or --key-file"),
    Key("timeout", Number(0, 600, above_low=True, unit="seconds"), 30, "seconds each HTTP request may take, "
        "enforced"),
    Key("verify", Flag(), True, "verify Redmine's TLS certificate"),
    Key("ca_bundle", Location(), None, "CA bundle to verify the certificate with", unset="the system's"),
    Key("marker_field", FieldRef(), None, "issue custom field (name or id) that holds each mail's delivery key, so "
        "that Redmine itself can tell a mail already filed"),
))

ISSUE = Section("issue", "Defaults for new issues; the same names as the flags.", (
    *_issue_values("Redmine's default"),
    Key("allow_override", Strings(), [], 'attributes the keywords of a mail may set: names such as tracker or '
        'priority, "custom_fields", "custom_field:NAME", or "all"'),
    Key("project_from_subaddress", Text(blank_ok=False), None, "an address ADDR: mail to ADDR+project@domain "
        "goes to that project"),
))

MAIL = Section("mail", "How a mail's text and attachments become the issue.", (
    Key("body_delimiters", Strings(), [], "lines at the first of which the body is cut"),
    Key("body_delimiters_regex", Flag(), False, "each delimiter (also of [reply]) is a regular expression a whole "
        "line must match"),
    Key("empty_subject", Text(), "(no subject)", "subject of an issue whose mail has none"),
    Key("preferred_body_part", Choice(choices=BODY_PARTS), "plain", "html: the HTML parts are the body when the "
        "mail has any"),
    Key("excluded_filenames", Strings(), [], "attachment names never filed (shell-style globs)"),
    Key("excluded_filenames_regex", Flag(), False, "each excluded name is a regular expression the whole name "
        "must match"),
))

SENDER = Section("sender", "Who files the issue (acting as the sender needs an administrator's key).", (
    Key("unknown_user", Choice(choices=UNKNOWN_USER_ACTIONS), "accept", "a sender who cannot be acted as: accept "
        "files as fallback_user (or the key's user), ignore drops the mail, create makes the account first"),
    Key("default_group", Text(), None, "comma-separated groups created accounts join"),
    Key("permission_check", Flag(), True, "check the sender's roles in the project before acting as them"),
    Key("account_notice", Flag(), True, "mail created accounts their login and password"),
    Key("notification", Flag(), True, 'created accounts get "only my events" notifications (false: none)'),
    Key("fallback_user", Text(), None, "login to file as when the sender cannot be acted as",
        unset="the key's user"),
    Key("own_addresses", Strings(), [], "the gateway's own addresses (globs): never watchers"),
    Key("authserv_id", Text(), None, "act as the From address only with a passing Authentication-Results of "
        "this host"),
    Key("requester_labels", Strings(), [], "body labels whose value is the requester's address"),
    Key("requester_field", Text(), None, "issue custom field that records the requester's address"),
    Key("requester_header", Text(), "Requester: {requester}", "first line of an issue filed for a requester; "
        'fields {requester}, {name}, {addr}; "" for none'),
))

FORM = Section("form", "Mail a web form sends on behalf of a requester.", (
    Key("senders", Strings(), [], "the form's From addresses (globs)"),
    Key("fields", Table(), {}, 'form label = issue attribute, or "cf:Custom field name"'),
    Key("subject", Text(), None, "the issue's subject built from form fields ({Label}; {subject} is the mail's)",
        unset="the mail's subject"),
))

REPLY = Section("reply", "Mail that answers an issue becomes a note.", (
    Key("missing", Choice(choices=REPLY_MISSING_ACTIONS), "new", "the issue answered does not exist or cannot be "
        "seen: new files a new issue, drop drops the mail"),
    Key("closed", Choice(choices=REPLY_CLOSED_ACTIONS), "note", "the issue answered is closed: note adds the note "
        "anyway, missing treats it as missing (not used when reopen_status is set)"),
    Key("delimiters", Strings(), [], "more lines at which a reply is cut"),
    Key("outsiders", Choice(choices=REPLY_OUTSIDER_POLICIES), "requester", "a reply from a sender who is not acted "
        "as themselves (filed as fallback_user or the key's user): requester adds the note only to an issue that "
        "records them (requester, watcher, earlier note), anyone to any issue of a served project; otherwise the "
        "mail becomes a new issue"),
    Key("reopen_status", Text(blank_ok=False), None, "a reply to a closed issue reopens it to this status "
        "(within reopen_within; older, a new issue related to the old one)",
        unset="a reply to a closed issue is handled by [reply] closed"),
    Key("reopen_within", Duration(), "30d", "how long after it was closed (Redmine's closed_on) an issue is "
        "reopened by a reply"),
    Key("waiting_statuses", Strings(blank_ok=False), [], "statuses that wait for the requester; a reply to an "
        "issue in one of them moves it to resume_status"),
    Key("resume_status", Text(blank_ok=False), None, "the status a reply moves a waiting issue to",
        unset="the status is left alone"),
))

STATE = Section("state", "The ledger, the caches and the retry policy.", (
    Key("dir", Location(), None, "directory of the ledger, caches and quarantine (without XDG_STATE_HOME: "
        "~/.local/state/m2r-deliver)", unset="$XDG_STATE_HOME/m2r-deliver"),
    Key("cache_ttl", Number(0, unit="seconds"), 300, "seconds Redmine's names, ids and users are cached"),
    Key("retry_for", Duration(), "5d", "how long a temporary failure is retried, from the first attempt"),
    Key("max_attempts", Number(1, 100, whole=True), 3, "refusals by Redmine (the mail's fault) before the mail "
        "is quarantined"),
    Key("keep_for", Duration(), "30d", "how long the ledger remembers a mail after its last attempt; at least "
        "retry_for"),
))

LOG = Section("log", "Where the one line per mail goes.", (
    Key("syslog", Flag(), True, "log to syslog, facility mail"),
    Key("file", Location(), None, "also append each line to this file"),
    Key("verbose", Flag(), False, "print an account of each delivery on stderr, as -v"),
))

GUARD = Section("guard", "The guards that drop machine mail (each described in m2r-deliver(1)), and the "
                "per-sender rate limit.", (
    *(Key(name, Flag(), True, f"run the {name} guard (false: off)") for name in GUARD_NAMES),
    Key("trusted_senders", Strings(blank_ok=False), [], "From addresses (globs) whose automatic or list mail is "
        "a request"),
    Key("catch_addresses", Strings(blank_ok=False), [], "when set, mail naming none of these among its "
        "recipients is left alone"),
    Key("redmine_from", Strings(blank_ok=False), [], "Redmine's emission address(es): mail from them is "
        "Redmine's own"),
    Key("loop_markers", Strings(blank_ok=False), [], "X-Loop values that mark mail as handled upstream"),
    Key("rate_limit", Number(0, whole=True), 20, "mails per sender filed within rate_window; more are held; "
        "0: no limit"),
    Key("rate_window", Number(0, above_low=True, unit="seconds"), 3600, "seconds of the rate limit's window"),
    Key("hold", Location(), "hold", "Maildir for held mail; relative to the state dir"),
    Key("keep_dropped", Location(), None, "Maildir that keeps a copy of dropped mail; relative to the state dir",
        unset="dropped mail is not kept"),
))

OUTGOING = Section("outgoing", "How the mail the program sends (the acknowledgement) leaves, and whose it is.", (
    Key("sendmail", Location(), "/usr/sbin/sendmail", "the sendmail-compatible program the mail is handed to "
        "(Postfix, Exim, sendmail, OpenSMTPD, msmtp, nullmailer), unless smtp is set"),
    Key("smtp", Text(blank_ok=False), None, "host:port ([v6 address]:port; port 25 when left out) of an SMTP "
        "server to hand the mail to instead", unset="the sendmail program"),
    Key("smtp_starttls", Flag(), True, "upgrade the SMTP connection with STARTTLS, certificate checked; a server "
        "that does not offer it is refused"),
    Key("smtp_user", Text(blank_ok=False), None, "log in to the SMTP server as this user (with "
        "smtp_password_file)", unset="no login"),
    Key("smtp_password_file", Location(), None, "file whose first line is the SMTP password (chmod 600)"),
    Key("from", Text(blank_ok=False), None, 'From of every mail the program sends, e.g. "Helpdesk '
        '<request@example.org>"; required to send any', unset="nothing is sent"),
    Key("envelope_sender", Text(blank_ok=False), None, "envelope sender (sendmail -f, MAIL FROM) where bounces "
        "of the program's own mail return, e.g. request+bounces@example.org", unset="the mail system's choice"),
    Key("never_to", Patterns(blank_ok=False), [], "addresses (globs) the program never sends mail to, e.g. "
        '["*@monitor.example.org"] for monitoring systems that file issues'),
    Key("charset", Choice(choices=OUTGOING_CHARSETS), "utf-8", "charset of the text; iso-2022-jp for old Japanese "
        "clients (a text it cannot hold is sent in UTF-8)"),
    Key("timeout", Number(0, 600, above_low=True, unit="seconds"), 60, "seconds one hand-over may take (the "
        "sendmail program's run, each SMTP exchange)"),
))

ACKNOWLEDGE = Section("acknowledge", "One mail to the requester of each new issue (RFC 3834: never to automatic "
                      "or list mail, a null sender, a robot or the gateway's own addresses).", (
    Key("enabled", Flag(), False, "send the acknowledgement (needs [outgoing] from)"),
    Key("template", Location(), "ack.txt", "its text: a file with {issue_id}, {subject}, {project}, {tracker}, "
        "{requester}, {url}; relative: next to the config file, or a shipped one (ack.en.txt, ack.ja.txt); the "
        "default, when absent, is the shipped ack.en.txt"),
    Key("once_per", Duration(), "1d", "at most one acknowledgement per requester within this period"),
))

RELAY = Section("relay", "Staff's public notes mailed to the requester of an issue (Redmine's notification to the "
                "relay account, read back over REST; never a private note, never the requester's own).", (
    Key("enabled", Flag(), False, "mail the public notes of issues with a requester (needs [outgoing] from)"),
    Key("user", Text(blank_ok=False), "relay", "login of the relay account: added as a watcher of each issue filed "
        "for a requester; its address routes to the gateway; it must not have View private notes"),
    Key("statuses", Strings(blank_ok=False), [], "status names whose change alone also sends a short mail, e.g. "
        '["Resolved"]'),
    Key("template", Location(), "relay.txt", "the relayed mail's text: a file with {issue_id}, {subject}, "
        "{project}, {tracker}, {requester}, {url}, {author}, {notes}, {status}; relative: next to the config file, "
        "or a shipped one (relay.en.txt, relay.ja.txt); the default, when absent, is the shipped relay.en.txt"),
    Key("attachments_max", Number(0, whole=True, unit="bytes"), 5 * 1024 * 1024, "files added with a note go "
        "along while together at most this many bytes; the others are named in the text; 0: none go along"),
))

ROUTE = Section("route", "Mail matching every pattern of a route gets its [issue] values; the first match wins.", (
    Key("from", Patterns(blank_ok=False), None, "From address or envelope sender (globs)"),
    Key("to", Patterns(blank_ok=False), None, "To, Cc, Delivered-To or X-Original-To address (globs)"),
    Key("list_id", Patterns(blank_ok=False), None, "List-Id (globs)"),
    Key("subject", Patterns(blank_ok=False), None, "subject (regular expressions, case-insensitive)"),
    *_issue_values("the [issue] value"),
), array=True)

SECTIONS: tuple[Section, ...] = (REDMINE, ISSUE, MAIL, SENDER, FORM, REPLY, STATE, LOG, GUARD, OUTGOING, ACKNOWLEDGE,
                                 RELAY, ROUTE)
#: section name → its keys' names.
SCHEMA: dict[str, tuple[str, ...]] = {section.name: section.names for section in SECTIONS}
