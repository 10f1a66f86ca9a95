"""Send: an acknowledgement from decision to hand-over, the step a delivery calls.

policy.decide (the rules, then the once-per-period claim) → the mail's bytes →
Destination.send. A hand-over that fails for now releases the claim and raises
MailSystemUnavailable, so the retry answers again under the same Message-ID; one refused
for good keeps the claim (the address will not work better tomorrow) and raises
MailSystemRefused, which the caller logs without failing the delivery it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MailSystemUnavailable
from ..states import Answered
from .answered import AnsweredLog
from .compose import OutgoingMail, to_bytes
from .destinations import Destination
from .policy import Answering, decide
from ..config.outgoing import OutgoingSettings


@dataclass(frozen=True)
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

    def log_fields(self) -> str:
        """``decision=acknowledged issue=#12 to=taro@example.org``, as the log writes it."""
        fields = [f"decision={self.decision}", f"issue=#{self.issue_id}", f"to={','.join(self.to) or '-'}"]
        if self.rule:
            fields.append(f"rule={self.rule}")
        fields.append(f"message_id=<{self.message_id}>")
        return " ".join(fields)


def send_acknowledgement(answering: Answering, mail: OutgoingMail, log: AnsweredLog, destination: Destination,
                         settings: OutgoingSettings, period: float, *, dry_run: bool = False) -> Answer:
    """Send the acknowledgement *mail* in answer to *answering*, if RFC 3834 and the
    once-per *period* allow it."""
    kind = mail.kind.value
    refusal = decide(answering, log, kind, mail.message_id, period, record=not dry_run)
    if refusal:
        return Answer(Answered.NOT_ACKNOWLEDGED, mail.issue_id, mail.message_id, mail.recipients, refusal.rule,
                      refusal.reason)
    data = to_bytes(mail)
    if dry_run:
        return Answer(Answered.WOULD_ACKNOWLEDGE, mail.issue_id, mail.message_id, mail.recipients, message=data)
    try:
        destination.send(data, settings.envelope_sender, mail.recipients)
    except MailSystemUnavailable:
        if answering.recipient:
            log.release(answering.recipient.addr, kind, mail.message_id)
        raise
    return Answer(Answered.ACKNOWLEDGED, mail.issue_id, mail.message_id, mail.recipients, message=data)
