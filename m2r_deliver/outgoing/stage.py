"""The reply stage of a delivery: the acknowledgement of a new issue.

pipeline.py imports this module only when [acknowledge] is on, and calls it in three
places, all on the ledger's own connection (its tables live in the ledger's file):

- ``owe``: a new issue was filed; the RFC 3834 rules and the once-per claim decide, and an
  admitted acknowledgement is recorded as owed — before the ledger records the mail as
  filed, so a process that dies in between leaves both for the retry.
- ``pay``: after the ledger recorded the mail, the hand-over. The mail system not taking
  it now is the delivery's temporary failure (75): the retry, answered by the ledger as a
  duplicate, files nothing and finds the acknowledgement still owed (``owed``).
- ``preview``: on --dry-run, what would be sent (the rules only; nothing is claimed).

Nothing here raises: what becomes of the acknowledgement is a ``Reply``, logged on the
mail's one line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from ..config import Settings
from ..errors import DeliveryError, MailSystemRefused, classify
from ..mail import Mail
from ..plan import Outcome, Person, Plan
from ..states import Answered
from .acknowledge import FiledIssue, acknowledgement
from .answered import AnsweredLog, Owed, OwedLog
from .compose import subject_tag
from .policy import Answering, refusal
from .send import Answer, admit, hand_over
from .tokens import secret_from_key

#: The rule a reply names when the mail system refused the acknowledgement for good, when
#: it was not taken for as long as the mail may be retried, or when it could not be made.
REFUSED, GAVE_UP, FAILED = "refused", "retry_for", "failed"


@dataclass(frozen=True)
class Reply:
    """What became of the acknowledgement: for the log line, and, with a temporary
    *failure*, the exit status (the mail is kept and the acknowledgement stays owed)."""

    answer: Answer
    failure: DeliveryError | None = None

    def log_fields(self) -> dict[str, Any]:
        return self.answer.log_fields()


def owe(db, key: str, mail: Mail, plan: Plan, outcome: Outcome, settings: Settings) -> Owed | Reply:
    """The acknowledgement of the issue *outcome* filed for *plan*: owed (recorded, to be
    handed over by ``pay``), or the Reply saying why none is sent."""
    issue_id = outcome.issue_id or 0
    try:
        resolved = plan.resolved or {}
        issue = FiledIssue(issue_id, plan.subject, resolved.get("project_name") or plan.project or "",
                           resolved.get("tracker_name") or str(plan.fields.get("tracker") or ""),
                           outcome.url or f"{settings.url}/issues/{issue_id}")
        ack = _compose(issue, plan.requester, mail, settings)
        answering = Answering(mail, plan.requester, settings, settings.outgoing)
        answer = admit(answering, ack, AnsweredLog(db), settings.acknowledge.once_per)
        if answer.decision != Answered.WOULD_ACKNOWLEDGE or plan.requester is None or answer.message is None:
            return Reply(answer)
        owed = Owed(key, ack.kind.value, issue_id, plan.requester.addr, ack.message_id, answer.message, time.time())
        OwedLog(db).owe(owed)
        return owed
    except (Exception, KeyboardInterrupt) as exc:  # the issue is filed: nothing here may undo that
        failure = classify(exc)
        return Reply(Answer(Answered.NOT_ACKNOWLEDGED, issue_id, "", _to(plan.requester), FAILED, failure.reason))


def owed(db, key: str, settings: Settings) -> Owed | Reply | None:
    """The acknowledgement still owed for the filed mail *key*, claimed again; a Reply when
    it is no longer sent (given up after [state] retry_for, or another went meanwhile)."""
    try:
        log = OwedLog(db)
        found = log.get(key)
        if found is None:
            return None
        waited = time.time() - found.since
        reason = None
        if waited >= settings.retry_for:
            rule, reason = GAVE_UP, f"the mail system did not take it in {waited / 3600:.1f} h"
        else:
            earlier = AnsweredLog(db).claim(found.recipient, found.kind, found.message_id,
                                            settings.acknowledge.once_per)
            if earlier is not None:
                rule, reason = "once_per", f"{found.recipient} was answered meanwhile (<{earlier.answers}>)"
        if reason is None:
            return found
        log.paid(key)
        return Reply(Answer(Answered.NOT_ACKNOWLEDGED, found.issue_id, found.message_id, (found.recipient,), rule,
                            reason))
    except (Exception, KeyboardInterrupt) as exc:
        failure = classify(exc)
        return Reply(Answer(Answered.OWED, 0, "", ()), failure)


def pay(db, owed: Owed | Reply, settings: Settings) -> Reply:
    """Hand the owed acknowledgement to the mail system, and strike it off once taken or
    refused for good. (A Reply is what already became of it: returned as it is.)"""
    if isinstance(owed, Reply):
        return owed
    from .destinations import for_settings  # subprocess, smtplib: only when a mail is sent

    answer = Answer(Answered.WOULD_ACKNOWLEDGE, owed.issue_id, owed.message_id, (owed.recipient,),
                    message=owed.message)
    try:
        try:
            done = hand_over(answer, owed.kind, owed.recipient, AnsweredLog(db), for_settings(settings.outgoing),
                             settings.outgoing)
        except MailSystemRefused as exc:
            done = replace(answer, decision=Answered.NOT_ACKNOWLEDGED, rule=REFUSED, reason=exc.reason)
        OwedLog(db).paid(owed.key)
    except (Exception, KeyboardInterrupt) as exc:
        return Reply(replace(answer, decision=Answered.OWED), classify(exc))
    return Reply(replace(done, message=None))


def preview(mail: Mail, plan: Plan, settings: Settings) -> dict[str, Any]:
    """For --dry-run: the acknowledgement a new issue of *plan* would get (its number is
    not known yet: ``#N``), or the rule that refuses it. The once-per limit is not asked."""
    project, tracker = plan.project or "", str(plan.fields.get("tracker") or "")
    shown: dict[str, Any] = {"to": plan.requester.addr if plan.requester else None,
                             "from": settings.outgoing.from_address,
                             "subject": subject_tag(project, tracker, "N", plan.subject)}
    found = refusal(Answering(mail, plan.requester, settings, settings.outgoing))
    if found:
        return {"decision": str(Answered.NOT_ACKNOWLEDGED), **shown, "rule": found.rule, "reason": found.reason}
    text = settings.acknowledge.text
    body = text.fill({"issue_id": "N", "subject": plan.subject, "project": project, "tracker": tracker,
                      "requester": plan.requester.name or plan.requester.addr if plan.requester else "",
                      "url": f"{settings.url}/issues/N"}) if text else None
    return {"decision": str(Answered.WOULD_ACKNOWLEDGE), **shown, "template": text.source if text else None,
            "text": body, "once_per": "not checked on a dry run"}


def _compose(issue: FiledIssue, requester: Person | None, mail: Mail, settings: Settings):
    text = settings.acknowledge.text
    if text is None:
        raise DeliveryError("no acknowledgement template loaded")
    return acknowledgement(issue, requester or Person(""), mail, text, settings.outgoing,
                           secret_from_key(settings.key))


def _to(requester: Person | None) -> tuple[str, ...]:
    return (requester.addr,) if requester else ()

