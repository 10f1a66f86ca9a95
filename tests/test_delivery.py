"""The delivery core against the real test-bed Redmine: mail in, issue out, exit 0, silence."""

import base64
import json

import pytest

from support.paths import console_script, corpus_file
from support.faultproxy import FaultProxy
from support.mails import make_mail, sjis_to_jis
from support.testbed import filed_issue, mail_text

def test_plain_request_becomes_an_issue(site, testbed, token):
    body = f"The printer on floor 3 is jammed.\n\nRef {token}\n  indented line"
    issue = filed_issue(site.deliver(make_mail(f"Printer jammed {token}", body, mbox_from="taro@example.org")), testbed)
    assert issue["subject"] == f"Printer jammed {token}"
    assert mail_text(issue) == body
    assert issue["project"]["name"] == "Helpdesk"
    assert issue["tracker"]["name"] == "Support"


def test_iso_2022_jp_request_with_cp932_characters(site, testbed, token):
    subject_jis = sjis_to_jis("見積書①の件".encode("cp932"))
    body = f"㈱髙島屋様\n見積書①を添付します。{token}"
    data = (b"From: =?ISO-2022-JP?B?" + base64.b64encode(sjis_to_jis("山田".encode("cp932"))) + b"?= <taro@example.org>\r\n"
            b"To: request@example.org\r\nSubject: =?ISO-2022-JP?B?" + base64.b64encode(subject_jis) + b"?=\r\n"
            b"Message-ID: <" + token.encode() + b"@jis.example.org>\r\n"
            b"Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
            + b"\r\n".join(sjis_to_jis(line.encode("cp932")) for line in body.split("\n")))
    issue = filed_issue(site.deliver(data), testbed)
    assert issue["subject"] == "見積書①の件"
    assert mail_text(issue) == body


def test_shift_jis_request(site, testbed, token):
    body = f"～ 波ダッシュと①と髙 {token}"
    data = b"From: taro@example.org\r\nSubject: =?Shift_JIS?B?" + base64.b64encode(
        "シフトJISの件名".encode("cp932")) + (b"?=\r\nContent-Type: text/plain; charset=Shift_JIS\r\n"
                                           b"Content-Transfer-Encoding: 8bit\r\n\r\n") + body.encode("cp932")
    issue = filed_issue(site.deliver(data), testbed)
    assert issue["subject"] == "シフトJISの件名"
    assert mail_text(issue) == body


@pytest.mark.parametrize("name,subject,starts", [
    ("subject_japanese_1.eml", "テスト", "Fixture"),
    ("subject_japanese_3.eml", "① 丸数字テスト", "The subject contains"),
    ("ticket_html_only.eml", "HTML email", "This is a html-only email."),
    ("outlook_web_access_2010_html_only.eml", "Upgrade Redmine to 3.0.x", "A mess."),
    ("body_ks_c_5601-1987.eml", "This is a test", "고맙습니다."),
])
def test_corpus_requests(site, testbed, name, subject, starts):
    issue = filed_issue(site.deliver(corpus_file("redmine-mail-handler", name).read_bytes()), testbed)
    assert issue["subject"] == subject
    assert mail_text(issue).startswith(starts)
    assert "<" not in mail_text(issue) and "&nbsp;" not in mail_text(issue)


def test_html_only_reads_like_text(site, testbed, token):
    data = (b"From: a@example.org\r\nSubject: html " + token.encode() + b"\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            b"<html><body><p>Dear team,</p><p>two things:<br>first line</p><ol><li>VPN</li><li>Mail</li></ol>"
            b"<p>Thanks &amp; regards</p></body></html>")
    issue = filed_issue(site.deliver(data), testbed)
    assert mail_text(issue) == (
        "Dear team,\n\ntwo things:\nfirst line\n\n1. VPN\n2. Mail\n\nThanks & regards")


def test_long_and_missing_subjects(site, testbed, token):
    issue = filed_issue(site.deliver(make_mail(f"{token} " + "x" * 400)), testbed)
    assert len(issue["subject"]) == 255 and issue["subject"].startswith(token)
    issue = filed_issue(site.deliver(make_mail(None, f"no subject {token}")), testbed)
    assert issue["subject"] == "(no subject)"


def test_body_is_cut_at_a_configured_delimiter(site, testbed, token):
    site.write_config('[mail]\nbody_delimiters = ["-- ", "---- Original Message ----"]\n')
    body = f"keep this {token}\n-- \nsignature\n"
    issue = filed_issue(site.deliver(make_mail(f"delim {token}", body)), testbed)
    assert mail_text(issue) == f"keep this {token}"


def test_attachment_is_uploaded(site, testbed, token):
    data = make_mail(f"with file {token}", "see attached", attachments=[("見積書①.pdf", "application/pdf", b"%PDF-1.4 x" * 50)])
    issue = filed_issue(site.deliver(data), testbed)
    [attachment] = issue["attachments"]
    assert attachment["filename"] == "見積書①.pdf"
    assert attachment["filesize"] == 500
    assert attachment["content_type"] == "application/pdf"


def test_routes_first_match_wins(site, testbed, token):
    site.write_config('[[route]]\nto = "ops@example.org"\nproject = "ops"\ntracker = "Bug"\n\n'
                      '[[route]]\nsubject = "printer"\npriority = "High"\n')
    issue = filed_issue(site.deliver(make_mail(f"Disk full {token}", to="Ops <OPS@example.org>")), testbed)
    assert issue["project"]["name"] == "Operations" and issue["tracker"]["name"] == "Bug"
    assert "route=\"route #1\"" in site.last_log_line()
    issue = filed_issue(site.deliver(make_mail(f"Printer broken {token}")), testbed)
    assert issue["project"]["name"] == "Helpdesk" and issue["priority"]["name"] == "High"


def test_project_from_subaddress(site, testbed, token):
    data = make_mail(f"subaddress {token}", to="redmine+ops@example.org")
    issue = filed_issue(site.deliver(data, "--project-from-subaddress", "redmine@example.org"), testbed)
    assert issue["project"]["name"] == "Operations"


def test_rdm_mailhandler_flags_work_without_a_config_file(tmp_path, testbed, token):
    import os
    import subprocess
    key = tmp_path / "key"
    key.write_text(testbed.admin_key)
    key.chmod(0o600)
    args = [console_script(), "--url", testbed.url, "--key-file", str(key), "--project", "ops", "--tracker", "Bug",
            "--priority", "Urgent", "--private"]
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    proc = subprocess.run(args, input=make_mail(f"flags {token}"), capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b"" and proc.stderr == b""
    [issue] = testbed.issues_with_subject(f"flags {token}")
    assert issue["project"]["name"] == "Operations" and issue["tracker"]["name"] == "Bug"
    assert issue["priority"]["name"] == "Urgent" and issue["is_private"] is True


def test_dry_run_prints_the_plan_and_files_nothing(site, testbed, token):
    result = site.deliver(make_mail(f"dry {token}", attachments=[("a.txt", "text/plain", b"hello")]), "--dry-run")
    assert result.returncode == 0 and result.stderr == ""
    plan = json.loads(result.stdout)
    assert plan["action"] == "create" and plan["subject"] == f"dry {token}"
    assert plan["project"] == "helpdesk" and plan["fields"] == {"tracker": "Support"}
    assert plan["resolved"]["project_id"] == testbed.info["projects"]["helpdesk"]
    assert plan["resolved"]["tracker_id"] == testbed.info["trackers"]["Support"]
    assert plan["attachments"] == [{"index": 0, "filename": "a.txt", "content_type": "text/plain", "size": 5,
                                    "left_out": None}]
    assert testbed.issues_with_subject(f"dry {token}") == []


def test_dry_run_of_a_mail_already_filed_says_it_is_a_duplicate(site, testbed, token):
    mail = make_mail(f"dry again {token}")
    issue = filed_issue(site.deliver(mail), testbed)
    result = site.deliver(mail, "--dry-run")
    assert result.returncode == 0 and result.stderr == ""
    said = json.loads(result.stdout)
    assert said["action"] == "duplicate" and said["issue"] == issue["id"]
    assert said["reason"] == f"duplicate of #{issue['id']}"
    assert len(testbed.issues_with_subject(f"dry again {token}")) == 1


NAME_LISTS = ("/projects.json", "/trackers.json", "/enumerations/issue_priorities.json",
              "/projects/helpdesk/issue_categories.json")


def test_names_are_cached_between_messages(site, testbed, token):
    issue = 'project = "helpdesk"\ntracker = "Bug"\npriority = "Low"\ncategory = "Printers"'
    with FaultProxy(testbed.url) as proxy:
        site.write_config(issue=issue, url=proxy.url)
        filed_issue(site.deliver(make_mail(f"cache1 {token}")), testbed)
        first = [path.split("?")[0] for _, path, _ in proxy.seen]
        cache = json.loads((site.state_dir / "names.json").read_text())
        assert set(cache["kinds"]) >= {"trackers", "priorities", "categories:helpdesk", "projects"}
        del proxy.seen[:]
        issue = filed_issue(site.deliver(make_mail(f"cache2 {token}")), testbed)
        second = [path.split("?")[0] for _, path, _ in proxy.seen]
    assert all(any(path.endswith(name) for path in first) for name in NAME_LISTS), first
    assert not any(path.endswith(name) for path in second for name in NAME_LISTS), second
    assert issue["category"]["name"] == "Printers" and issue["priority"]["name"] == "Low"


def test_wrong_key_tempfails_silently(site, testbed):
    site.key_file.write_text("0" * 40)
    result = site.deliver(make_mail())
    assert result.returncode == 75 and result.stdout == "" and result.stderr == ""
    assert "401 Unauthorized" in site.last_log_line()


def test_unknown_project_is_kept_not_bounced(site, testbed, token):
    site.write_config(issue='project = "no-such-project"')
    result = site.deliver(make_mail(f"lost {token}"))
    assert result.returncode == 75 and result.stdout == "" and result.stderr == ""
    assert "no-such-project" in site.last_log_line()


def test_unknown_tracker_is_a_config_error(site, testbed, token):
    site.write_config(issue='project = "helpdesk"\ntracker = "Suport"')
    result = site.deliver(make_mail(f"typo {token}"))
    assert result.returncode == 75 and result.stderr == ""
    assert "fault=config" in site.last_log_line() and "tracker 'Suport'" in site.last_log_line()
    assert testbed.issues_with_subject(f"typo {token}") == []


def test_check_reports_each_finding(site, testbed):
    import subprocess
    site.write_config('[[route]]\nto = "x@example.org"\nproject = "ops"\ncategory = "Nope"\n',
                      issue='project = "helpdesk"\ntracker = "Support"\nfixed_version = "1.0"')
    proc = subprocess.run([console_script(), "check", "--config", str(site.config_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any(l.startswith("ok   Redmine") and "admin's" in l for l in lines)
    assert "ok   the key's user is an administrator" in lines
    assert any(l.startswith("ok   [issue]: project 'helpdesk'") for l in lines)
    assert any(l.startswith("FAIL route #1: category 'Nope' not found in Redmine; the names that exist: ")
               for l in lines), lines
    site.write_config()
    site.key_file.write_text(testbed.info["gateway_key"])
    proc = subprocess.run([console_script(), "check", "--config", str(site.config_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert "warn the key is not an administrator's: every issue is filed as gateway" in proc.stdout
