"""Policy: may the program answer this mail automatically? RFC 3834, as small rules.

Each rule is a class with a ``name``, a one-line ``description`` and ``check(answering)``
returning why the answer must not be sent, or None; the first that fires decides. The
signs of automatic and list mail are the guards' own (guards/automatic.py, lists.py): a
mail the guards would drop is never answered, whatever [guard] switches off. Last comes
the once-per-period limit, the only rule with state (answered.py).
"""

from __future__ import annotations

import email.utils
import fnmatch
import re
from typing import Protocol

from ..config import Settings
from ..guards.addresses import first_match, is_trusted, local_part
from ..guards.automatic import AutoReply, AutoSubmitted
from ..guards.lists import ROBOT_LOCAL_PARTS, Bulk, DaemonSender, MailingList
from ..identity import authenticate
from ..mail import Mail
from ..plan import Person
from .answered import AnsweredLog
from ..config.outgoing import OutgoingSettings
from ..valueclass import valueclass

#: Local parts that say nobody reads the mailbox.
NO_REPLY_LOCAL_PARTS = ("noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply",
                        "noreply-*", "no-reply-*")
_MAILTO = re.compile(r"<mailto:([^>?]+)", re.IGNORECASE)


@valueclass(frozen=True)
class Answering:
    """An automatic answer about to be sent, and the mail it answers."""

    mail: Mail
    #: Whom it would go to: the requester (a form's field, else the From).
    recipient: Person | None
    #: The site's settings: the guards' lists, form senders, own addresses, authserv_id.
    settings: Settings
    outgoing: OutgoingSettings

    @property
    def from_trusted_form(self) -> bool:
        """A trusted sender's form mail naming a human requester in its body: its
        automatic and list headers are the form's, not the requester's."""
        mail, recipient = self.mail, self.recipient
        return (recipient is not None and recipient.source != "From" and is_trusted(mail, self.settings)
                and not (mail.sender and mail.sender.addr == recipient.addr))


@valueclass(frozen=True)
class Refusal:
    rule: str
    reason: str


class Rule(Protocol):
    name: str
    description: str

    def check(self, answering: Answering) -> str | None: ...


class NoRecipient:
    name = "no_recipient"
    description = "nobody to answer: no requester address"

    def check(self, answering: Answering) -> str | None:
        return None if answering.recipient and answering.recipient.addr else "no requester address"


class NullSender:
    name = "null_sender"
    description = "the mail came from the null sender <> (RFC 3834 section 2)"

    def check(self, answering: Answering) -> str | None:
        return "envelope sender <>" if answering.mail.envelope_sender == "" else None


class AutomaticMail:
    name = "automatic_mail"
    description = "the mail is itself automatic or list mail (the guards' signs), unless a trusted form's"

    SIGNS = (AutoSubmitted(), AutoReply(), Bulk(), MailingList(), DaemonSender())

    def check(self, answering: Answering) -> str | None:
        if answering.from_trusted_form:
            return None
        for sign in self.SIGNS:
            found = sign.check(answering.mail, answering.settings)
            if found:
                return found
        return None


class RobotRecipient:
    name = "robot_recipient"
    description = "the requester's address is a robot's or says no-reply (MAILER-DAEMON, *-request, noreply)"

    def check(self, answering: Answering) -> str | None:
        address = answering.recipient.addr if answering.recipient else ""
        local = local_part(address)
        forms = {local, local.partition("+")[0]}  # owner-list+bounces@, noreply+x@
        patterns = (*ROBOT_LOCAL_PARTS, *NO_REPLY_LOCAL_PARTS)
        robot = any(fnmatch.fnmatchcase(form, pattern) for form in forms for pattern in patterns)
        return f"robot address {address}" if robot else None


class NeverTo:
    name = "never_to"
    description = "the requester's address matches [outgoing] never_to (monitoring systems, other robots)"

    def check(self, answering: Answering) -> str | None:
        address = answering.recipient.addr.lower() if answering.recipient else ""
        found = first_match([address], tuple(p.lower() for p in answering.outgoing.never_to))
        return f"{address} is in [outgoing] never_to" if found else None


class OwnOrListAddress:
    name = "own_or_list_address"
    description = "the requester's address is a list's, the form's sender, or one of the gateway's own"

    def check(self, answering: Answering) -> str | None:
        address = answering.recipient.addr.lower() if answering.recipient else ""
        mail, site, guard = answering.mail, answering.settings, answering.settings.guard
        from_form_field = answering.recipient is not None and answering.recipient.source != "From"
        if from_form_field and mail.sender and address == mail.sender.addr:
            return f"{address} is the form's own sender address"
        patterns = (*site.own_addresses, *site.form_senders, *guard.trusted_senders, *guard.catch_addresses,
                    *guard.redmine_from)
        if first_match([address], tuple(p.lower() for p in patterns)):
            return f"{address} is one of the gateway's own, trusted or form sender addresses"
        ours = {email.utils.parseaddr(value or "")[1].lower()
                for value in (answering.outgoing.from_address, answering.outgoing.envelope_sender)}
        if address in ours or address in mail.delivered_to:
            return f"{address} is an address of the gateway itself"
        if address in list_addresses(mail):
            return f"{address} is the mailing list's address"
        return None


class Unauthenticated:
    name = "unauthenticated"
    description = "[sender] authserv_id is set and the mail's From failed it (no backscatter to forged senders)"

    def check(self, answering: Answering) -> str | None:
        trusted, finding = authenticate(answering.mail, answering.settings.authserv_id)
        return None if trusted else f"From not authenticated: {finding}"


RULES: tuple[Rule, ...] = (NoRecipient(), NullSender(), Unauthenticated(), AutomaticMail(), RobotRecipient(),
                           NeverTo(), OwnOrListAddress())
#: A relayed staff note answers no mail of the requester's: the mail at hand is Redmine's
#: own notification (automatic by nature, from Redmine's address), so only the rules about
#: the recipient apply — and no once-per limit: every staff answer goes.
RELAY_RULES: tuple[Rule, ...] = (NoRecipient(), RobotRecipient(), NeverTo(), OwnOrListAddress())


def refusal(answering: Answering, rules: tuple[Rule, ...] = RULES) -> Refusal | None:
    """The first rule that forbids the answer, or None. Pure: reads nothing but its input."""
    for rule in rules:
        reason = rule.check(answering)
        if reason:
            return Refusal(rule.name, reason)
    return None


class OncePer:
    name = "once_per"
    description = "at most one automatic answer of a kind per requester within [acknowledge] once_per"

    def admit(self, answering: Answering, log: AnsweredLog, kind: str, message_id: str, period: float, *,
              record: bool = True) -> str | None:
        """None when the answer (Message-ID *message_id*) may go, claimed in *log* when
        *record*; else why not."""
        if answering.recipient is None:
            return "no requester address"
        earlier = log.claim(answering.recipient.addr, kind, message_id, period, record=record)
        if earlier is None:
            return None
        return f"{answering.recipient.addr} was answered within {period:g} s already (<{earlier.answers}>)"


ONCE_PER = OncePer()


def decide(answering: Answering, log: AnsweredLog, kind: str, message_id: str, period: float, *,
           record: bool = True) -> Refusal | None:
    """The rules, then the once-per-period limit. Without *record* (a dry run) the limit
    only looks."""
    found = refusal(answering)
    if found:
        return found
    reason = ONCE_PER.admit(answering, log, kind, message_id, period, record=record)
    return Refusal(ONCE_PER.name, reason) if reason else None


def list_addresses(mail: Mail) -> set[str]:
    """The list's own addresses: List-Post and the other mailto: links of RFC 2369."""
    found: set[str] = set()
    for name in ("list-post", "list-owner", "list-help", "list-subscribe", "list-unsubscribe"):
        for value in mail.header_all(name):
            found.update(address.strip().lower() for address in _MAILTO.findall(value))
    return found
