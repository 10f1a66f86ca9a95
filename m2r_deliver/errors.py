"""One exception hierarchy, and the one table that turns a failure into an exit status.

Every failure is classified by whose fault it is, because that decides what the mail
system must do: the mail's fault can never succeed by retrying, Redmine's and the
config's may heal, and our own bugs must never lose the mail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .states import Decision, Fault

if TYPE_CHECKING:
    from pathlib import Path

EX_OK = 0
EX_TEMPFAIL = 75  # the only status every MDA caller reads as "keep it, try again"
EX_CHECK_FAILED = 1  # for interactive subcommands only (check, replay), never for delivery
EX_USAGE = 2  # a command-line mistake of a person at a terminal, never for a mail system
EX_CLOSED_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE, as the shell reports it)


class DeliveryError(Exception):
    """Base of every failure the program knows how to explain."""

    fault = Fault.OURS
    #: True when retrying the same mail later may succeed.
    temporary = True

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ConfigError(DeliveryError):
    """The configuration (file or flags) is unreadable or wrong."""

    fault = Fault.CONFIG

    def __init__(self, reason: str, *, file: str | None = None, key: str | None = None):
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {reason}" if where else reason)
        self.file, self.key = file, key
        #: Where to log this mistake, when the config got far enough to say.
        self.log_file: Path | None = None


class MailError(DeliveryError):
    """The message itself cannot be filed (its own fault: retrying will not help)."""

    fault = Fault.MAIL
    temporary = False


class RedmineUnavailable(DeliveryError):
    """Redmine did not answer usefully: down, reset, timeout, 5xx, 429, or a bad key."""

    fault = Fault.REDMINE


class RedmineRefused(DeliveryError):
    """Redmine answered and refused this mail (404 project, 422, 412): the mail's fault."""

    fault = Fault.MAIL
    temporary = False

    def __init__(self, reason: str, *, status: int | None = None):
        super().__init__(reason)
        self.status = status


class OutcomeUnknown(RedmineUnavailable):
    """The request that files the mail may have reached Redmine, but no answer came back:
    whether the issue exists must be looked up before filing again."""


class MailSystemUnavailable(DeliveryError):
    """The mail system did not take a mail the program sends (sendmail failed or ran too
    long, the SMTP host is down or answered 4xx): handed over again on the retry."""

    fault = Fault.MAIL_SYSTEM


class MailSystemRefused(DeliveryError):
    """The mail system refused a mail the program sends for good (5xx, a recipient it will
    never accept): sending it again cannot succeed."""

    fault = Fault.MAIL_SYSTEM
    temporary = False

    def __init__(self, reason: str, *, recipients: tuple[str, ...] = ()):
        super().__init__(reason)
        self.recipients = recipients


class StateError(DeliveryError):
    """The state directory cannot be read or written: never file without a record."""

    fault = Fault.STATE


class LedgerDamaged(StateError):
    """The ledger file is not a readable SQLite database any more."""

    def __init__(self, reason: str, *, path):
        super().__init__(reason)
        self.path = path


class Busy(DeliveryError):
    """Another process is delivering the same mail right now; its result will be in the
    ledger when the mail system retries."""

    fault = Fault.CONCURRENT


class Interrupted(DeliveryError, KeyboardInterrupt):
    """Stopped from outside (SIGTERM, or our own deadline). A KeyboardInterrupt too, so
    that no library's ``except Exception`` swallows it."""

    fault = Fault.STOPPED


class InternalError(DeliveryError):
    """A bug of ours; the mail is kept for a retry after the fix."""

    fault = Fault.OURS


def classify(exc: BaseException) -> DeliveryError:
    """Wrap anything unexpected so that nothing escapes unclassified. Running out of
    memory under the process's ceiling (entry.MEMORY_LIMIT) is the mail's doing: the same
    mail would need as much again on every attempt."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, MemoryError):
        return MailError("the mail needs more memory than the process may use (entry.MEMORY_LIMIT)")
    return InternalError(f"{type(exc).__name__}: {exc}")


#: Outcomes after which the mail system may forget the mail, failure or not: it is in
#: Redmine, deliberately dropped, or kept byte for byte in the quarantine Maildir.
RELEASED = frozenset({Decision.FILED, Decision.RELAYED, Decision.DUPLICATE, Decision.DROPPED, Decision.PLANNED,
                      Decision.QUARANTINED})


def exit_status(exc: BaseException | None, decision: Decision | None = None) -> int:
    """The one place where a failure becomes a sysexits status for the mail system.

    Every failure tempfails: a mail that can never succeed is moved out of the retry loop
    by the ledger's quarantine (the *decision* "quarantined", which then reports success),
    never by a bounce status.
    """
    if decision in RELEASED or exc is None:
        return EX_OK
    return EX_TEMPFAIL
