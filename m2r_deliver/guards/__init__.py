"""Guard: the chain of small named rules that decide, before any network work, whether a
mail is machine noise. The first rule that fires decides; its name is logged.

Each rule is a class with a ``name``, a one-line ``description`` and ``check(mail,
settings)`` returning the reason it fires, or None. ``trust_overrides`` says whether a
sender in [guard] trusted_senders passes it anyway. A new rule is a new module here, added
to ``CHAIN`` in the order it should run (and its name to config.GUARD_NAMES).

The order: first the mail that would loop back through Redmine (its own notifications,
a site's loop marker); then mail that says what it is (Auto-Submitted), so that a vacation
reply is logged as one; then bounces and delivery reports; then mail not addressed to us;
then the weaker signs of automatic and list mail. Last, for mail that passed them all,
the per-sender rate limit, which holds instead of dropping and must count only mail that
would be filed.
"""

from __future__ import annotations

from typing import Protocol

from ..config import Settings
from ..ledger import Ledger
from ..mail import Mail
from ..states import Action
from .addresses import is_trusted
from .automatic import AutoReply, AutoSubmitted
from .bounce import Bounce
from .lists import Bulk, DaemonSender, MailingList
from .loop_marker import LoopMarker
from .not_addressed import NotAddressed
from .own_mail import RedmineOwnMail
from .rate_limit import RateLimit
from ..valueclass import valueclass


@valueclass(frozen=True, eq=False)
class Verdict:
    """What a guard found: which guard, why, and what becomes of the mail."""

    guard: str
    reason: str
    #: "drop" the mail, or "hold" it in the hold Maildir (the rate limit).
    action: Action = Action.DROP


class Guard(Protocol):
    name: str
    description: str
    trust_overrides: bool

    def check(self, mail: Mail, settings: Settings) -> str | None: ...


CHAIN: tuple[Guard, ...] = (
    RedmineOwnMail(),
    LoopMarker(),
    AutoSubmitted(),
    Bounce(),
    NotAddressed(),
    AutoReply(),
    Bulk(),
    MailingList(),
    DaemonSender(),
)
BREAKER = RateLimit()


def run(mail: Mail, settings: Settings, chain: tuple[Guard, ...] = CHAIN) -> Verdict | None:
    """The first guard of *chain* that fires, or None. Pure: reads nothing but the mail."""
    trusted = is_trusted(mail, settings)
    for guard in chain:
        if settings.guard.enabled(guard.name) and not (trusted and guard.trust_overrides):
            reason = guard.check(mail, settings)
            if reason:
                return Verdict(guard.name, reason)
    return None


def decide(mail: Mail, settings: Settings, *, record: bool = True, ledger: Ledger | None = None) -> Verdict | None:
    """The chain, then the rate limit for mail that would be filed, counted in *ledger*
    (the delivery's own). Without *record* (a dry run) the rate limit only looks."""
    verdict = run(mail, settings)
    if verdict or (BREAKER.trust_overrides and is_trusted(mail, settings)):
        return verdict
    reason = BREAKER.admit(mail, settings, record=record, ledger=ledger)
    return Verdict(BREAKER.name, reason, action=Action.HOLD) if reason else None
