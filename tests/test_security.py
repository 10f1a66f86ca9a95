"""Who may write where, and the bounds on what a mail can make the gateway do: the pure
rules first, then each end to end against the test-bed Redmine (docs/security.md)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import console_script
from mailfactory import as_new_message, make_mail
from secrets_scan import leaks
from test_keyed import NAMES
from testbed_data import filed_issue_id, make_issue, make_project

from m2r_deliver import identity, outsiders, route
from m2r_deliver.config import Route, Settings
from m2r_deliver.identity import Account, Acting
from m2r_deliver.keyed import Limits, resolve_keywords
from m2r_deliver.ledger import FILE_NAME, Ledger
from m2r_deliver.mail import parse
from m2r_deliver.plan import Keyword, Person
from m2r_deliver.read import read_message

SETTINGS = Settings(url="http://r.example", key="k", issue={"project": "helpdesk"})
ADMIN = Account(1, "admin", "admin@redmine.test", admin=True)
GATEWAY = Account(7, "gateway", "gateway@redmine.test")


def parsed(data: bytes):
    return parse(read_message(io.BytesIO(data)))


class Users:
    """identity.Directory over a few accounts; the key is the administrator's."""

    def __init__(self, *accounts: Account):
        self.accounts = {a.mail: a for a in accounts}

    def me(self) -> Account:
        return ADMIN

    def account_by_mail(self, addr: str) -> Account | None:
        return self.accounts.get(addr.lower())

    def account_by_login(self, login: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.login == login), None)

    def may(self, account, project_id, permissions) -> bool:
        return True

    def create_account(self, new):
        raise AssertionError("no account is created here")


# --- an administrator's address --------------------------------------------------------

def test_an_administrators_from_is_not_acted_as_without_authserv_id():
    users = Users(ADMIN, GATEWAY)
    settings = Settings(url="http://r", key="k", fallback_user="gateway")
    acting = identity.choose(Person("admin@redmine.test"), True, None, users, settings, 1, ("add_issues",))
    assert isinstance(acting, Acting) and acting.impersonate == "gateway" and not acting.themselves
    assert "administrator" in acting.warning and "authserv_id" in acting.warning


def test_with_authserv_id_an_administrator_is_acted_as_on_a_passing_result_only():
    users = Users(ADMIN, GATEWAY)
    settings = Settings(url="http://r", key="k", fallback_user="gateway", authserv_id="mx.example")
    passed = identity.choose(Person("admin@redmine.test"), True, "dkim=pass", users, settings, 1, ("add_issues",))
    assert passed.impersonate == "admin" and passed.themselves and passed.warning is None
    failed = identity.choose(Person("admin@redmine.test"), False, "no pass", users, settings, 1, ("add_issues",))
    assert failed.impersonate == "gateway" and not failed.themselves


def test_an_address_no_account_can_have_is_never_looked_up():
    class Untouchable(Users):
        def account_by_mail(self, addr):
            raise AssertionError(f"looked up {addr!r}")

    for addr in ("a\x00b@example.org", "x" * 3000 + "@example.org", "two words@example.org", "no-at-sign"):
        acting = identity.choose(Person(addr), True, None, Untouchable(), SETTINGS, 1, ("add_issues",))
        assert isinstance(acting, Acting) and not acting.themselves, addr
        assert not identity.plausible_address(addr)
    assert identity.plausible_address("José.Pérez@example.org")


# --- outsiders' notes ---------------------------------------------------------------

def test_an_issue_records_its_requester_and_participants():
    jose = Person("jose@example.org", "José")
    header = "Requester: {requester}"
    nobody = outsiders.Records(opening="The printer is jammed")
    assert outsiders.recorded_as(jose, None, nobody, header) is None
    assert outsiders.recorded_as(jose, None, outsiders.Records(requester_value="JOSE@example.org"), header)
    assert outsiders.recorded_as(jose, None, outsiders.Records(opening="Requester: Pepe <jose@example.org>"), header)
    assert outsiders.recorded_as(jose, None, outsiders.Records(opening="Requester: jose@example.org"), header)
    assert outsiders.recorded_as(jose, None, outsiders.Records(note_openings=("From: José <jose@example.org>",)),
                                 header)
    assert outsiders.recorded_as(jose, 9, outsiders.Records(watcher_ids=frozenset({9})), header)
    assert outsiders.recorded_as(jose, 9, outsiders.Records(author_id=9), header)
    # a look-alike is not the requester
    for opening in ("Requester: jose@example.org.evil", "Requester: x <jose@example.org> and more",
                    "Requester: evil@example.org (jose@example.org)"):
        assert outsiders.recorded_as(jose, None, outsiders.Records(opening=opening), header) is None, opening
    assert outsiders.recorded_as(jose, None, outsiders.Records(note_openings=("Thanks, jose@example.org",)),
                                 header) is None
    # a template with the display name only proves nothing about the address
    assert outsiders.recorded_as(jose, None, outsiders.Records(opening="Asked by: José"), "Asked by: {name}") is None
    assert outsiders.recorded_as(None, None, outsiders.Records(opening="Requester: "), header) is None


def test_a_note_from_an_outsider_names_its_sender_in_the_requester_style():
    assert outsiders.note_header(Person("jose@example.org", "José")) == "From: José <jose@example.org>"
    assert outsiders.note_header(Person("jose@example.org")) == "From: jose@example.org"


def test_served_projects_are_the_configured_ones_and_this_mails_subaddress():
    settings = Settings(url="http://r", key="k", issue={"project": "helpdesk"},
                        project_from_subaddress="redmine@example.org",
                        routes=(Route(match={"to": ("ops@example.org",)}, values={"project": "ops"}, index=1),))
    plan = route.plan_issue(parsed(make_mail(to="redmine+lab@example.org")), settings)
    assert plan.served == ("helpdesk", "ops", "lab")
    assert route.plan_issue(parsed(make_mail()), Settings(url="http://r", key="k")).served is None


# --- keywords --------------------------------------------------------------------------

def test_a_keyword_never_sets_the_marker_field_whatever_allow_override_says():
    marker = Keyword("custom_field", "<victim@example.org>", 0, name="Severity")
    keyed = resolve_keywords(NAMES, "helpdesk", (marker,), Limits(reserved_fields=frozenset({7})))
    assert keyed.applied == () and "kept by the gateway" in keyed.warnings[0]
    assert resolve_keywords(NAMES, "helpdesk", (marker,)).applied == ()  # "<victim…>" is not a value of Severity
    by_id = Keyword("custom_field", "x", 0, name="7")
    assert resolve_keywords(NAMES, "helpdesk", (by_id,), Limits(reserved_fields=frozenset({7}))).applied == ()


def test_a_project_keyword_moves_an_issue_only_into_a_served_project():
    move = (Keyword("project", "ops", 0),)
    kept = resolve_keywords(NAMES, "helpdesk", move, Limits(serves={1}.__contains__))
    assert kept.project == "helpdesk" and "not one this gateway serves" in kept.warnings[0]
    assert resolve_keywords(NAMES, "helpdesk", move, Limits(serves={1, 2}.__contains__)).project == "ops"


# --- bounds ----------------------------------------------------------------------------

def test_recipients_looked_up_are_bounded_and_the_rest_noted_in_the_issue():
    cc = ", ".join(f"user{n}@example.org" for n in range(5000))
    plan = route.plan_issue(parsed(make_mail(headers={"Cc": cc})), SETTINGS)
    assert len(plan.watchers) == identity.WATCHER_LIMIT
    # the To address and 5,000 Cc addresses
    assert plan.description.endswith(f"[{5001 - identity.WATCHER_LIMIT} more recipient(s) not looked up as "
                                      f"watchers: at most {identity.WATCHER_LIMIT} are, per mail]")
    assert any("not looked up" in w for w in plan.warnings)
    note = route.plan_issue(parsed(make_mail("Re: [#5] x", headers={"Cc": cc})), SETTINGS)
    assert note.action == "note" and "not looked up as watchers" in note.notes
    few = route.plan_issue(parsed(make_mail(headers={"Cc": "a@example.org, b\x00@example.org"})), SETTINGS)
    assert few.watchers == ("request@example.org", "a@example.org") and "not looked up" not in few.description


def test_attachment_names_lose_control_characters_and_shorten_keeping_the_extension():
    assert route.attachment_name("re\x00port\x1b.pdf") == "report.pdf"
    long = route.attachment_name("a" * 2500 + ".tar.gz")
    assert len(long) == route.FILENAME_LIMIT and long.endswith("a.gz")
    assert route.attachment_name("\x00") == "attachment"
    assert route.attachment_name("b" * 300) == "b" * 255
    assert route.attachment_name("ok.txt") == "ok.txt"


# --- status ----------------------------------------------------------------------------

def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_status_tells_a_dead_processs_claim_from_a_live_one(tmp_path):
    state = tmp_path / "state"
    with Ledger.open(state, keep_for=86400, stale_after=600) as ledger:
        ledger.claim("<live@example.org>")
        ledger.claim("<dead@example.org>")
        ledger.db.execute("UPDATE deliveries SET pid = ? WHERE key = ?", (dead_pid(), "<dead@example.org>"))
    config = tmp_path / "config.toml"
    config.write_text(f'[redmine]\nurl = "http://127.0.0.1:9"\nkey = "{"0" * 40}"\n[state]\ndir = "{state}"\n'
                      "[log]\nsyslog = false\n")
    config.chmod(0o600)
    shown = subprocess.run([console_script(), "status", "--config", str(config)], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown
    lines = shown.stdout.splitlines()
    assert "(of them 1 interrupted: the process is gone)" in shown.stdout
    [dead] = [line for line in lines if "<dead@example.org>" in line and "attempt(s)" in line]
    [live] = [line for line in lines if "<live@example.org>" in line and "attempt(s)" in line]
    assert "interrupted" in dead and "is gone" in dead
    assert "in flight (pid" in live and "interrupted" not in live


# --- no secret in any output -----------------------------------------------------------

def test_the_secret_scan_finds_a_planted_key(tmp_path):
    key = "f" * 8 + "0123456789abcdef0123456789abcdef"
    (tmp_path / "clean.log").write_text("decision=filed issue=#1\n")
    assert leaks([tmp_path], [], {key}) == []
    (tmp_path / "Maildir" / "new").mkdir(parents=True)
    (tmp_path / "Maildir" / "new" / "1.host").write_bytes(b"X-Key: " + key.encode() + b"\n")
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        db.execute("CREATE TABLE t (error TEXT)")
        db.execute("INSERT INTO t VALUES (?)", (f"failed with key {key}",))
    found = leaks([tmp_path], [("test_x", "stderr", f"…{key}…")], {key})
    assert sorted(found) == sorted([str(tmp_path / "Maildir" / "new" / "1.host"), str(tmp_path / "ledger.sqlite3"),
                                    "test_x stderr"])
