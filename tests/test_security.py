"""Who may write where, and the bounds on what a mail can make the gateway do: the pure
rules first, then each end to end against the test-bed Redmine (docs/security.md)."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess


from support.mails import make_mail
from support.names import NAMES
from support.paths import console_script
from support.secretscan import leaks
from support.testbed import created, filed_issue_id, make_issue, make_project, make_user

from m2r_deliver import identity, outsiders, route
from m2r_deliver.config import Route, Settings
from m2r_deliver.identity import Account, Acting
from m2r_deliver.keyed import Limits, resolve_keywords
from m2r_deliver.ledger import Ledger
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


# --- end to end, against the test-bed Redmine ------------------------------------------

def users(testbed) -> dict:
    return testbed.info["users"]


def journals(testbed, issue_id: int) -> list[dict]:
    return testbed.issue(issue_id, include="journals").get("journals", [])


def test_an_outsider_adds_notes_only_to_served_issues_that_record_them(site, testbed, token):
    """Finding 8: [#N] in a subject or a forged In-Reply-To must not let a stranger write
    into any issue the key can see, as the key's user, without a trace of who wrote."""
    site.write_config(issue='project = "helpdesk"\ntracker = "Support"\nallow_override = ["all"]')
    private = make_project(testbed, f"s{token}", public=False)
    secret = make_issue(testbed, f"Secret {token}", project=private["identifier"])
    someone_elses = make_issue(testbed, f"Someone else's {token}")
    stranger = f"Mallory <mallory.{token}@example.org>"
    by_tag = site.deliver(make_mail(f"Re: [#{secret}] hi {token}", "Status: Closed\nLet me in.", sender=stranger))
    assert filed_issue_id(by_tag) not in (secret, someone_elses)
    assert f"not a note on #{secret}: issue #{secret} is in a project this gateway does not serve" in by_tag.log
    forged = make_mail(f"no tag {token}", "Let me in.", sender=stranger,
                       headers={"In-Reply-To": f"<redmine.issue-{secret}.20260101000000@redmine.test>"})
    assert filed_issue_id(site.deliver(forged)) != secret
    served = site.deliver(make_mail(f"Re: [#{someone_elses}] me too {token}", "Status: Closed", sender=stranger))
    assert filed_issue_id(served) != someone_elses
    assert "does not record them as its requester or a participant" in served.log
    assert journals(testbed, secret) == [] and journals(testbed, someone_elses) == []
    assert testbed.issue(secret)["status"]["name"] == "New"

    # their own request: the reply is a note, opening with who wrote it, and answers to that
    own = filed_issue_id(site.deliver(make_mail(f"My printer {token}", "Jammed.", sender=stranger)))
    reply = site.deliver(make_mail(f"Re: [Helpdesk - Support #{own}] My printer", "Still jammed.", sender=stranger))
    assert filed_issue_id(reply) == own
    [note] = journals(testbed, own)
    assert note["user"]["id"] == users(testbed)["admin"]["id"]
    assert note["notes"].splitlines() == [f"From: {stranger}", "", "Still jammed."]
    # a second stranger who wrote one of those notes: a participant; a third is not
    someone = f"pat.{token}@example.org"
    site.write_config('[reply]\noutsiders = "anyone"\n')
    assert filed_issue_id(site.deliver(make_mail(f"Re: [#{own}] +1", "Same here.", sender=someone))) == own
    site.write_config()
    assert filed_issue_id(site.deliver(make_mail(f"Re: [#{own}] again", "And again.", sender=someone))) == own
    assert filed_issue_id(site.deliver(make_mail(f"Re: [#{own}] x", "Hi.", sender=f"eve.{token}@example.org"))) != own
    # "anyone" opens every issue of a served project, never one of a project not served
    site.write_config('[reply]\noutsiders = "anyone"\n')
    assert filed_issue_id(site.deliver(make_mail(f"Re: [#{someone_elses}] hi", "Hi.", sender=stranger))) \
        == someone_elses
    assert filed_issue_id(site.deliver(make_mail(f"Re: [#{secret}] hi", "Hi.", sender=stranger))) != secret
    assert journals(testbed, secret) == []


def test_an_administrators_address_is_acted_as_only_with_authserv_id(site, testbed, token):
    site.write_config('[sender]\nfallback_user = "gateway"\n')
    forged = site.deliver(make_mail(f"boss {token}", sender="Redmine Admin <admin@redmine.test>"))
    assert testbed.issue(filed_issue_id(forged), include="")["author"]["id"] == users(testbed)["gateway"]["id"]
    assert "not acted as admin@redmine.test: admin is a Redmine administrator" in site.last_log_line()
    site.write_config('[sender]\nfallback_user = "gateway"\nauthserv_id = "mx.m2r.test"\n')
    vouched = make_mail(f"boss vouched {token}", sender="Redmine Admin <admin@redmine.test>",
                        headers={"Authentication-Results": "mx.m2r.test; dkim=pass header.d=redmine.test"})
    assert testbed.issue(filed_issue_id(site.deliver(vouched)), include="")["author"]["id"] == \
        users(testbed)["admin"]["id"]
    unvouched = make_mail(f"boss unvouched {token}", sender="Redmine Admin <admin@redmine.test>",
                          headers={"Authentication-Results": "mx.m2r.test; dkim=fail header.d=redmine.test"})
    assert testbed.issue(filed_issue_id(site.deliver(unvouched)), include="")["author"]["id"] == \
        users(testbed)["gateway"]["id"]


def test_a_keyword_cannot_poison_the_marker_field(site, testbed, token):
    """Finding 10: a body line naming the marker field must not overwrite it, or the real
    mail with that Message-ID is later taken for a duplicate."""
    site.write_config(redmine='timeout = 10\nmarker_field = "Message-ID"',
                      issue='project = "helpdesk"\ntracker = "Support"\nallow_override = ["all"]')
    victim = f"victim.{token}@example.org"
    poisoned = site.deliver(make_mail(f"poison {token}", f"Message-ID: <{victim}>\nPriority: High\nHello.",
                                      sender="jsmith@example.net"))
    issue = testbed.issue(filed_issue_id(poisoned), include="")
    marker = next(f.get("value") for f in issue["custom_fields"] if f["id"] == testbed.info["custom_fields"]["Message-ID"])
    assert marker and victim not in marker
    assert issue["priority"]["name"] == "High"  # other keywords still apply
    assert "'Message-ID' is kept by the gateway" in site.last_log_line()
    real = site.deliver(make_mail(f"real {token}", "The real one.", sender="dlopes@example.net", msgid=victim))
    assert filed_issue_id(real) != issue["id"]
    assert testbed.issue(filed_issue_id(real), include="")["subject"] == f"real {token}"


def test_keywords_keep_to_the_projects_the_gateway_serves(site, testbed, token):
    """Finding 19: allow_override = ["all"] moves a new issue only among the served
    projects, and a reply's keywords change only issues of served projects."""
    private = make_project(testbed, f"k{token}", public=False)
    site.write_config('[[route]]\nto = ["ops-desk@example.org"]\nproject = "ops"\n',
                      issue='project = "helpdesk"\ntracker = "Support"\nallow_override = ["all"]')
    moved = site.deliver(make_mail(f"move {token}", f"Project: {private['identifier']}\nHelp.",
                                   sender="jsmith@example.net"))
    assert testbed.issue(filed_issue_id(moved), include="")["project"]["id"] == testbed.info["projects"]["helpdesk"]
    assert "is not one this gateway serves" in moved.log
    to_ops = site.deliver(make_mail(f"to ops {token}", "Project: ops\nHelp.", sender="jsmith@example.net"))
    assert testbed.issue(filed_issue_id(to_ops), include="")["project"]["id"] == testbed.info["projects"]["ops"]

    member = make_user(testbed, f"v{token}", "Vera Member")
    created(testbed, f"/projects/{private['id']}/memberships.json",
            {"membership": {"user_id": member["id"], "role_ids": [testbed.info["roles"]["Manager"]]}}, "membership")
    elsewhere = make_issue(testbed, f"elsewhere {token}", project=private["identifier"])
    reply = site.deliver(make_mail(f"Re: [#{elsewhere}] x", "Priority: Urgent\nDone.", sender=member["mail"]))
    assert filed_issue_id(reply) == elsewhere
    issue = testbed.issue(elsewhere)
    assert issue["journals"][-1]["user"]["id"] == member["id"]  # their own note, in their own right
    assert issue["priority"]["name"] == "Normal"
    assert "keywords ignored" in reply.log


def test_a_configured_project_redmine_lacks_is_the_configs_fault(site, token):
    """Finding 20: retried until the config is fixed, never quarantined as the mail's."""
    site.write_config(issue='project = "Help desk"\ntracker = "Support"')
    mail = make_mail(f"typo {token}")
    for _ in range(4):  # more than [state] max_attempts
        result = site.deliver(mail)
        assert (result.returncode, result.stdout, result.stderr) == (75, "", "")
        assert "fault=config" in site.last_log_line() and "'Help desk' does not exist" in site.last_log_line()
    assert not list((site.state_dir / "quarantine").glob("*/*"))
    site.write_config()
    assert filed_issue_id(site.deliver(mail))


def test_a_sub_address_naming_no_project_files_in_the_configured_one(site, testbed, token):
    site.write_config(issue='project = "helpdesk"\ntracker = "Support"\nproject_from_subaddress = "desk@example.org"')
    result = site.deliver(make_mail(f"sub {token}", to=f"desk+nosuch{token}@example.org"))
    assert testbed.issue(filed_issue_id(result), include="")["project"]["id"] == testbed.info["projects"]["helpdesk"]
    assert f"project 'nosuch{token}' of the sub-address unknown" in result.log


def test_files_and_addresses_redmine_would_refuse_are_made_acceptable_or_left_out(site, testbed, token):
    """Finding 15: a NUL or 2,500 characters in a file name, a NUL in an address and a
    3,000-character From each stalled the whole mail as Redmine's fault."""
    long_name = "r" * 2500 + ".txt"
    mail = make_mail(f"odd names {token}", sender="x" * 3000 + "@example.org",
                     headers={"Cc": "bad\x00addr@example.org, Dave Lopes <dlopes@example.net>"},
                     attachments=[("a\x00b.txt", "text/plain", b"nul\n"), (long_name, "text/plain", b"long\n"),
                                  ("fine.txt", "text/plain", b"fine\n")])
    result = site.deliver(mail)
    issue = testbed.issue(filed_issue_id(result), include="attachments,watchers")
    names = sorted(a["filename"] for a in issue["attachments"])
    assert names == sorted(["ab.txt", "r" * 251 + ".txt", "fine.txt"])
    assert users(testbed)["dlopes"]["id"] in [w["id"] for w in issue["watchers"]]


def test_five_thousand_recipients_are_filed_with_ten_looked_up(site, testbed, token):
    """Finding 12: 5,000 Cc addresses made thousands of user look-ups and hit the deadline."""
    cc = ", ".join([*(f"nobody{n}.{token}@example.org" for n in range(5000)), "dlopes@example.net"])
    result = site.deliver(make_mail(f"crowd {token}", headers={"Cc": cc}))
    issue = testbed.issue(filed_issue_id(result), include="watchers")
    assert "more recipient(s) not looked up as watchers" in issue["description"]
    assert issue["watchers"] == []  # dlopes came after the first ten


def test_a_key_file_with_a_second_line_files_nothing_and_shows_the_key_nowhere(site, testbed, token):
    """Finding 11, end to end: a comment under the key once became part of it, and from
    there reached the log, the ledger, status and check. Now it is the config's mistake:
    the mail is kept (75), nothing is filed, and no output holds the key."""
    site.key_file.write_text(f"{testbed.admin_key}\n# the gateway's key, made by {token}\n")
    site.key_file.chmod(0o600)
    done = site.deliver(make_mail(f"two-line key {token}", sender="jsmith@example.net"))
    assert (done.returncode, done.stdout, done.stderr) == (75, "", "")
    assert "fault=config" in done.log and str(site.key_file) in done.log
    assert testbed.issues_with_subject(f"two-line key {token}") == []
    outputs = [done.log]
    for command in (["check"], ["status"]):
        run = subprocess.run([console_script(), *command, "--config", str(site.config_path)],
                             capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
                             env={**os.environ, "HOME": str(site.home)})
        assert run.returncode != 0
        outputs += [run.stdout.decode(), run.stderr.decode()]
    assert str(site.key_file) in outputs[1] + outputs[2]
    for text in outputs:
        assert testbed.admin_key not in text and token not in text
