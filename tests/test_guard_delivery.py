"""The guards through the installed program, with real mail and the real Redmine: the 103
real bounces, Redmine's own notifications captured from the test bed and fed back (the
full loop), vacation and out-of-office replies, the web form, the rate limit's hold
folder, and the proof that the drop path never loads the HTTP stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from support.paths import CORPUS, ROOT, console_script, corpus_file
from support.faultproxy import FaultProxy
from support.mails import make_mail, parsed
from support.testbed import filed_issue_id, imported_modules

FIXTURES = ROOT / "tests" / "fixtures" / "guards"
BOUNCES = sorted(p.name for p in (CORPUS / "bounces").glob("*.txt")) or ["(corpus absent)"]
WEB_FORM = {"Auto-Submitted": "auto-generated", "Precedence": "list", "List-Id": "<request.example.org>"}


def fixture(name: str, token: str) -> bytes:
    return (FIXTURES / name).read_bytes().replace(b"@TOKEN@", token.encode())


def assert_dropped(result, guard: str | None = None) -> str:
    assert result.returncode == 0, result
    assert result.stdout == "" and result.stderr == ""
    line = result.log.strip().splitlines()[-1]
    assert "decision=dropped guard=" in line and "issue=" not in line, line
    if guard:
        assert f"guard={guard} " in line, line
    return line


# --- real bounces -------------------------------------------------------------------

@pytest.mark.parametrize("name", BOUNCES)
def test_every_real_bounce_is_dropped(site, testbed, name):
    """Dropped by the guard that knows it, and Redmine asked for nothing: no request
    reached it (through a proxy that sees every one), and it holds no new issue with the
    bounce's subject (the shared test bed takes others' issues meanwhile: not a count)."""
    data = corpus_file("bounces", name).read_bytes()
    subject = parsed(data).subject or "(no subject)"
    before = {issue["id"] for issue in testbed.issues_with_subject(subject)}
    with FaultProxy(testbed.url) as proxy:
        site.write_config(url=proxy.url)
        line = assert_dropped(site.deliver(data))
    assert re.search(r"guard=(bounce|auto_submitted|bulk) reason=", line), line
    assert proxy.seen == []
    assert {issue["id"] for issue in testbed.issues_with_subject(subject)} == before


# --- Redmine's real notifications, fed back -------------------------------------------

_MESSAGE_START = re.compile(rb"(?m)^(?=Date: [^\r\n]*\r?\nFrom: )")


def notifications(testbed, recipient: str, issue_id: int, kind: str, timeout: float = 180) -> list[bytes]:
    """Redmine's complete notification mails of *kind* ("issue" or "journal") about
    *issue_id*, as Redmine wrote them for *recipient* into the test bed's mail_dir."""
    path = Path(testbed.info["mail_dir"]) / recipient
    deadline = time.monotonic() + timeout
    while True:
        data = path.read_bytes() if path.exists() else b""
        found = [m for m in _MESSAGE_START.split(data)
                 if re.search(rb"(?m)^X-Redmine-Issue-Id: %d\r?$" % issue_id, m)
                 and re.search(rb"(?m)^Message-ID: <redmine\.%s-" % kind.encode(), m) and _complete(m)]
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"no {kind} notification about #{issue_id} for {recipient} within {timeout} s")
        time.sleep(1)


def _complete(message: bytes) -> bool:
    """Redmine appends while we read: the closing MIME boundary must be there."""
    boundary = re.search(rb'boundary="([^"]+)"', message)
    return bool(boundary) and b"--" + boundary.group(1) + b"--" in message


def test_full_loop_notifications_file_nothing_and_add_no_note(site, testbed, token):
    issue_id = filed_issue_id(site.deliver(make_mail(f"loop {token}", f"VPN is down. {token}")))
    [created] = notifications(testbed, "jsmith@example.net", issue_id, "issue")
    assert b"X-Mailer: Redmine" in created and token.encode() in created
    note = testbed.api("PUT", f"/issues/{issue_id}.json", key=testbed.info["dlopes_key"],
                       json={"issue": {"notes": f"Looking at it. {token}"}})
    assert note.status_code == 204, note.text
    [updated] = notifications(testbed, "jsmith@example.net", issue_id, "journal")

    for mail in (created, updated):
        line = assert_dropped(site.deliver(mail), "redmine_own")
        assert 'reason="X-Mailer: Redmine"' in line
    # Trust never overrides this guard. (A fresh state dir: the ledger would otherwise
    # answer the same notification as a duplicate before any guard runs.)
    site.state_dir = site.home / "state-trusting"
    site.write_config('[guard]\ntrusted_senders = ["redmine@redmine.test"]\n')
    assert_dropped(site.deliver(updated), "redmine_own")

    assert [i["id"] for i in testbed.issues_with_subject(token)] == [issue_id]
    journals = testbed.issue(issue_id)["journals"]
    assert [j["notes"] for j in journals] == [f"Looking at it. {token}"]


def test_a_notification_stripped_of_redmine_headers_is_known_by_its_emission_address(site, testbed, token):
    issue_id = filed_issue_id(site.deliver(make_mail(f"stripped {token}")))
    [created] = notifications(testbed, "jsmith@example.net", issue_id, "issue")
    headers, body = created.split(b"\r\n\r\n", 1)
    kept = [h for h in re.split(rb"\r\n(?![ \t])", headers)
            if not re.match(rb"(?i)(x-mailer|x-redmine-|message-id|auto-submitted|list-id|x-auto-response)", h)]
    stripped = b"\r\n".join(kept) + f"\r\nMessage-ID: <{token}@relay.example.org>".encode() + b"\r\n\r\n" + body
    # Without the emission address no guard knows it; its subject tag makes it a reply
    # (a note, where the sender, who has no account, may add one to any issue).
    site.write_config('[reply]\noutsiders = "anyone"\n')
    assert json.loads(site.deliver(stripped, "--dry-run").stdout)["action"] == "note"
    site.write_config('[guard]\nredmine_from = ["redmine@redmine.test"]\n')
    line = assert_dropped(site.deliver(stripped), "redmine_own")
    assert "emission address redmine@redmine.test" in line
    assert [i["id"] for i in testbed.issues_with_subject(token)] == [issue_id]


def test_a_human_reply_to_a_notification_is_not_dropped(site, testbed, token):
    issue_id = filed_issue_id(site.deliver(make_mail(f"reply {token}")))
    [created] = notifications(testbed, "jsmith@example.net", issue_id, "issue")
    notification_id = re.search(rb"(?m)^Message-ID: <([^>]+)>", created).group(1).decode()
    assert notification_id.startswith(f"redmine.issue-{issue_id}.")
    reply = make_mail(f"Re: [Helpdesk - Support #{issue_id}] reply {token}", "It works again, thanks.",
                      sender="John Smith <jsmith@example.net>",
                      headers={"References": f"<{notification_id}>", "In-Reply-To": f"<{notification_id}>"})
    result = site.deliver(reply)
    assert filed_issue_id(result) == issue_id and "action=note" in result.log.splitlines()[-1]
    notes = [j["notes"] for j in testbed.issue(issue_id)["journals"] if j.get("notes")]
    assert notes == ["It works again, thanks."]


# --- auto-replies, pasted bounces, the web form ---------------------------------------

@pytest.mark.parametrize("name,guard,reason", [
    ("vacation-sieve.eml", "auto_submitted", "Auto-Submitted: auto-replied (vacation)"),
    ("exchange-oof.eml", "auto_submitted", "Auto-Submitted: auto-generated"),
    ("exchange-oof-no-auto-submitted.eml", "auto_reply", "X-Auto-Response-Suppress: All"),
    ("autoresponder.eml", "auto_reply", "X-Autorespond: Printer on floor 3 is jammed"),
])
def test_vacation_and_out_of_office_replies_are_dropped(site, testbed, token, name, guard, reason):
    line = assert_dropped(site.deliver(fixture(name, token)), guard)
    assert f'reason="{reason}"' in line
    assert testbed.issues_with_subject(token) == []


def test_a_dropped_mail_delivered_again_is_a_duplicate_of_the_drop(site, testbed, token):
    """A real guard's drop, recorded; the same mail again is known as that drop (the
    in-process ledger row is in test_record.py)."""
    mail = fixture("vacation-sieve.eml", token)
    assert_dropped(site.deliver(mail), "auto_submitted")
    again = site.deliver(mail)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    line = site.last_log_line()
    assert "decision=duplicate" in line and "duplicate of a mail dropped by auto_submitted" in line, line
    assert testbed.issues_with_subject(token) == []


def test_a_request_that_pastes_a_bounce_is_filed(site, testbed, token):
    issue = testbed.issue(filed_issue_id(site.deliver(fixture("human-pastes-bounce.eml", token))))
    assert issue["subject"] == f"Our quotes to ACME keep bouncing {token}"
    assert "permanent fatal errors" in issue["description"]


def test_the_web_form_is_filed_when_trusted_and_dropped_when_not(site, testbed, token):
    def form():  # two requests of the form: the ledger takes one Message-ID twice for a duplicate
        return make_mail(f"[Request] VPN {token}", "Requester: taro@example.org\nTarget: vpn-gw01",
                         sender="Confluence <request@example.org>", headers=WEB_FORM)

    assert_dropped(site.deliver(form()), "auto_submitted")
    assert testbed.issues_with_subject(token) == []
    site.write_config('[guard]\ntrusted_senders = ["request@example.org"]\n')
    issue = testbed.issue(filed_issue_id(site.deliver(form())))
    assert issue["subject"] == f"[Request] VPN {token}"


def test_the_example_web_form_mail_in_a_dry_run(site):
    form = (ROOT / "examples" / "mail" / "02-web-form-iso-2022-jp.eml").read_bytes()
    plan = json.loads(site.deliver(form, "--dry-run").stdout)
    assert (plan["action"], plan["guard"], plan["reason"]) == ("drop", "auto_submitted",
                                                               "Auto-Submitted: auto-generated")
    site.write_config('[guard]\ntrusted_senders = ["request@example.org"]\n')
    plan = json.loads(site.deliver(form, "--dry-run").stdout)
    assert plan["action"] == "create" and plan["guard"] is None
    assert not (site.state_dir / "hold").exists()


# --- keeping dropped and held mail ----------------------------------------------------

def test_dry_run_shows_the_guard_and_keeps_nothing(site):
    site.write_config('[guard]\nkeep_dropped = "dropped"\n')
    result = site.deliver(corpus_file("bounces", "postfix_02.txt").read_bytes(), "--dry-run")
    assert result.returncode == 0 and result.stderr == ""
    plan = json.loads(result.stdout)
    assert plan["action"] == "drop" and plan["guard"] == "bounce" and plan["reason"].startswith("null sender")
    assert "decision=planned guard=bounce" in site.last_log_line()
    assert not (site.state_dir / "dropped").exists()


def test_dropped_mail_is_kept_byte_for_byte_when_asked(offline_site, token):
    offline_site.write_config('[guard]\nkeep_dropped = "dropped"\n')
    data = fixture("vacation-sieve.eml", token)
    line = assert_dropped(offline_site.deliver(data), "auto_submitted")
    [kept] = (offline_site.state_dir / "dropped" / "new").iterdir()
    assert kept.read_bytes() == data and f"saved={kept}" in line


def test_a_keep_dropped_folder_that_cannot_be_written_keeps_the_mail_in_the_queue(offline_site, token):
    (offline_site.home / "blocked").write_text("a file where the Maildir should be")
    offline_site.write_config(f'[guard]\nkeep_dropped = "{offline_site.home / "blocked"}"\n')
    result = offline_site.deliver(fixture("vacation-sieve.eml", token))
    assert result.returncode == 75 and result.stdout == "" and result.stderr == ""
    line = offline_site.last_log_line()
    assert "decision=tempfail" in line and "guard=auto_submitted" in line and "fault=state" in line


def test_over_the_rate_limit_the_mail_is_held_byte_for_byte(site, testbed, token):
    site.write_config("[guard]\nrate_limit = 2\n")
    sender = f"flood-{token}@example.org"
    for n in (1, 2):
        filed_issue_id(site.deliver(make_mail(f"flood {n} {token}", sender=sender)))
    third = make_mail(f"flood 3 {token}", sender=sender, mbox_from=sender)
    result = site.deliver(third)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    line = site.last_log_line()
    assert "decision=held guard=rate_limit" in line and f"2 mails from {sender}" in line
    [held] = (site.state_dir / "hold" / "new").iterdir()
    assert held.read_bytes() == third and f"saved={held}" in line
    assert sorted(i["subject"] for i in testbed.issues_with_subject(token)) == [f"flood 1 {token}",
                                                                                 f"flood 2 {token}"]
    filed_issue_id(site.deliver(make_mail(f"other sender {token}", sender=f"calm-{token}@example.org")))


def test_concurrent_runs_are_counted_right(offline_site):
    """Redmine is down, so each admitted mail tempfails; the count still holds exactly."""
    offline_site.write_config("[guard]\nrate_limit = 3\n")
    mails = [make_mail(f"burst {n}", sender="burst@example.org") for n in range(10)]
    command = [console_script(), "--config", str(offline_site.config_path)]
    env = {**os.environ, "HOME": str(offline_site.home)}
    procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in mails]
    for proc, mail in zip(procs, mails):
        proc.stdin.write(mail)
        proc.stdin.close()
    codes = sorted(proc.wait(timeout=120) for proc in procs)
    assert codes == [0] * 7 + [75] * 3
    held = sorted(p.read_bytes() for p in (offline_site.state_dir / "hold" / "new").iterdir())
    assert len(held) == 7 and set(held) <= set(mails)
    lines = offline_site.log_file.read_text().splitlines()
    assert sum("decision=held guard=rate_limit" in l for l in lines) == 7
    assert sum("decision=tempfail" in l and "fault=redmine" in l for l in lines) == 3


def test_a_retry_after_a_tempfail_is_not_counted_again(offline_site):
    offline_site.write_config("[guard]\nrate_limit = 1\n")
    first = make_mail("first", sender="retry@example.org")
    assert offline_site.deliver(first).returncode == 75
    assert offline_site.deliver(first).returncode == 75
    assert "decision=tempfail" in offline_site.last_log_line()
    assert offline_site.deliver(make_mail("second", sender="retry@example.org")).returncode == 0
    assert "decision=held" in offline_site.last_log_line()


def test_a_hold_folder_that_cannot_be_written_keeps_the_mail_in_the_queue(offline_site):
    (offline_site.home / "blocked").write_text("a file where the Maildir should be")
    offline_site.write_config(f'[guard]\nrate_limit = 1\nhold = "{offline_site.home / "blocked"}"\n')
    offline_site.deliver(make_mail("first", sender="x@example.org"))
    result = offline_site.deliver(make_mail("second", sender="x@example.org"))
    assert result.returncode == 75 and result.stdout == "" and result.stderr == ""
    line = offline_site.last_log_line()
    assert "decision=tempfail" in line and "guard=rate_limit" in line and "fault=state" in line


# --- the drop path's cost -------------------------------------------------------------

HTTP_MODULES = ("requests", "urllib3", "redminelib", "http.client")
#: Our own modules that file in Redmine: loaded only when a mail is to be filed.
FILING_MODULES = ("m2r_deliver.filing", "m2r_deliver.redmine")


def test_the_drop_path_never_loads_the_http_stack(offline_site):
    decisive = imported_modules(offline_site, corpus_file("bounces", "postfix_02.txt").read_bytes())
    assert not {m for m in decisive if m.split(".")[0] in HTTP_MODULES or m in HTTP_MODULES}
    assert not {m for m in decisive if m.startswith("flufl")}
    assert not {m for m in decisive if m.startswith(FILING_MODULES)}
    confirmed = imported_modules(offline_site, corpus_file("bounces", "smtp32_01.txt").read_bytes())
    assert "flufl.bounce" in confirmed
    assert not {m for m in confirmed if m.split(".")[0] in HTTP_MODULES or m in HTTP_MODULES}
    assert "decision=dropped guard=bounce" in offline_site.last_log_line()
    request = imported_modules(offline_site, make_mail())
    assert {"redminelib", "requests"} <= request  # the check sees the HTTP stack when it is loaded
    assert {"m2r_deliver.filing", "m2r_deliver.redmine.client"} <= request


# --- check --------------------------------------------------------------------------

def test_check_reports_the_guard_settings(site):
    command = [console_script(), "check", "--config", str(site.config_path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    assert f"ok   [guard] hold: Maildir {site.state_dir / 'hold'} is ready" in out
    assert "warn [guard] redmine_from is not set, and Redmine's REST API cannot tell it" in out
    site.write_config('[guard]\nredmine_from = ["redmine@redmine.test"]\nkeep_dropped = "/proc/forbidden"\n')
    out = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    assert "ok   [guard] redmine_from: mail from redmine@redmine.test is Redmine's own" in out
    assert "FAIL [guard] keep_dropped: cannot create Maildir /proc/forbidden" in out
