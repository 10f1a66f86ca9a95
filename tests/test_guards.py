"""Each guard on the project's own small fixtures, the chain's order and trust rules, the
[guard] config, and the rate limit's state (in-process; the installed program's runs are
in test_guard_delivery.py)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from support.paths import ROOT
from support.mails import make_mail, parsed
from m2r_deliver import guards
from m2r_deliver.config import GUARD_NAMES, GuardSettings, Settings, load
from m2r_deliver.errors import ConfigError, StateError
from m2r_deliver.guards import bounce as bounce_module
from m2r_deliver.guards.automatic import first_token
from m2r_deliver.ledger import FILE_NAME, OLD_RATE_LIMIT_FILE, Ledger

FIXTURES = ROOT / "tests" / "fixtures" / "guards"
WEB_FORM = {"Auto-Submitted": "auto-generated", "Precedence": "list", "List-Id": "<request.example.org>"}


def settings(**guard) -> Settings:
    return Settings(url="http://127.0.0.1:9", key="k", guard=GuardSettings(**guard))


def verdict(data: bytes, **guard):
    return guards.run(parsed(data), settings(**guard))


def fired(data: bytes, **guard) -> str | None:
    found = verdict(data, **guard)
    return found.guard if found else None


def test_chain_runs_in_the_documented_order_and_every_guard_describes_itself():
    assert tuple(g.name for g in guards.CHAIN) == GUARD_NAMES
    for guard in (*guards.CHAIN, guards.BREAKER):
        assert guard.description and "\n" not in guard.description
        assert isinstance(guard.trust_overrides, bool)


def test_a_plain_request_passes_every_guard():
    assert verdict(make_mail()) is None


# --- Redmine's own mail -------------------------------------------------------------

@pytest.mark.parametrize("headers,reason", [
    ({"X-Mailer": "Redmine"}, "X-Mailer: Redmine"),
    ({"X-Redmine-Project": "helpdesk"}, "x-redmine-project"),
])
def test_redmine_headers(headers, reason):
    found = verdict(make_mail(headers=headers))
    assert found.guard == "redmine_own" and reason in found.reason


def test_redmine_message_id():
    found = verdict(make_mail(msgid="redmine.journal-12.20261127211527.5@redmine.example.net"))
    assert found.guard == "redmine_own" and "redmine.journal-12" in found.reason
    assert fired(make_mail(msgid="redmine.issue-3.20120415090000.3b2e8a@host")) == "redmine_own"


def test_redmine_emission_address_when_configured():
    data = make_mail(sender="Redmine <Redmine@Example.NET>")
    assert fired(data) is None
    assert fired(data, redmine_from=("redmine@example.net",)) == "redmine_own"
    assert fired(data, redmine_from=("redmine@*",)) == "redmine_own"


def test_a_human_reply_to_a_notification_passes():
    notification = "redmine.issue-42.20261127211428.5@redmine.example.net"
    data = make_mail("Re: [Helpdesk - Support #42] VPN", "Still broken.", sender="jsmith@example.net",
                     headers={"References": f"<{notification}>", "In-Reply-To": f"<{notification}>"})
    assert verdict(data) is None


# --- loop marker --------------------------------------------------------------------

def test_loop_marker_only_when_configured():
    data = make_mail(headers={"X-Loop": "Helpdesk@Example.org"})
    assert fired(data) is None
    found = verdict(data, loop_markers=("helpdesk@example.org",))
    assert found.guard == "loop_marker" and "Helpdesk@Example.org" in found.reason
    assert fired(data, loop_markers=("other@example.org",)) is None


# --- Auto-Submitted -----------------------------------------------------------------

@pytest.mark.parametrize("value,token", [
    ("auto-replied (vacation)", "auto-replied"),
    ("Auto-Generated; type=report", "auto-generated"),
    ("(set by (nested) filter) auto-notified", "auto-notified"),
    ("no (a person wrote this)", "no"),
    ("", ""),
])
def test_auto_submitted_first_token(value, token):
    assert first_token(value) == token


@pytest.mark.parametrize("value,fires", [
    ("auto-generated", True), ("auto-replied (vacation)", True), ("auto-notified", True),
    ("no", False), ("No (human)", False),
])
def test_auto_submitted(value, fires):
    assert (fired(make_mail(headers={"Auto-Submitted": value})) == "auto_submitted") is fires


# --- bounces ------------------------------------------------------------------------

def dsn(content_type: str = 'multipart/report; report-type=delivery-status') -> bytes:
    return (f"From: Mail Delivery System <mail@mx.example.org>\r\nTo: taro@example.org\r\n"
            f"Subject: Delivery report\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}; boundary=b1\r\n\r\n"
            "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
            "Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "--b1--\r\n").encode()


@pytest.mark.parametrize("data,reason", [
    (make_mail(headers={"Return-Path": "<>"}), "null sender (Return-Path: <>)"),
    (make_mail(mbox_from="MAILER-DAEMON"), "null sender (envelope MAILER-DAEMON)"),
    (dsn(), "multipart/report; report-type=delivery-status"),
    (dsn("multipart/report"), "multipart/report"),
    (dsn("multipart/mixed"), "message/delivery-status part"),
    (make_mail(sender="Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>"), "sent by mailer-daemon@mx.example.org"),
    (make_mail(headers={"X-Failed-Recipients": "gone@example.com"}), "X-Failed-Recipients: gone@example.com"),
])
def test_decisive_bounce_signs(data, reason):
    found = verdict(data)
    assert found.guard == "bounce" and found.reason == reason


def pasted_bounce() -> str:
    return (FIXTURES / "human-pastes-bounce.eml").read_bytes().decode().split("\r\n\r\n", 1)[1]


def test_flufl_bounce_alone_would_call_a_pasted_bounce_a_bounce_but_the_guard_does_not():
    data = (FIXTURES / "human-pastes-bounce.eml").read_bytes()
    assert bounce_module.failed_recipients(parsed(data)) == {b"buyer@acme.example"}
    assert verdict(data) is None


def test_weaker_signs_need_flufl_bounce_to_confirm():
    postmaster = "postmaster@customer.example"
    assert verdict(make_mail("Your server is on a block list", "Please look at it.", sender=postmaster)) is None
    found = verdict(make_mail("Undeliverable", pasted_bounce(), sender=postmaster, charset="us-ascii"))
    assert found.guard == "bounce"
    assert found.reason == f"sent by {postmaster}; flufl.bounce found 1 failed recipient(s)"
    found = verdict(make_mail("Delivery failure", pasted_bounce(), to="list-bounces+taro=example.org@lists.example.org",
                              charset="us-ascii"))
    assert found.reason.startswith("addressed to list-bounces+taro=example.org@lists.example.org;")


def test_a_detector_that_raises_is_no_confirmation(monkeypatch):
    import flufl.bounce

    def broken(msg):
        raise IndexError("detector fell over")

    monkeypatch.setattr(flufl.bounce, "all_failures", broken)
    assert verdict(make_mail("Undeliverable", pasted_bounce(), sender="postmaster@customer.example",
                             charset="us-ascii")) is None


# --- not addressed to us ------------------------------------------------------------

def test_not_addressed_only_with_catch_addresses():
    data = make_mail(to="sales@example.org", headers={"Cc": "boss@example.org"})
    assert fired(data) is None
    found = verdict(data, catch_addresses=("request@example.org", "*+ops@example.org"))
    assert found.guard == "not_addressed" and "sales@example.org, boss@example.org" in found.reason
    for headers in ({"Cc": "Request <REQUEST@example.org>"}, {"Delivered-To": "request@example.org"},
                    {"X-Original-To": "redmine+ops@example.org"}):
        assert fired(make_mail(to="sales@example.org", headers=headers),
                     catch_addresses=("request@example.org", "*+ops@example.org")) is None


# --- auto-responders, bulk and list mail, robots -------------------------------------

@pytest.mark.parametrize("headers,guard", [
    ({"X-Autoreply": "yes"}, "auto_reply"),
    ({"X-Autoreply": "no"}, None),
    ({"X-Autorespond": "Thank you for your mail"}, "auto_reply"),
    ({"X-Auto-Response-Suppress": "All"}, "auto_reply"),
    ({"X-Auto-Response-Suppress": "DR, OOF"}, "auto_reply"),
    ({"X-Auto-Response-Suppress": "DR, RN, NRN"}, None),
    ({"Precedence": "bulk"}, "bulk"),
    ({"Precedence": "Junk"}, "bulk"),
    ({"Precedence": "first-class"}, None),
    ({"Precedence": "list"}, "mailing_list"),
    ({"List-Id": "Printer users <printers.example.org>"}, "mailing_list"),
    ({"List-Unsubscribe": "<mailto:leave@lists.example.org>"}, "mailing_list"),
    ({"Return-Path": "<owner-printers@lists.example.org>"}, "daemon_sender"),
    ({"Return-Path": "<printers-request@lists.example.org>"}, "daemon_sender"),
    ({"Return-Path": "<LISTSERV@lists.example.org>"}, "daemon_sender"),
])
def test_automatic_and_list_mail(headers, guard):
    assert fired(make_mail(headers=headers)) == guard


def test_robot_names_are_read_from_the_envelope_sender_first():
    person = make_mail(sender="it-request@example.org", headers={"Return-Path": "<it-request@example.org>"})
    assert fired(person) == "daemon_sender"
    relayed = make_mail(sender="it-request@example.org", headers={"Return-Path": "<taro@example.org>"})
    assert fired(relayed) is None
    assert fired(make_mail(sender="majordomo@lists.example.org")) == "daemon_sender"


# --- trust and switches -------------------------------------------------------------

def test_trusted_web_form_passes_and_untrusted_is_dropped():
    form = make_mail(sender="Confluence <request@example.org>", headers=WEB_FORM)
    assert fired(form) == "auto_submitted"
    assert fired(form, trusted_senders=("request@example.org",)) is None
    assert fired(form, trusted_senders=("*@example.org",)) is None
    assert fired(form, trusted_senders=("someone@example.org",)) == "auto_submitted"


@pytest.mark.parametrize("headers,guard", [
    ({"X-Mailer": "Redmine"}, "redmine_own"),
    ({"X-Loop": "helpdesk@example.org"}, "loop_marker"),
    ({"Return-Path": "<>"}, "bounce"),
    ({"X-Failed-Recipients": "gone@example.com"}, "bounce"),
])
def test_trust_never_overrides_the_loop_and_bounce_guards(headers, guard):
    data = make_mail(sender="request@example.org", headers={**WEB_FORM, **headers})
    assert fired(data, trusted_senders=("request@example.org",), loop_markers=("helpdesk@example.org",)) == guard


def test_trust_never_overrides_catch_addresses():
    data = make_mail(sender="request@example.org", to="sales@example.org", headers=WEB_FORM)
    assert fired(data, trusted_senders=("request@example.org",), catch_addresses=("request@example.org",)) \
        == "not_addressed"


def test_each_guard_can_be_switched_off():
    form = make_mail(sender="request@example.org", headers=WEB_FORM)
    assert fired(form, off=frozenset({"auto_submitted"})) == "mailing_list"
    assert fired(form, off=frozenset({"auto_submitted", "mailing_list"})) is None
    assert fired(make_mail(headers={"X-Mailer": "Redmine"}), off=frozenset({"redmine_own"})) is None


# --- config -------------------------------------------------------------------------

def config_file(tmp_path: Path, guard: str) -> str:
    key = tmp_path / "key"
    key.write_text("k")
    key.chmod(0o600)
    path = tmp_path / "config.toml"
    path.write_text(f'[redmine]\nurl = "http://r"\nkey_file = "{key}"\n[state]\ndir = "{tmp_path / "state"}"\n'
                    f"[guard]\n{guard}\n")
    path.chmod(0o600)
    return str(path)


def test_guard_defaults(tmp_path):
    guard = load(config_file(tmp_path, ""), {}, {}).guard
    assert guard.off == frozenset() and guard.rate_limit == 20 and guard.rate_window == 3600
    assert guard.hold == tmp_path / "state" / "hold" and guard.keep_dropped is None
    assert guard.trusted_senders == guard.catch_addresses == guard.redmine_from == guard.loop_markers == ()


def test_guard_settings_are_read(tmp_path):
    guard = load(config_file(tmp_path, 'trusted_senders = ["Request@Example.org"]\nbounce = false\n'
                                       'mailing_list = true\nrate_limit = 0\nrate_window = 60\n'
                                       'hold = "/srv/hold"\nkeep_dropped = "dropped"\n'), {}, {}).guard
    assert guard.trusted_senders == ("request@example.org",)
    assert guard.off == {"bounce"} and guard.enabled("mailing_list")
    assert guard.rate_limit == 0 and guard.rate_window == 60
    assert guard.hold == Path("/srv/hold") and guard.keep_dropped == tmp_path / "state" / "dropped"


@pytest.mark.parametrize("text,message", [
    ("bounse = false", "guard.bounse: unknown key"),
    ("bounce = 1", "guard.bounce: must be true or false"),
    ('trusted_senders = "a@example.org"', "guard.trusted_senders: must be a list"),
    ("trusted_senders = [1]", "guard.trusted_senders: must be a list of non-empty strings"),
    ("rate_limit = 2.5", "guard.rate_limit: must be an integer"),
    ("rate_limit = -1", "guard.rate_limit: must be a whole number, at least 0, not -1"),
    ("rate_window = 0", "guard.rate_window: must be a number of seconds above 0"),
])
def test_guard_mistakes_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load(config_file(tmp_path, text), {}, {})
    assert message in str(info.value)


# --- rate limit state ---------------------------------------------------------------

def limited(tmp_path: Path, limit: int, **guard) -> Settings:
    return replace(settings(rate_limit=limit, **guard), state_dir=tmp_path / "state")


def test_rate_limit_counts_per_sender_and_holds_the_next(tmp_path):
    config = limited(tmp_path, 2)
    assert guards.decide(parsed(make_mail(sender="a@example.org")), config) is None
    assert guards.decide(parsed(make_mail(sender="a@example.org")), config) is None
    assert guards.decide(parsed(make_mail(sender="b@example.org")), config) is None
    held = guards.decide(parsed(make_mail(sender="a@example.org")), config)
    assert held.guard == "rate_limit" and held.action == "hold"
    assert held.reason == "2 mails from a@example.org within 3600 s (rate_limit = 2)"


def test_a_retry_of_an_admitted_mail_is_not_counted_again(tmp_path):
    config = limited(tmp_path, 1)
    first = make_mail()
    assert guards.decide(parsed(first), config) is None
    assert guards.decide(parsed(first), config) is None
    assert guards.decide(parsed(make_mail()), config).guard == "rate_limit"


def test_the_window_slides(tmp_path, monkeypatch):
    from m2r_deliver import ledger

    clock = [1_000_000.0]
    monkeypatch.setattr(ledger.time, "time", lambda: clock[0])
    config = limited(tmp_path, 1, rate_window=60.0)
    assert guards.decide(parsed(make_mail()), config) is None
    clock[0] += 59
    assert guards.decide(parsed(make_mail()), config).guard == "rate_limit"
    clock[0] += 2
    assert guards.decide(parsed(make_mail()), config) is None
    rows = sqlite3.connect(tmp_path / "state" / FILE_NAME).execute("SELECT count(*) FROM admitted").fetchone()
    assert rows == (1,)


def test_dry_run_writes_no_state(tmp_path):
    config = limited(tmp_path, 1)
    assert guards.decide(parsed(make_mail()), config, record=False) is None
    assert not (tmp_path / "state").exists()
    guards.decide(parsed(make_mail()), config)
    assert guards.decide(parsed(make_mail()), config, record=False).guard == "rate_limit"
    assert guards.decide(parsed(make_mail()), config).guard == "rate_limit"


def test_trusted_senders_and_dropped_mail_are_not_counted(tmp_path):
    config = limited(tmp_path, 1, trusted_senders=("request@example.org",))
    for _ in range(3):
        assert guards.decide(parsed(make_mail(sender="request@example.org", headers=WEB_FORM)), config) is None
    for _ in range(3):
        assert guards.decide(parsed(make_mail(headers={"Precedence": "bulk"})), config).guard == "bulk"
    assert guards.decide(parsed(make_mail()), config) is None
    assert guards.decide(parsed(make_mail()), config).guard == "rate_limit"


def test_unusable_state_is_a_state_error(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / FILE_NAME).write_text("this is not a database, it is a text file" * 30)
    with pytest.raises(StateError, match="ledger .* is damaged"):
        guards.decide(parsed(make_mail()), limited(tmp_path, 5))


def test_the_count_is_kept_in_the_deliverys_own_ledger(tmp_path):
    config = limited(tmp_path, 1)
    with Ledger.open(config.state_dir, keep_for=60, stale_after=60) as ledger:
        assert guards.decide(parsed(make_mail(sender="a@example.org")), config, ledger=ledger) is None
        assert guards.decide(parsed(make_mail(sender="a@example.org")), config, ledger=ledger).guard == "rate_limit"
    assert [p.name for p in config.state_dir.iterdir() if not p.name.endswith(("-wal", "-shm"))] == [FILE_NAME]


def old_rate_limit_file(state: Path, rows: list[tuple[str, str, float]]) -> Path:
    """The rate limit's own file as releases before schema version 2 wrote it."""
    state.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state / OLD_RATE_LIMIT_FILE)
    db.execute("CREATE TABLE admitted (sender TEXT NOT NULL, message TEXT NOT NULL, at REAL NOT NULL, "
               "PRIMARY KEY (sender, message))")
    db.executemany("INSERT INTO admitted VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    return state / OLD_RATE_LIMIT_FILE


def test_the_old_rate_limit_file_is_read_once_and_removed(tmp_path):
    import time

    config = limited(tmp_path, 2)
    old = old_rate_limit_file(config.state_dir, [("a@example.org", "earlier-1@example.org", time.time() - 10),
                                                 ("a@example.org", "earlier-2@example.org", time.time() - 5)])
    held = guards.decide(parsed(make_mail(sender="a@example.org")), config)
    assert held.guard == "rate_limit" and held.reason.startswith("2 mails from a@example.org")
    assert not old.exists()
    # an admitted mail retried after the upgrade is still not counted twice
    retried = make_mail(sender="a@example.org", msgid="<earlier-1@example.org>")
    assert guards.decide(parsed(retried), config) is None


def test_an_unreadable_old_rate_limit_file_does_not_stop_delivery(tmp_path):
    config = limited(tmp_path, 1)
    config.state_dir.mkdir(parents=True)
    (config.state_dir / OLD_RATE_LIMIT_FILE).write_text("not a database" * 50)
    assert guards.decide(parsed(make_mail()), config) is None
    assert guards.decide(parsed(make_mail()), config).guard == "rate_limit"
