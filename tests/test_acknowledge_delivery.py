"""The acknowledgement in a delivery, in-process: Redmine's side is a stand-in for
deliver.execute (it counts the issues it files), the mail system a stand-in sendmail
program that keeps what it is handed and exits with the status the test sets. The same
path through the real Redmine and the real Postfix is tests/e2e/test_acknowledge_chain.py.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
from dataclasses import replace
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest

from m2r_deliver import pipeline, thread
from m2r_deliver.errors import ConfigError
from m2r_deliver.ledger import FILE_NAME
from m2r_deliver.mail import parse
from m2r_deliver.outgoing.tokens import message_id, secret_from_key
from m2r_deliver.plan import Outcome, ThreadRef
from m2r_deliver.read import read_message
from m2r_deliver.route import plan_issue
from m2r_deliver.states import Action, Decision, MailKind, Via
from support.mails import make_mail
from support.paths import ROOT
from support.sendmail import SendmailStandIn
from support.testbed import imported_modules
from support.inprocess import delivered, settings_of

FORM = "web-form@lists.example.org"
REQUESTER = "hanako@example.net"
FORM_BODY = f"お名前: 山田 花子\nメール: {REQUESTER}\n内容: プリンタが動きません\n"


class FilingStandIn:
    """deliver.execute as Redmine would answer it: each new issue gets the next number."""

    def __init__(self):
        self.filed: list[str] = []

    def __call__(self, plan, mail, settings, attempt, *, dry_run=False):
        if dry_run:
            return Outcome(Decision.PLANNED, author="admin"), plan
        if plan.action != Action.CREATE:
            self.filed.append(f"note on #{plan.thread[0].issue_id}")
            return Outcome(Decision.FILED, plan.thread[0].issue_id, author="admin"), plan
        self.filed.append(plan.subject)
        issue_id = 40 + len(self.filed)
        names = {"project_name": "Helpdesk", "tracker_name": "Support"}
        return (Outcome(Decision.FILED, issue_id, f"{settings.url}/issues/{issue_id}", "admin"),
                replace(plan, resolved=names))


@pytest.fixture
def gateway(offline_site, tmp_path, monkeypatch):
    filing = FilingStandIn()
    monkeypatch.setattr(pipeline, "execute", filing)
    sendmail = SendmailStandIn(tmp_path)
    configure(offline_site, sendmail)
    offline_site.filing, offline_site.sendmail = filing, sendmail
    return offline_site


def configure(site, sendmail, *, acknowledge="enabled = true", state=""):
    site.write_config(
        f'[sender]\nrequester_labels = ["メール"]\n\n[form]\nsenders = ["{FORM}"]\n\n'
        f'[guard]\ntrusted_senders = ["{FORM}"]\n\n'
        f'[outgoing]\nsendmail = "{sendmail.program}"\nfrom = "Helpdesk <request@example.org>"\n'
        f'envelope_sender = "request+bounces@example.org"\n\n[acknowledge]\n{acknowledge}\n')
    if state:
        site.config_path.write_text(site.config_path.read_text().replace("[state]\n", f"[state]\n{state}\n"))


def deliver(site, data, *, dry_run=False):
    done = delivered(settings_of(site), data, dry_run=dry_run)
    return done.result, done.stdout


#: The original setup's form: it posts through the list, and says its mail is a program's.
FORM_HEADERS = {"Auto-Submitted": "auto-generated", "List-Id": "<request.lists.example.org>", "Precedence": "list"}


def form_mail(subject="プリンタが動きません", msgid="form-1@lists.example.org", body=FORM_BODY):
    return make_mail(subject, body, sender=f"Web form <{FORM}>", msgid=msgid, headers=FORM_HEADERS)


def last_line(site):
    return site.log_file.read_text().splitlines()[-1]


def subject_of(message: bytes) -> str:
    return str(make_header(decode_header(message_from_bytes(message)["Subject"])))


def test_a_new_issue_for_a_form_requester_gets_one_acknowledgement(gateway):
    result, _ = deliver(gateway, form_mail())
    assert (result.status, result.outcome.decision, gateway.filing.filed) == (0, "filed", ["プリンタが動きません"])
    [(argv, message)] = gateway.sendmail.runs()
    assert argv == ["-i", "-f", "request+bounces@example.org", "--", REQUESTER]
    ack = message_from_bytes(message)
    assert subject_of(message) == "[Helpdesk - Support #41] プリンタが動きません"
    assert (ack["To"], ack["Auto-Submitted"]) == (REQUESTER, "auto-replied")
    assert ack["In-Reply-To"] == "<form-1@lists.example.org>"
    line = last_line(gateway)
    assert f" msgid=form-1@lists.example.org sender={FORM} decision=filed issue=#41 " in line
    assert re.search(r"/issues/41 ack=acknowledged to=hanako@example.net ack_msgid=<m2r\.ack-41\.[0-9a-f]+@example"
                     r"\.org> ms=\d+$", line), line


def test_the_hand_over_failing_for_now_keeps_the_mail_and_the_retry_acknowledges_without_filing_again(gateway):
    gateway.sendmail.exits(75)
    first, _ = deliver(gateway, form_mail())
    assert first.status == 75 and first.failure.fault == "mail_system"
    assert gateway.filing.filed == ["プリンタが動きません"]
    assert " decision=filed issue=#41 " in last_line(gateway) and " ack=owed " in last_line(gateway)
    assert "fault=mail_system" in last_line(gateway)
    [(_, tried)] = gateway.sendmail.runs()

    gateway.sendmail.exits(0)
    second, _ = deliver(gateway, form_mail())
    assert (second.status, second.outcome.decision) == (0, "duplicate")
    assert gateway.filing.filed == ["プリンタが動きません"], "filed a second time"
    runs = gateway.sendmail.runs()
    assert len(runs) == 2 and runs[1][1] == tried  # the same mail, the same Message-ID
    assert " ack=acknowledged to=hanako@example.net " in last_line(gateway)

    third, _ = deliver(gateway, form_mail())
    assert (third.status, len(gateway.sendmail.runs()), gateway.filing.filed) == (0, 2, ["プリンタが動きません"])
    assert " ack=" not in last_line(gateway)


def test_an_acknowledgement_refused_for_good_does_not_fail_the_delivery_nor_come_back(gateway):
    gateway.sendmail.exits(67)  # EX_NOUSER
    first, _ = deliver(gateway, form_mail())
    assert (first.status, first.outcome.decision) == (0, "filed")
    assert " ack=not_acknowledged to=hanako@example.net ack_rule=refused " in last_line(gateway)
    again, _ = deliver(gateway, form_mail())
    assert again.status == 0 and len(gateway.sendmail.runs()) == 1


def test_an_acknowledgement_owed_longer_than_retry_for_is_given_up(gateway):
    configure(gateway, gateway.sendmail, state='retry_for = "0s"')
    gateway.sendmail.exits(75)
    assert deliver(gateway, form_mail())[0].status == 75
    gateway.sendmail.exits(0)
    again, _ = deliver(gateway, form_mail())
    assert again.status == 0 and len(gateway.sendmail.runs()) == 1
    assert " ack=not_acknowledged to=hanako@example.net ack_rule=retry_for " in last_line(gateway)


def test_without_a_form_the_from_address_is_acknowledged(gateway):
    result, _ = deliver(gateway, make_mail("VPN is down", sender="Taro Yamada <taro@example.org>"))
    assert result.status == 0
    [(argv, message)] = gateway.sendmail.runs()
    assert argv[-1] == "taro@example.org" and message_from_bytes(message)["To"] == "Taro Yamada <taro@example.org>"
    assert subject_of(message) == "[Helpdesk - Support #41] VPN is down"


def test_the_policy_decides_in_the_delivery(gateway):
    robot = FORM_BODY.replace(REQUESTER, "no-reply@example.net")
    result, _ = deliver(gateway, form_mail(msgid="form-robot@lists.example.org", body=robot))
    assert result.status == 0 and gateway.sendmail.runs() == []
    assert " ack=not_acknowledged to=no-reply@example.net ack_rule=robot_recipient " in last_line(gateway)

    deliver(gateway, form_mail(msgid="form-2@lists.example.org"))
    deliver(gateway, form_mail("トナー切れ", msgid="form-3@lists.example.org"))
    assert len(gateway.sendmail.runs()) == 1  # once per requester per day
    assert " ack_rule=once_per " in last_line(gateway)
    assert gateway.filing.filed[1:] == ["プリンタが動きません", "トナー切れ"]


def test_a_reply_and_a_dropped_mail_get_none_and_without_enabled_nothing_is_sent(gateway):
    deliver(gateway, make_mail("Re: [Helpdesk - Support #7] printer", "thanks", msgid="reply-1@example.net"))
    assert gateway.filing.filed == ["note on #7"] and gateway.sendmail.runs() == []
    deliver(gateway, make_mail("Out of office", headers={"Auto-Submitted": "auto-replied"}))
    assert gateway.sendmail.runs() == []
    configure(gateway, gateway.sendmail, acknowledge="enabled = false")
    result, _ = deliver(gateway, form_mail())
    assert result.outcome.decision == "filed" and gateway.sendmail.runs() == []
    assert " ack=" not in last_line(gateway)


def test_the_owed_and_answered_records_live_in_the_ledgers_file(gateway):
    gateway.sendmail.exits(75)
    deliver(gateway, form_mail())
    with sqlite3.connect(gateway.state_dir / FILE_NAME) as db:
        owed = db.execute("SELECT key, issue_id, recipient FROM owed").fetchall()
        state = db.execute("SELECT state, issue_id FROM deliveries").fetchall()
    assert owed == [("<form-1@lists.example.org>", 41, REQUESTER)]
    assert state == [("filed", 41)]
    gateway.sendmail.exits(0)
    deliver(gateway, form_mail())
    with sqlite3.connect(gateway.state_dir / FILE_NAME) as db:
        assert db.execute("SELECT count(*) FROM owed").fetchone() == (0,)
        assert db.execute("SELECT recipient, kind FROM answered").fetchall() == [(REQUESTER, "ack")]


def test_dry_run_shows_the_acknowledgement_and_sends_nothing(gateway):
    result, out = deliver(gateway, form_mail(), dry_run=True)
    plan = json.loads(out)
    ack = plan["acknowledgement"]
    assert (ack["decision"], ack["to"]) == ("would_acknowledge", REQUESTER)
    assert ack["subject"] == "[helpdesk - Support #N] プリンタが動きません"
    assert "#N" in ack["text"] and ack["template"] == "(shipped) ack.en.txt"
    assert gateway.sendmail.runs() == [] and not (gateway.state_dir / FILE_NAME).exists()

    robot = FORM_BODY.replace(REQUESTER, "mailer-daemon@example.net")
    _, out = deliver(gateway, form_mail(body=robot), dry_run=True)
    assert json.loads(out)["acknowledgement"]["rule"] == "robot_recipient"


def test_a_reply_to_the_acknowledgement_threads_by_its_message_id_alone(gateway):
    settings = settings_of(gateway)
    ours = message_id(MailKind.ACKNOWLEDGEMENT, 41, None, "example.org", secret_from_key(settings.key))
    reply = parse(read_message(io.BytesIO(make_mail("Re: thanks", "It works again.", sender=REQUESTER,
                                                    headers={"In-Reply-To": f"<{ours}>"}))))
    assert thread.references(reply, site_key=settings.key) == (ThreadRef(Via.OURS, issue_id=41),)
    plan = plan_issue(reply, settings)
    assert (plan.action, plan.thread) == (Action.NOTE, (ThreadRef(Via.OURS, issue_id=41),))

    in_references = parse(read_message(io.BytesIO(make_mail("Re: thanks", "x", headers={
        "References": f"<form-1@lists.example.org> <{ours}>"}))))
    assert plan_issue(in_references, settings).thread == (ThreadRef(Via.OURS, issue_id=41),)

    forged = ours.replace("m2r.ack-41.", "m2r.ack-40.")
    stranger = parse(read_message(io.BytesIO(make_mail("hello", "x", headers={"In-Reply-To": f"<{forged}>"}))))
    assert plan_issue(stranger, settings).action == Action.CREATE
    other_site = thread.references(reply, site_key="another key")
    assert other_site == ()


# -- the configuration -------------------------------------------------------------------------

def test_enabled_without_from_names_both_keys(offline_site):
    offline_site.write_config("[acknowledge]\nenabled = true\n")
    with pytest.raises(ConfigError) as caught:
        settings_of(offline_site)
    assert "acknowledge.enabled" in caught.value.reason and "[outgoing] from" in caught.value.reason


def test_the_template_next_to_the_config_then_the_shipped_ones(offline_site):
    offline_site.write_config('[outgoing]\nfrom = "request@example.org"\n\n[acknowledge]\nenabled = true\n')
    assert settings_of(offline_site).acknowledge.text.source == "(shipped) ack.en.txt"
    (offline_site.config_path.parent / "ack.txt").write_text("Issue {issue_id}: {subject}\n")
    assert settings_of(offline_site).acknowledge.text.text == "Issue {issue_id}: {subject}\n"
    offline_site.write_config('[outgoing]\nfrom = "request@example.org"\n\n'
                              '[acknowledge]\nenabled = true\ntemplate = "ack.ja.txt"\n')
    assert settings_of(offline_site).acknowledge.text.source == "(shipped) ack.ja.txt"
    (offline_site.config_path.parent / "ack.txt").write_text("Issue {number}\n")
    offline_site.write_config('[outgoing]\nfrom = "request@example.org"\n\n[acknowledge]\nenabled = true\n')
    with pytest.raises(ConfigError, match=r"acknowledge\.template: .*unknown placeholder \{number\}"):
        settings_of(offline_site)
    offline_site.write_config('[outgoing]\nfrom = "request@example.org"\n\n'
                              '[acknowledge]\nenabled = true\ntemplate = "missing.txt"\n')
    with pytest.raises(ConfigError, match=r"acknowledge\.template: template .*missing\.txt does not exist"):
        settings_of(offline_site)


@pytest.mark.parametrize("outgoing, mistake", [
    ('from = "Helpdesk"', r"outgoing\.from: no address"),
    ('envelope_sender = "-oQ/tmp x@example.org"', r"outgoing\.envelope_sender: not a plain address"),
    ('smtp = "mail example.org:25"', r"outgoing\.smtp: not host:port"),
    ('smtp = "localhost:587"\nsmtp_user = "gw"', r"outgoing\.smtp_user: is set but \[outgoing\] smtp_password_file"),
    ('charset = "shift_jis"', r"outgoing\.charset: must be one of utf-8, iso-2022-jp"),
])
def test_outgoing_mistakes_are_reported_with_their_key(offline_site, outgoing, mistake):
    offline_site.write_config(f"[outgoing]\n{outgoing}\n")
    with pytest.raises(ConfigError, match=mistake):
        settings_of(offline_site)


def test_defaults_come_from_the_schema(offline_site):
    settings = settings_of(offline_site)
    assert (settings.outgoing.sendmail, settings.outgoing.charset, settings.outgoing.timeout) == \
        ("/usr/sbin/sendmail", "utf-8", 60.0)
    assert (settings.acknowledge.enabled, settings.acknowledge.once_per, settings.acknowledge.text) == \
        (False, 86400.0, None)


def test_check_probes_the_way_out_and_names_the_template(gateway, tmp_path):
    from m2r_deliver.check import check

    out = io.StringIO()
    check(settings_of(gateway), out)
    assert f"ok   [outgoing]: acknowledgements are handed to the sendmail program {gateway.sendmail.program}, " \
           "from Helpdesk <request@example.org>" in out.getvalue()
    assert "ok   [acknowledge] template (shipped) ack.en.txt is valid" in out.getvalue()
    assert gateway.sendmail.runs() == []
    gateway.config_path.write_text(gateway.config_path.read_text().replace(str(gateway.sendmail.program),
                                                                           str(tmp_path / "no-sendmail")))
    out = io.StringIO()
    check(settings_of(gateway), out)
    assert f"FAIL [outgoing]: outgoing.sendmail: the sendmail program {tmp_path / 'no-sendmail'} does not exist" \
        in out.getvalue()


def test_with_acknowledgements_on_the_drop_path_loads_no_way_out(gateway):
    names = imported_modules(gateway, make_mail("Out of office", headers={"Auto-Submitted": "auto-replied"}))
    assert "decision=dropped" in last_line(gateway)
    assert not names & {"smtplib", "ssl", "m2r_deliver.outgoing.destinations", "m2r_deliver.outgoing.stage"}


@pytest.mark.parametrize("example, sender", [("acknowledge.toml", "Helpdesk <request@example.org>"),
                                              ("original-setup.toml", "ヘルプデスク <request@example.org>")])
def test_the_examples_acknowledge_in_japanese(offline_site, example, sender):
    text = (ROOT / "examples" / example).read_text()
    if example == "acknowledge.toml":  # the sections to add to a config
        offline_site.write_config(text)
    else:
        offline_site.config_path.write_text(text.replace("~/.config/m2r-deliver/api-key", str(offline_site.key_file)))
    settings = settings_of(offline_site)
    assert settings.acknowledge.enabled and settings.acknowledge.text.source == "(shipped) ack.ja.txt"
    assert (settings.outgoing.from_address, settings.outgoing.envelope_sender) == \
        (sender, "request+bounces@example.org")


@pytest.mark.parametrize("trouble", [KeyboardInterrupt("stopped by SIGTERM"), RuntimeError("a bug in the hand-over")])
def test_anything_ending_the_hand_over_leaves_the_acknowledgement_owed_and_the_mail_kept(gateway, monkeypatch,
                                                                                         trouble):
    from m2r_deliver.outgoing import stage

    def pay(db, owed, settings):
        raise trouble

    monkeypatch.setattr(stage, "pay", pay)
    result, _ = deliver(gateway, form_mail())  # no traceback: the pass ends with its status and one line
    assert result.status == 75 and result.outcome.decision == "filed"
    line = last_line(gateway)
    assert " decision=filed issue=#41 " in line and " ack=owed to=hanako@example.net " in line, line
    assert f"error=\"{type(trouble).__name__}: {trouble}\"" in line or "SIGTERM" in line
    monkeypatch.undo()
    again, _ = deliver(gateway, form_mail())
    assert again.status == 0 and len(gateway.sendmail.runs()) == 1
    assert gateway.filing.filed == ["プリンタが動きません"]
