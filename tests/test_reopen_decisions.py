"""Replies that move the issue they answer, in-process against the fake Redmine
(support/fakeredmine.py): [reply] reopen_status within reopen_within, a new related issue
after it, waiting_statuses to resume_status, a status keyword winning, a workflow that
refuses the status, the config's unknown statuses, --dry-run and the log line. The same
against the real Redmine: test_reopen.py."""

from __future__ import annotations

import json
import time

import pytest

from support.fakeredmine import JSMITH, STATUSES, FakeRedmine
from support.mails import make_mail
from support.inprocess import deliver_quietly as deliver, delivered, settings_for

REOPEN = '[reply]\nreopen_status = "In Progress"\nreopen_within = "30d"\n'
#: The replies below come from jsmith: the requester's side only when the issue is theirs.
BY_JSMITH = {"author": {"id": JSMITH["id"], "name": "John Smith"}}
WAITING = '[reply]\nwaiting_statuses = ["Feedback"]\nresume_status = "In Progress"\n'


@pytest.fixture
def redmine():
    with FakeRedmine() as fake:
        yield fake


def recently() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))


def reply(issue_id: int, text: str = "It is broken again.") -> bytes:
    return make_mail(f"Re: [Helpdesk - Bug #{issue_id}] VPN", f"{text}\n\n> old", sender="jsmith@example.net")


def log_line(site) -> str:
    return site.log_file.read_text().splitlines()[-1]


def test_a_reply_reopens_a_recently_closed_issue_in_the_same_request(offline_site, redmine):
    redmine.issues[12] = {**BY_JSMITH, "project": "helpdesk", "subject": "VPN", "status": "Closed", "closed_on": recently()}
    settings = settings_for(offline_site, redmine.url, REOPEN)
    result = deliver(settings, reply(12))
    assert (result.status, result.outcome.decision, result.outcome.issue_id) == (0, "filed", 12)
    [(issue_id, fields)] = redmine.updated
    assert fields == {"notes": "It is broken again.", "status_id": STATUSES["In Progress"]}
    assert redmine.issues[12]["status"] == "In Progress" and redmine.created == []
    assert 'reopened="In Progress"' in log_line(offline_site) and "action=note" in log_line(offline_site)


def test_a_reply_to_an_issue_closed_long_ago_is_a_new_related_issue(offline_site, redmine):
    redmine.issues[12] = {**BY_JSMITH, "project": "helpdesk", "subject": "VPN", "status": "Closed",
                          "closed_on": "2026-01-05T10:00:00Z"}
    settings = settings_for(offline_site, redmine.url, REOPEN)
    result = deliver(settings, reply(12))
    assert (result.status, result.outcome.decision) == (0, "filed")
    [created] = redmine.created
    assert created["description"].endswith("[A reply to #12, closed on 2026-01-05: filed as a new issue related to it]")
    assert redmine.updated == [] and redmine.issues[12]["status"] == "Closed"
    assert redmine.relations == [(result.outcome.issue_id, 12)]
    assert "follows=#12" in log_line(offline_site)


def test_the_relation_made_again_on_a_retry_is_no_failure(offline_site, redmine):
    from m2r_deliver.redmine.client import connect
    from m2r_deliver.redmine.issues import add_relation

    settings = settings_for(offline_site, redmine.url)
    connection = connect(settings)
    assert add_relation(connection, 101, 12) and add_relation(connection, 101, 12)
    assert redmine.relations == [(101, 12)]


def test_without_reopen_status_a_closed_issue_takes_the_note_as_before(offline_site, redmine):
    redmine.issues[12] = {**BY_JSMITH, "project": "helpdesk", "subject": "VPN", "status": "Closed", "closed_on": recently()}
    deliver(settings_for(offline_site, redmine.url), reply(12))
    [(_, fields)] = redmine.updated
    assert fields == {"notes": "It is broken again."} and redmine.issues[12]["status"] == "Closed"
    deliver(settings_for(offline_site, redmine.url, '[reply]\nclosed = "missing"\n'), reply(12, "Again."))
    assert len(redmine.updated) == 1 and len(redmine.created) == 1, "closed = missing: a new issue, as before"
    assert redmine.relations == []


def test_a_reply_to_a_waiting_issue_resumes_it(offline_site, redmine):
    redmine.issues[12] = {**BY_JSMITH, "project": "helpdesk", "subject": "VPN", "status": "Feedback"}
    redmine.issues[13] = {**BY_JSMITH, "project": "helpdesk", "subject": "Disk", "status": "New"}
    settings = settings_for(offline_site, redmine.url, WAITING)
    deliver(settings, reply(12, "Here is the log you asked for."))
    assert redmine.updated[-1] == (12, {"notes": "Here is the log you asked for.", "status_id": 2})
    assert 'resumed="In Progress"' in log_line(offline_site)
    deliver(settings, reply(13))
    assert redmine.updated[-1] == (13, {"notes": "It is broken again."}), "not waiting: the status is left alone"
    assert "resumed=" not in log_line(offline_site)


def test_a_status_keyword_wins_over_reopen_and_resume(offline_site, redmine):
    redmine.issues[12] = {**BY_JSMITH, "project": "helpdesk", "subject": "VPN", "status": "Feedback"}
    settings = settings_for(offline_site, redmine.url, WAITING,
                            issue='project = "helpdesk"\nallow_override = ["status"]')
    deliver(settings, reply(12, "All fine now, thanks.\n\nStatus: Resolved"))
    assert redmine.updated[-1] == (12, {"notes": "All fine now, thanks.", "status_id": STATUSES["Resolved"]})
    assert "resumed=" not in log_line(offline_site)


@pytest.mark.parametrize("refusal", ["422", "ignore"])
def test_a_status_the_workflow_refuses_still_leaves_the_note(offline_site, redmine, refusal):
    redmine.issues[12] = {**BY_JSMITH, "project": "helpdesk", "subject": "VPN", "status": "Closed", "closed_on": recently()}
    redmine.status_refusal = refusal
    result = deliver(settings_for(offline_site, redmine.url, REOPEN), reply(12))
    assert (result.status, result.outcome.decision) == (0, "filed")
    assert [fields["notes"] for _, fields in redmine.updated] == ["It is broken again."]
    assert redmine.issues[12]["status"] == "Closed"
    line = log_line(offline_site)
    assert "reopened=" not in line and "the note was added without it" in line


@pytest.mark.parametrize("extra,key", [
    ('[reply]\nreopen_status = "Reopened"\n', "reply.reopen_status"),
    ('[reply]\nwaiting_statuses = ["Waiting"]\nresume_status = "In Progress"\n', "reply.waiting_statuses"),
    ('[reply]\nwaiting_statuses = ["Feedback"]\nresume_status = "Working"\n', "reply.resume_status"),
])
def test_a_status_redmine_lacks_is_the_configs_mistake(offline_site, redmine, extra, key):
    redmine.issues[12] = {"project": "helpdesk", "subject": "VPN"}
    result = deliver(settings_for(offline_site, redmine.url, extra), reply(12))
    assert (result.status, result.failure.fault) == (75, "config")
    assert key in result.failure.reason and redmine.updated == []


def test_dry_run_shows_the_status_change_and_the_relation(offline_site, redmine):
    redmine.issues[12] = {**BY_JSMITH, "project": "helpdesk", "subject": "VPN", "status": "Closed", "closed_on": recently()}
    redmine.issues[13] = {**BY_JSMITH, "project": "helpdesk", "subject": "Old", "status": "Rejected",
                          "closed_on": "2026-01-05T10:00:00Z"}
    settings = settings_for(offline_site, redmine.url, REOPEN)
    plans = []
    for issue_id in (12, 13):
        plans.append(json.loads(delivered(settings, reply(issue_id), dry_run=True).stdout))
    reopened, follow = plans
    assert reopened["action"] == "note" and reopened["resolved"]["status_id"] == STATUSES["In Progress"]
    assert reopened["resolved"]["status_change"] == {"reopened": "In Progress", "was": "Closed"}
    assert follow["action"] == "create" and follow["resolved"]["relates_to"] == 13
    assert follow["description"].endswith("filed as a new issue related to it]")
    assert redmine.updated == [] and redmine.created == [] and redmine.relations == []


@pytest.mark.parametrize("config, status", [(REOPEN, "Closed"), (WAITING, "Feedback")])
def test_staff_answering_by_mail_leave_the_status_alone(offline_site, redmine, config, status):
    """jsmith has an account and is acted as, but the issue is someone else's: the note is
    added, the issue stays where it is (only the requester's side reopens or resumes)."""
    redmine.issues[12] = {"author": {"id": 1, "name": "Redmine Admin"}, "project": "helpdesk", "subject": "VPN",
                          "status": status, "closed_on": recently()}
    result = deliver(settings_for(offline_site, redmine.url, config), reply(12))
    assert (result.status, result.outcome.decision, result.outcome.issue_id) == (0, "filed", 12)
    [(_, fields)] = redmine.updated
    assert fields == {"notes": "It is broken again."} and redmine.issues[12]["status"] == status
    assert redmine.created == [] and "reopened=" not in log_line(offline_site)
    assert "resumed=" not in log_line(offline_site)
