"""Replies that move the issue they answer, against the real test-bed Redmine (statuses
New, In Progress, Resolved, Feedback, Closed, Rejected; Closed and Rejected are closed):
reopened within [reply] reopen_within, a new related issue after it, a waiting issue
resumed, a retry after a lost answer, and check naming a status Redmine lacks."""

import os
import subprocess
import time

from support.faultproxy import FaultProxy
from support.mails import make_mail
from support.paths import console_script
from support.testbed import add_note, assert_silent, decision, filed_issue_id, log_lines, make_issue

REOPEN = '[reply]\nreopen_status = "In Progress"\nreopen_within = "{within}"\n'


def reply(issue_id, token, text="It is broken again"):
    text = f"{text} ({token})."
    return text, make_mail(f"Re: [Helpdesk - Bug #{issue_id}] Switch", f"{text}\n\n> old text",
                           sender="jsmith@example.net")


def status_changes(issue):
    """(old status id, new status id) of each journal that changed the status."""
    return [(int(d["old_value"]), int(d["new_value"])) for j in issue["journals"] for d in j.get("details", [])
            if d.get("name") == "status_id"]


def authored_issue(testbed, subject, author="jsmith", **fields):
    """An issue *author* filed: a reply from them is the requester's side, which moves it."""
    body = {"issue": {"project_id": "helpdesk", "subject": subject, "tracker_id": testbed.info["trackers"]["Bug"],
                      **fields}}
    response = testbed.api("POST", "/issues.json", key=testbed.info[f"{author}_key"], json=body)
    assert response.status_code == 201, response.text
    return response.json()["issue"]["id"]


def closed_issue(testbed, subject, author="jsmith"):
    issue_id = authored_issue(testbed, subject, author)
    add_note(testbed, issue_id, "Closing.", status_id=testbed.info["statuses"]["Closed"])
    return issue_id


def test_a_reply_reopens_a_closed_issue_with_its_note(site, testbed, token):
    statuses = testbed.info["statuses"]
    issue_id = closed_issue(testbed, f"Switch {token}")
    site.write_config(REOPEN.format(within="30d"))
    text, mail = reply(issue_id, token)
    result = site.deliver(mail)
    assert filed_issue_id(result) == issue_id
    assert 'reopened="In Progress"' in site.last_log_line()
    issue = testbed.issue(issue_id)
    assert issue["status"]["id"] == statuses["In Progress"]
    last = issue["journals"][-1]
    assert last["notes"] == text and last["user"]["id"] == testbed.info["users"]["jsmith"]["id"]
    assert status_changes(issue)[-1] == (statuses["Closed"], statuses["In Progress"]), "with the note, one journal"


def test_a_user_the_workflow_does_not_let_reopen_still_adds_the_note(site, testbed, token):
    """dlopes is a Developer: Redmine's default workflow lets no Developer leave Closed."""
    issue_id = closed_issue(testbed, f"Fan {token}", author="dlopes")
    site.write_config(REOPEN.format(within="30d"))
    text = f"The fan is loud again ({token})."
    mail = make_mail(f"Re: [Helpdesk - Bug #{issue_id}] Fan", text, sender="dlopes@example.net")
    assert filed_issue_id(site.deliver(mail)) == issue_id
    issue = testbed.issue(issue_id)
    assert issue["status"]["name"] == "Closed" and issue["journals"][-1]["notes"] == text
    assert issue["journals"][-1]["user"]["id"] == testbed.info["users"]["dlopes"]["id"]
    line = site.last_log_line()
    assert "reopened=" not in line and "status 'In Progress' not taken by Redmine" in line


def test_staff_answering_a_closed_issue_by_mail_leave_it_closed(site, testbed, token):
    """jsmith answers, by mail, an issue someone else filed: the note is added, the issue
    stays closed (only the requester's side reopens)."""
    issue_id = make_issue(testbed, f"Cable {token}")
    add_note(testbed, issue_id, "Closing.", status_id=testbed.info["statuses"]["Closed"])
    site.write_config(REOPEN.format(within="30d"))
    text, mail = reply(issue_id, token, "For the record: the cable was replaced")
    assert filed_issue_id(site.deliver(mail)) == issue_id
    issue = testbed.issue(issue_id)
    assert issue["status"]["name"] == "Closed" and issue["journals"][-1]["notes"] == text
    assert "reopened=" not in site.last_log_line() and "not taken" not in site.last_log_line()


def test_a_reply_to_an_issue_closed_too_long_ago_is_a_new_related_issue(site, testbed, token):
    old = closed_issue(testbed, f"Printer {token}")
    site.write_config(REOPEN.format(within="1s"))
    time.sleep(2)  # Redmine's closed_on is in whole seconds: now more than 1 s ago
    text, mail = reply(old, token, "The printer jams again")
    new = filed_issue_id(site.deliver(mail))
    assert new != old and f"follows=#{old}" in site.last_log_line()
    issue = testbed.issue(new, include="relations")
    assert text in issue["description"] and f"A reply to #{old}, closed on" in issue["description"]
    assert [({r["issue_id"], r["issue_to_id"]}, r["relation_type"]) for r in issue["relations"]] == [
        ({new, old}, "relates")]
    before = testbed.issue(old)
    assert before["status"]["name"] == "Closed" and not any(text in (j.get("notes") or "") for j in before["journals"])


def test_a_reply_to_a_waiting_issue_resumes_it(site, testbed, token):
    statuses = testbed.info["statuses"]
    issue_id = authored_issue(testbed, f"Disk {token}")
    add_note(testbed, issue_id, "Which disk?", status_id=statuses["Feedback"])
    site.write_config('[reply]\nwaiting_statuses = ["Feedback"]\nresume_status = "In Progress"\n')
    text, mail = reply(issue_id, token, "Here is the log you asked for")
    assert filed_issue_id(site.deliver(mail)) == issue_id
    issue = testbed.issue(issue_id)
    assert issue["status"]["id"] == statuses["In Progress"] and issue["journals"][-1]["notes"] == text
    assert 'resumed="In Progress"' in site.last_log_line()


def test_a_lost_answer_retried_is_one_note_and_one_status_change(site, testbed, token):
    statuses = testbed.info["statuses"]
    issue_id = closed_issue(testbed, f"Router {token}")
    text, mail = reply(issue_id, token)
    with FaultProxy(testbed.url, target="note") as proxy:
        site.write_config(REOPEN.format(within="30d"), redmine="timeout = 30", url=proxy.url)
        proxy.mode = "drop"
        assert_silent(site.deliver(mail), 75)
        proxy.mode = "pass"
        assert_silent(site.deliver(mail), 0)
    assert [decision(line) for line in log_lines(site)] == ["tempfail", "duplicate"]
    issue = testbed.issue(issue_id)
    assert [j["notes"] for j in issue["journals"] if text in (j.get("notes") or "")] == [text]
    assert status_changes(issue) == [(statuses["New"], statuses["Closed"]), (statuses["Closed"], statuses["In Progress"])]


def test_check_names_a_reply_status_redmine_lacks(site, testbed):
    site.write_config('[reply]\nreopen_status = "Reopened"\nwaiting_statuses = ["Feedback"]\n'
                      'resume_status = "In Progress"\n')
    result = subprocess.run([console_script(), "check", "--config", str(site.config_path)], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=120, env={**os.environ, "HOME": str(site.home)})
    assert result.returncode != 0
    assert "FAIL [reply] reopen_status: status 'Reopened' not found in Redmine" in result.stdout
    assert "ok   [reply] waiting_statuses: status 'Feedback' is #" in result.stdout
    assert "ok   [reply] resume_status: status 'In Progress' is #" in result.stdout
