"""The named states: every decision, action, ledger state, claim verdict and fault class
has one member here. Each is a ``str`` whose value is exactly what the log line, the
ledger and ``--dry-run`` have always shown, so the names change nothing on the outside.
"""

from __future__ import annotations

from enum import Enum


class _Named(str, Enum):
    """A state that is its value wherever it is written (log, ledger, JSON)."""

    def __str__(self) -> str:
        return str(self.value)


class Action(_Named):
    """What a Plan asks for."""

    CREATE = "create"  # a new issue
    NOTE = "note"  # a note on the issue the mail answers
    DROP = "drop"  # a guard or a sender rule stopped the mail
    HOLD = "hold"  # the rate limit keeps the mail in the hold Maildir
    RELAY = "relay"  # Redmine's notification of a journal: mail the note to the issue's requester
    BOUNCE_NOTE = "bounce_note"  # a private note: mail the program sent to the issue's people bounced


class Decision(_Named):
    """What became of a mail: the log line's ``decision=``."""

    FILED = "filed"
    RELAYED = "relayed"  # a staff note (or status change) taken to be mailed to the requester
    DUPLICATE = "duplicate"  # already in Redmine, or settled in the ledger
    DROPPED = "dropped"
    HELD = "held"
    QUARANTINED = "quarantined"
    PLANNED = "planned"  # --dry-run
    TEMPFAIL = "tempfail"  # a failure that may heal: the mail system keeps the mail
    REFUSED = "refused"  # a failure that will not heal, still kept until the ledger gives up


class RowState(_Named):
    """A ledger row's state. "Outcome unknown" is not a state of its own: it is
    ``unsure_since`` set on a row that is not settled (see ledger.Row.outcome_unknown)."""

    IN_FLIGHT = "in_flight"
    FILED = "filed"
    DROPPED = "dropped"
    FAILED = "failed"
    QUARANTINED = "quarantined"


class ClaimVerdict(_Named):
    """The ledger's answer to "may this process deliver the mail now?"."""

    GO = "go"  # this process delivers
    SETTLED = "settled"  # nothing to do: the row says what became of it
    BUSY = "busy"  # another live process is delivering it


class Fault(_Named):
    """Whose fault a failure is (errors.py), which decides what the mail system must do."""

    MAIL = "mail"
    REDMINE = "redmine"
    CONFIG = "config"
    STATE = "state"
    CONCURRENT = "concurrent"
    STOPPED = "stopped"
    OURS = "ours"
    MAIL_SYSTEM = "mail_system"  # the mail system did not take a mail the program sends


class Via(_Named):
    """How a mail was found to answer an issue (plan.ThreadRef), strongest first."""

    ISSUE = "issue"  # a Redmine issue Message-ID token
    JOURNAL = "journal"  # a Redmine note Message-ID token
    OURS = "ours"  # a mail this program filed, or sent (a verified token of outgoing/tokens.py)
    SUBJECT = "subject"  # the ``[… #N]`` subject tag
    MARKER = "marker"  # a Message-ID looked up in the [redmine] marker_field (mail filed on another host)


class MailKind(_Named):
    """What a mail the program sends is: the kind its Message-ID names (outgoing.tokens)."""

    ACKNOWLEDGEMENT = "ack"  # the requester's request became an issue
    NOTE = "note"  # a staff member's public note, relayed
    STATUS = "status"  # a status change, relayed for [relay] statuses


class Answered(_Named):
    """What became of an acknowledgement: its log line's ``decision=``."""

    ACKNOWLEDGED = "acknowledged"
    NOT_ACKNOWLEDGED = "not_acknowledged"  # a rule of outgoing.policy refused it
    WOULD_ACKNOWLEDGE = "would_acknowledge"  # --dry-run
    OWED = "owed"  # the mail system did not take it for now: handed over on the mail's retry


class StatusChange(_Named):
    """How a reply moved the issue it answers ([reply] reopen_status, waiting_statuses): the
    log line's field name."""

    REOPENED = "reopened"  # a closed issue, within reopen_within, to reopen_status
    RESUMED = "resumed"  # an issue waiting for the requester, to resume_status
    FOLLOWED_UP = "follows"  # closed too long ago: a new issue related to it
