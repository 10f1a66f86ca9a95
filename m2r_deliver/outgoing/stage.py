"""The reply stage of a delivery: the acknowledgement of a new issue, and the relay of a
staff note to the issue's requester.

pipeline.py imports this module only when [acknowledge] or [relay] is on and there is
something to answer, and calls it in these places, all on the ledger's own connection
(its tables live in the ledger's file):

- ``owe``: a new issue was filed; the RFC 3834 rules and the once-per claim decide, and an
  admitted acknowledgement is recorded as owed — before the ledger records the mail as
  filed, so a process that dies in between leaves both for the retry.
- ``owe_relay``: Redmine's notification of a journal was read back (relay.py); the
  recipient rules decide, the mail is composed (with its files), and it is owed and its
  Message-ID claimed in one transaction: whichever notification of the journal comes
  first owes the one mail, every later one is dropped.
- ``pay``: after the ledger recorded the mail, the hand-over. The mail system not taking
  it now is the delivery's temporary failure (75): the retry, answered by the ledger as a
  duplicate, files nothing and finds the mail still owed (``owed``).
- ``preview``, ``preview_relay``: on --dry-run, what would be sent (the rules only;
  nothing is claimed).

Nothing here raises but ``owe_relay`` (a note not relayed for now must be retried, and the
notification is not recorded before it is owed): what becomes of the mail is a ``Reply``,
logged on the mail's one line.
"""

from __future__ import annotations

import time
from typing import Any

from ..config import Settings
from ..errors import DeliveryError, MailSystemRefused, classify
from ..mail import Mail
from ..plan import Outcome, Person, Plan, RelayNote
from ..route import RELAY_RULE
from ..states import Answered, Decision, MailKind
from .acknowledge import FiledIssue, acknowledgement, sender_address
from .answered import AnsweredLog, Owed, OwedLog, owe_once
from .compose import OutgoingMail, subject_tag, to_bytes
from .policy import RELAY_RULES, Answering, refusal
from .relayed import relayed_mail
from .send import Answer, admit, hand_over
from .tokens import message_id, secret_from_key
from ..valueclass import replace, valueclass

#: The rule a reply names when the mail system refused the acknowledgement for good, when
#: it was not taken for as long as the mail may be retried, or when it could not be made.
REFUSED, GAVE_UP, FAILED = "refused", "retry_for", "failed"


@valueclass(frozen=True)
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
    """The mail still owed for the filed (or relayed) mail *key* — an acknowledgement is
    claimed again, a relayed note's claim has stayed; a Reply when it is no longer sent
    (given up after [state] retry_for, or another acknowledgement went meanwhile)."""
    try:
        log = OwedLog(db)
        found = log.get(key)
        if found is None:
            return None
        waited = time.time() - found.since
        reason = None
        if waited >= settings.retry_for:
            rule, reason = GAVE_UP, f"the mail system did not take it in {waited / 3600:.1f} h"
        elif found.kind == MailKind.ACKNOWLEDGEMENT:
            earlier = AnsweredLog(db).claim(found.recipient, found.kind, found.message_id,
                                            settings.acknowledge.once_per)
            if earlier is not None:
                rule, reason = "once_per", f"{found.recipient} was answered meanwhile (<{earlier.answers}>)"
        if reason is None:
            return found
        log.paid(key)
        return Reply(Answer(Answered.NOT_ACKNOWLEDGED, found.issue_id, found.message_id, (found.recipient,), rule,
                            reason, kind=MailKind(found.kind)))
    except (Exception, KeyboardInterrupt) as exc:
        failure = classify(exc)
        return Reply(Answer(Answered.OWED, 0, "", ()), failure)


def pay(db, owed: Owed | Reply, settings: Settings) -> Reply:
    """Hand the owed acknowledgement to the mail system, and strike it off once taken or
    refused for good. (A Reply is what already became of it: returned as it is.)"""
    if isinstance(owed, Reply):
        return owed
    from .destinations import for_settings  # subprocess, smtplib: only when a mail is sent

    kind = MailKind(owed.kind)
    answer = Answer(Answered.WOULD_ACKNOWLEDGE, owed.issue_id, owed.message_id, (owed.recipient,),
                    message=owed.message, kind=kind)
    try:
        try:
            claims = AnsweredLog(db) if kind is MailKind.ACKNOWLEDGEMENT else None  # a relay's claim stays
            done = hand_over(answer, owed.kind, owed.recipient, claims, for_settings(settings.outgoing),
                             settings.outgoing)
        except MailSystemRefused as exc:
            done = replace(answer, decision=Answered.NOT_ACKNOWLEDGED, rule=REFUSED, reason=exc.reason)
        OwedLog(db).paid(owed.key)
    except (Exception, KeyboardInterrupt) as exc:
        return unpaid(owed, exc)
    return Reply(replace(done, message=None))


def unpaid(owed: Owed, exc: BaseException) -> Reply:
    """What became of *owed* when its hand-over ended in *exc*: still owed, the
    delivery's temporary failure."""
    return Reply(Answer(Answered.OWED, owed.issue_id, owed.message_id, (owed.recipient,), kind=MailKind(owed.kind)),
                 classify(exc))


def owe_relay(db, key: str, mail: Mail, plan: Plan, outcome: Outcome,
              settings: Settings) -> tuple[Owed | None, Outcome, Plan]:
    """The relayed mail of the journal relay.py read back into *plan*: owed (to be handed
    over by ``pay``), or None with the notification turned into a drop saying why not.
    Raises what keeps it from being composed now (a file that cannot be read): the
    notification is then retried, not recorded."""
    note = _note(plan)
    secret = secret_from_key(settings.key)
    msgid = message_id(note.kind, note.issue_id, note.journal_id, sender_address(settings.outgoing).rpartition("@")[2],
                       secret)
    earlier = OwedLog(db).get(key)
    if earlier is not None and earlier.message_id == msgid:
        return earlier, outcome, plan  # owed by an attempt that ended before recording the notification
    found = refusal(Answering(mail, note.requester, settings, settings.outgoing), RELAY_RULES)
    if found:
        return None, *_not_relayed(outcome, plan, f"{found.reason} ({found.rule})")
    from ..relay import fetch_files  # the files' contents, over REST

    composed = _relayed(note, settings, secret, fetch_files(note, settings))
    owed = Owed(key, note.kind.value, note.issue_id, note.requester.addr, msgid, to_bytes(composed), time.time())
    claimed = owe_once(db, owed, settings.keep_for)
    if claimed is not None:
        return None, *_not_relayed(outcome, plan, f"journal {note.journal_id} of #{note.issue_id} was relayed "
                                                  f"already (<{claimed.answers}>)")
    return owed, outcome, plan


def preview_relay(mail: Mail, plan: Plan, settings: Settings) -> dict[str, Any]:
    """For --dry-run: the mail the journal would be relayed as (its files named, not
    read), or the rule that refuses it. Whether it went already is not asked."""
    note = _note(plan)
    composed = _relayed(note, settings, secret_from_key(settings.key), ())
    shown: dict[str, Any] = {"to": note.requester.addr, "from": composed.from_address, "subject": composed.subject,
                             "message_id": f"<{composed.message_id}>", "in_reply_to": f"<{composed.in_reply_to}>"}
    found = refusal(Answering(mail, note.requester, settings, settings.outgoing), RELAY_RULES)
    if found:
        return {"decision": "not_relayed", **shown, "rule": found.rule, "reason": found.reason}
    text = settings.relay.text
    return {"decision": "would_relay", "kind": str(note.kind), **shown, "template": text.source if text else None,
            "text": composed.body, "attachments": [{"filename": f.filename, "size": f.size, "attached": f.attached}
                                                   for f in note.files]}


def _note(plan: Plan) -> RelayNote:
    if plan.relay is None:
        raise DeliveryError("no journal read back to relay")
    return plan.relay


def _relayed(note: RelayNote, settings: Settings, secret: bytes, files) -> OutgoingMail:
    if settings.relay.text is None:
        raise DeliveryError("no relay template loaded")
    return relayed_mail(note, settings.relay.text, settings.outgoing, secret, files)


def _not_relayed(outcome: Outcome, plan: Plan, reason: str) -> tuple[Outcome, Plan]:
    """The notification dropped by the relay rule, with *reason* (the log's ``guard=relay``)."""
    return replace(outcome, decision=Decision.DROPPED), replace(plan, guard=RELAY_RULE, reason=reason)


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

