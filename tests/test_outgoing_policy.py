"""RFC 3834's rules for an automatic answer, each on its own, on the project's guard
fixtures and on the original setup's web-form mail; and the once-per-period record."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from support.paths import ROOT
from support.mails import make_mail, parsed
from m2r_deliver import guards
from m2r_deliver.config import GuardSettings, Settings
from m2r_deliver.errors import MailSystemRefused, MailSystemUnavailable, StateError
from m2r_deliver.identity import requester
from m2r_deliver.outgoing import policy, templates
from m2r_deliver.outgoing.acknowledge import FiledIssue, acknowledgement
from m2r_deliver.outgoing.answered import AnsweredLog
from m2r_deliver.outgoing.policy import Answering
from m2r_deliver.outgoing.send import send_acknowledgement
from m2r_deliver.config.outgoing import OutgoingSettings
from m2r_deliver.outgoing.tokens import secret_from_key
from m2r_deliver.plan import Person

FIXTURES = ROOT / "tests" / "fixtures" / "guards"
FORM = "request@example.org"
WEB_FORM = {"Auto-Submitted": "auto-generated", "Precedence": "list", "List-Id": "<request.example.org>",
            "List-Post": "<mailto:request@example.org>"}
FORM_BODY = "依頼者メール: hanako@example.jp\n内容: プリンタが動きません\n"
SITE = Settings(url="http://127.0.0.1:9", key="k", own_addresses=("helpdesk@example.org",), form_senders=(FORM,),
                requester_labels=("依頼者メール",), guard=GuardSettings(trusted_senders=(FORM,)))
OUTGOING = OutgoingSettings(from_address="Helpdesk <helpdesk@example.org>",
                            envelope_sender="helpdesk+bounces@example.org")
HANAKO = Person("hanako@example.jp", "", "form field 依頼者メール")


def answering(data: bytes, recipient: Person | None = None, settings: Settings = SITE) -> Answering:
    mail = parsed(data)
    if recipient is None:
        recipient = requester(mail, (), None)
    return Answering(mail, recipient, settings, OUTGOING)


def refused_by(data: bytes, recipient: Person | None = None, settings: Settings = SITE) -> str | None:
    found = policy.refusal(answering(data, recipient, settings))
    return found.rule if found else None


def test_a_persons_mail_is_answered():
    assert refused_by(make_mail()) is None


def test_the_trusted_forms_mail_is_answered_at_its_requester():
    form_mail = make_mail(body=FORM_BODY, sender=f"Web form <{FORM}>", headers=WEB_FORM)
    assert refused_by(form_mail, HANAKO) is None


def test_the_same_form_mail_from_an_untrusted_sender_is_automatic():
    untrusted = Settings(url="http://127.0.0.1:9", key="k")
    form_mail = make_mail(body=FORM_BODY, sender=f"Web form <{FORM}>", headers=WEB_FORM)
    assert refused_by(form_mail, HANAKO, untrusted) == "automatic_mail"


def test_the_form_is_never_answered_at_its_own_address():
    form_mail = make_mail(body=FORM_BODY, sender=f"Web form <{FORM}>", headers=WEB_FORM)
    itself = answering(form_mail, Person(FORM, "", "form field 依頼者メール"))
    assert "the form's own sender address" in policy.OwnOrListAddress().check(itself)
    assert policy.refusal(itself)  # the automatic_mail rule comes first: the form names no human
    assert refused_by(form_mail, Person(FORM)) == "automatic_mail"  # the From of list mail


def test_null_sender_is_never_answered():
    assert refused_by(make_mail(headers={"Return-Path": "<>"})) == "null_sender"
    assert refused_by(make_mail(mbox_from="MAILER-DAEMON")) == "automatic_mail"


@pytest.mark.parametrize("headers", [
    {"Auto-Submitted": "auto-replied (vacation)"},
    {"Auto-Submitted": "auto-generated"},
    {"X-Autoreply": "yes"},
    {"X-Auto-Response-Suppress": "OOF"},
    {"Precedence": "bulk"},
    {"Precedence": "junk"},
    {"List-Id": "<users.lists.example.org>"},
    {"Precedence": "list"},
])
def test_automatic_and_list_mail_is_never_answered(headers):
    assert refused_by(make_mail(headers=headers)) == "automatic_mail"


def test_auto_submitted_no_is_a_persons_mail():
    assert refused_by(make_mail(headers={"Auto-Submitted": "no"})) is None


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.eml")) if FIXTURES.exists() else [])
def test_the_guard_fixtures_are_answered_exactly_when_the_guards_take_them_for_a_persons(fixture):
    """A mail the guards take for automatic is never answered, whatever [guard] switches
    off: the rules are the guards' own signs. A person's mail that merely looks like a
    bounce is answered."""
    site = Settings(url="http://127.0.0.1:9", key="k")
    mail = parsed((FIXTURES / fixture).read_bytes())
    verdict = guards.run(mail, site)
    refused = policy.refusal(Answering(mail, requester(mail, (), None), site, OUTGOING))
    assert (refused is None) == (verdict is None), (verdict, refused)


@pytest.mark.parametrize("address", ["mailer-daemon@example.org", "owner-users@lists.example.org",
                                     "users-request@lists.example.org", "noreply@example.com",
                                     "no-reply+abc@example.com", "donotreply@example.com"])
def test_robot_addresses_are_never_answered(address):
    """Named by the trusted form (its automatic headers are the form's), or writing
    themselves (then they are automatic mail already)."""
    form_mail = make_mail(body=FORM_BODY, sender=f"Web form <{FORM}>", headers=WEB_FORM)
    assert refused_by(form_mail, Person(address, "", "form field 依頼者メール")) == "robot_recipient"
    assert refused_by(make_mail(sender=address)) in ("automatic_mail", "robot_recipient")


@pytest.mark.parametrize("address", ["helpdesk@example.org", "helpdesk+bounces@example.org"])
def test_the_gateways_own_addresses_are_never_answered(address):
    assert refused_by(make_mail(sender=address)) == "own_or_list_address"


def test_never_to_keeps_monitoring_systems_unanswered():
    """The original setup's monitoring mail (examples/mail/04-ops-alias.eml) files an issue
    in ops; with [outgoing] never_to its sender gets no mail, a person still does."""
    from dataclasses import replace

    nagios = (ROOT / "examples" / "mail" / "04-ops-alias.eml").read_bytes()
    outgoing = replace(OUTGOING, never_to=("*@monitor.example.org",))
    assert policy.refusal(Answering(parsed(nagios), requester(parsed(nagios), (), None), SITE, OUTGOING)) is None
    found = policy.refusal(Answering(parsed(nagios), requester(parsed(nagios), (), None), SITE, outgoing))
    assert found is not None and found.rule == "never_to" and "nagios@monitor.example.org" in found.reason
    assert policy.refusal(Answering(parsed(make_mail()), requester(parsed(make_mail()), (), None), SITE,
                                    outgoing)) is None


def test_the_address_the_mail_was_delivered_to_is_never_answered():
    data = b"Delivered-To: request+ops@example.org\n" + make_mail(sender="request+ops@example.org")
    assert refused_by(data) == "own_or_list_address"


def test_a_requester_who_is_the_lists_posting_address_is_never_answered():
    form_mail = make_mail(body=FORM_BODY, sender=f"Web form <{FORM}>",
                          headers={**WEB_FORM, "List-Post": "<mailto:users@lists.example.org>"})
    posting = Person("users@lists.example.org", "", "form field 依頼者メール")
    assert refused_by(form_mail, posting) == "own_or_list_address"


def test_no_requester_no_answer():
    assert refused_by(make_mail(), Person("")) == "no_recipient"
    assert policy.refusal(Answering(parsed(make_mail()), None, SITE, OUTGOING)).rule == "no_recipient"


AUTHENTICATED = Settings(url="http://127.0.0.1:9", key="k", authserv_id="mx.example.org")


def test_with_authserv_id_a_from_that_failed_it_is_never_answered():
    forged = make_mail(headers={"Authentication-Results": "mx.example.org; dkim=fail; spf=fail "
                                                          "smtp.mailfrom=taro@example.org"})
    assert refused_by(forged, settings=AUTHENTICATED) == "unauthenticated"
    assert refused_by(make_mail(), settings=AUTHENTICATED) == "unauthenticated"  # no results at all
    passed = make_mail(headers={"Authentication-Results": "mx.example.org; dkim=pass header.d=example.org"})
    assert refused_by(passed, settings=AUTHENTICATED) is None
    assert refused_by(forged) is None  # without authserv_id nothing is checked


def test_every_rule_has_a_name_and_a_description():
    names = [rule.name for rule in policy.RULES] + [policy.ONCE_PER.name]
    assert len(set(names)) == len(names)
    assert all(rule.description for rule in (*policy.RULES, policy.ONCE_PER))


# --- once per period ----------------------------------------------------------------------

@pytest.fixture
def log(tmp_path: Path):
    db = sqlite3.connect(tmp_path / "answered.sqlite3", isolation_level=None)
    yield AnsweredLog(db)
    db.close()


def test_one_answer_per_requester_per_period(log):
    assert log.claim("Taro@example.org", "ack", "m2r.ack-1@x", 86400, now=1000) is None
    earlier = log.claim("taro@example.org", "ack", "m2r.ack-2@x", 86400, now=2000)
    assert earlier is not None and earlier.answers == "m2r.ack-1@x"
    assert log.claim("hanako@example.jp", "ack", "m2r.ack-3@x", 86400, now=2000) is None  # another requester
    assert log.claim("taro@example.org", "note", "m2r.note-1-5@x", 86400, now=2000) is None  # another kind
    assert log.claim("taro@example.org", "ack", "m2r.ack-4@x", 86400, now=1000 + 86401) is None  # period over


def test_the_same_answer_again_is_no_second_answer(log):
    assert log.claim("taro@example.org", "ack", "m2r.ack-1@x", 86400, now=1000) is None
    assert log.claim("taro@example.org", "ack", "m2r.ack-1@x", 86400, now=1500) is None  # a retry


def test_a_released_claim_lets_another_answer_go(log):
    log.claim("taro@example.org", "ack", "m2r.ack-1@x", 86400, now=1000)
    log.release("taro@example.org", "ack", "m2r.ack-1@x")
    assert log.claim("taro@example.org", "ack", "m2r.ack-2@x", 86400, now=1001) is None


def test_a_dry_run_only_looks(log):
    assert log.claim("taro@example.org", "ack", "m2r.ack-1@x", 86400, record=False, now=1000) is None
    assert log.claim("taro@example.org", "ack", "m2r.ack-2@x", 86400, now=1001) is None


def test_decide_runs_the_rules_then_the_limit(log):
    person = answering(make_mail())
    assert policy.decide(person, log, "ack", "m2r.ack-1@x", 86400) is None
    again = policy.decide(person, log, "ack", "m2r.ack-2@x", 86400)
    assert again.rule == "once_per" and "m2r.ack-1@x" in again.reason
    vacation = answering(make_mail(headers={"Auto-Submitted": "auto-replied"}))
    assert policy.decide(vacation, log, "ack", "m2r.ack-3@x", 86400).rule == "automatic_mail"


def test_two_processes_answering_one_requester_at_once_send_one(tmp_path):
    path = tmp_path / "answered.sqlite3"
    AnsweredLog(sqlite3.connect(path, isolation_level=None)).db.close()
    results: list = []
    start = threading.Barrier(8)

    def answer(number: int) -> None:
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
        start.wait()
        results.append(AnsweredLog(db).claim("taro@example.org", "ack", f"m2r.ack-{number}@x", 86400))
        db.close()

    threads = [threading.Thread(target=answer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is None for result in results) == 1 and len(results) == 8


def test_the_log_lives_in_an_existing_database_beside_other_tables(tmp_path):
    db = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    db.execute("CREATE TABLE deliveries (key TEXT PRIMARY KEY)")
    AnsweredLog(db).claim("taro@example.org", "ack", "m2r.ack-1@x", 86400)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"deliveries", "answered"}


def test_a_connection_outside_autocommit_is_refused(tmp_path):
    with pytest.raises(ValueError, match="autocommit"):
        AnsweredLog(sqlite3.connect(tmp_path / "x.sqlite3"))


def test_an_unwritable_log_is_a_state_error(tmp_path):
    path = tmp_path / "answered.sqlite3"
    AnsweredLog(sqlite3.connect(path, isolation_level=None)).db.close()
    read_only = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    with pytest.raises(StateError, match="answered log: claiming"):
        AnsweredLog(read_only).claim("taro@example.org", "ack", "m2r.ack-1@x", 86400)


# --- from decision to hand-over ------------------------------------------------------------

class Recording:
    """A destination that keeps what it was handed, or fails as told."""

    def __init__(self, failure: Exception | None = None):
        self.failure, self.handed = failure, []

    def send(self, message, envelope_sender, recipients):
        if self.failure:
            raise self.failure
        self.handed.append((message, envelope_sender, tuple(recipients)))

    def probe(self):
        return "recording"


def ack_for(data: bytes, recipient: Person, issue_id: int = 7):
    issue = FiledIssue(issue_id, "Printer", "Helpdesk", "Support", "http://r.example/issues/7")
    person = answering(data, recipient)
    return person, acknowledgement(issue, recipient, person.mail, templates.load("ack.en.txt", None), OUTGOING,
                                   secret_from_key("k"))


def test_an_acknowledgement_is_handed_over_once_per_period(log):
    destination = Recording()
    person, ack = ack_for(make_mail(), Person("taro@example.org", "Taro"))
    done = send_acknowledgement(person, ack, log, destination, OUTGOING, 86400)
    fields = done.log_fields()
    assert (done.decision, fields["ack"], fields["to"], fields["ack_rule"]) == \
        ("acknowledged", "acknowledged", "taro@example.org", None)
    assert fields["ack_msgid"].startswith("<m2r.ack-7.")
    [(message, envelope, recipients)] = destination.handed
    assert envelope == "helpdesk+bounces@example.org" and recipients == ("taro@example.org",)
    assert message == done.message
    again = send_acknowledgement(person, ack, log, destination, OUTGOING, 86400)  # the same issue: a retry
    assert again.decision == "acknowledged" and len(destination.handed) == 2
    _, second = ack_for(make_mail(), Person("taro@example.org", "Taro"), issue_id=8)
    refused = send_acknowledgement(person, second, log, destination, OUTGOING, 86400)
    assert (refused.decision, refused.rule, refused.message) == ("not_acknowledged", "once_per", None)
    assert len(destination.handed) == 2


def test_a_refused_answer_is_never_handed_over(log):
    destination = Recording()
    person, ack = ack_for(make_mail(headers={"Auto-Submitted": "auto-replied"}), Person("taro@example.org"))
    done = send_acknowledgement(person, ack, log, destination, OUTGOING, 86400)
    assert (done.decision, done.rule) == ("not_acknowledged", "automatic_mail") and destination.handed == []


def test_a_dry_run_shows_the_mail_and_claims_nothing(log):
    destination = Recording()
    person, ack = ack_for(make_mail(), Person("taro@example.org"))
    done = send_acknowledgement(person, ack, log, destination, OUTGOING, 86400, dry_run=True)
    assert done.decision == "would_acknowledge" and b"Auto-Submitted: auto-replied" in done.message
    assert destination.handed == []
    _, other = ack_for(make_mail(), Person("taro@example.org"), issue_id=8)
    assert send_acknowledgement(person, other, log, destination, OUTGOING, 86400).decision == "acknowledged"


def test_a_failed_hand_over_is_retried_and_a_refused_one_is_not(log):
    person, ack = ack_for(make_mail(), Person("taro@example.org"))
    with pytest.raises(MailSystemUnavailable):
        send_acknowledgement(person, ack, log, Recording(MailSystemUnavailable("down")), OUTGOING, 86400)
    _, other = ack_for(make_mail(), Person("taro@example.org"), issue_id=8)
    assert log.claim("taro@example.org", "ack", other.message_id, 86400, record=False) is None  # released
    with pytest.raises(MailSystemRefused):
        send_acknowledgement(person, ack, log, Recording(MailSystemRefused("550")), OUTGOING, 86400)
    assert log.claim("taro@example.org", "ack", other.message_id, 86400, record=False) is not None  # kept
