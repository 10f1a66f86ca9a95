"""Send: an acknowledgement from decision to hand-over, the step a delivery calls.

policy.decide (the rules, then the once-per-period claim) → the mail's bytes →
Destination.send. A hand-over that fails for now releases the claim and raises
MailSystemUnavailable, so the retry answers again under the same Message-ID; one refused
for good keeps the claim (the address will not work better tomorrow) and raises
MailSystemRefused, which the caller logs without failing the delivery it answers.
"""

from __future__ import annotations

from typing import Any

from ..errors import MailSystemUnavailable
from ..states import Answered, MailKind
from .answered import AnsweredLog
from .compose import OutgoingMail, to_bytes
from .destinations import Destination
from .policy import Answering, decide
from ..config.outgoing import OutgoingSettings
from ..valueclass import replace, valueclass


@valueclass(frozen=True)
class Answer:
    """What became of one automatic answer, for the log line and --dry-run."""

    decision: Answered
    issue_id: int
    message_id: str
    to: tuple[str, ...]
    rule: str | None = None
    reason: str | None = None
    #: The mail as it was (or, on a dry run, would be) handed over; None when refused.
    message: bytes | None = None
    kind: MailKind = MailKind.ACKNOWLEDGEMENT

    def log_fields(self) -> dict[str, Any]:
        """Its fields on the mail's one log line (log.summary writes them): ``ack=`` the
        decision, ``to=``, and ``ack_rule=``, ``ack_reason=``, ``ack_msgid=`` when known.
        The issue is the line's own ``issue=``. A relayed note's are ``to=``, ``relay=``
        (only when it was not handed over: ``owed``, ``not_relayed``), ``relay_rule=``,
        ``relay_reason=`` and ``relay_msgid=``: the line's ``decision=relayed`` says the rest."""
        msgid = f"<{self.message_id}>" if self.message_id else None
        to = ",".join(self.to) or None
        if self.kind is MailKind.ACKNOWLEDGEMENT:
            return {"ack": self.decision, "to": to, "ack_rule": self.rule, "ack_reason": self.reason,
                    "ack_msgid": msgid}
        return {"to": to, "relay": _RELAY_WORDS.get(self.decision), "relay_rule": self.rule,
                "relay_reason": self.reason, "relay_msgid": msgid}


#: A relayed note's ``relay=``: nothing when it went.
_RELAY_WORDS = {Answered.NOT_ACKNOWLEDGED: "not_relayed", Answered.OWED: "owed",
                Answered.WOULD_ACKNOWLEDGE: "would_relay"}


def send_acknowledgement(answering: Answering, mail: OutgoingMail, log: AnsweredLog, destination: Destination,
                         settings: OutgoingSettings, period: float, *, dry_run: bool = False) -> Answer:
    """Send the acknowledgement *mail* in answer to *answering*, if RFC 3834 and the
    once-per *period* allow it."""
    answer = admit(answering, mail, log, period, dry_run=dry_run)
    if dry_run or answer.decision != Answered.WOULD_ACKNOWLEDGE or answering.recipient is None:
        return answer
    return hand_over(answer, mail.kind.value, answering.recipient.addr, log, destination, settings)


def admit(answering: Answering, mail: OutgoingMail, log: AnsweredLog, period: float, *,
          dry_run: bool = False) -> Answer:
    """The decision, and the once-per claim unless *dry_run*: ``would_acknowledge`` with the
    mail's bytes, or ``not_acknowledged`` with the rule that refused it."""
    refusal = decide(answering, log, mail.kind.value, mail.message_id, period, record=not dry_run)
    if refusal:
        return Answer(Answered.NOT_ACKNOWLEDGED, mail.issue_id, mail.message_id, mail.recipients, refusal.rule,
                      refusal.reason)
    return Answer(Answered.WOULD_ACKNOWLEDGE, mail.issue_id, mail.message_id, mail.recipients,
                  message=to_bytes(mail))


def hand_over(answer: Answer, kind: str, recipient: str, log: AnsweredLog | None, destination: Destination,
              settings: OutgoingSettings) -> Answer:
    """Hand an admitted answer to the mail system. Failing for now releases the once-per
    claim of *recipient* in *log* (None: the claim stays) and raises MailSystemUnavailable."""
    assert answer.message is not None, "only an admitted answer is handed over"
    try:
        destination.send(answer.message, settings.envelope_sender, answer.to)
    except MailSystemUnavailable:
        if log is not None:
            log.release(recipient, kind, answer.message_id)
        raise
    return replace(answer, decision=Answered.ACKNOWLEDGED)
