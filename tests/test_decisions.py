"""Routing and delivery decisions in-process, against a small fake Redmine
(support/fakeredmine.py): which project and values a new issue gets, when a mail becomes a
note, what a reply to a missing issue does, how a refusal is classified. Fast and exact
about the requests made; the same decisions against the real test-bed Redmine are in
test_delivery.py, test_replies.py, test_redmine_corpus.py and test_exactly_once.py."""

from __future__ import annotations


import pytest

from m2r_deliver.config import load
from m2r_deliver.route import plan_issue
from support.fakeredmine import PROJECTS, PRIORITIES, TRACKERS, VERSIONS, FakeRedmine
from support.mails import as_new_message, make_mail, parsed
from support.inprocess import deliver_quietly, settings_for


@pytest.fixture
def redmine():
    with FakeRedmine() as fake:
        yield fake


deliver = deliver_quietly


ROUTES = ('[[route]]\nto = "ops@example.org"\nproject = "ops"\ntracker = "Bug"\n\n'
          '[[route]]\nsubject = "printer"\npriority = "High"\n')


def test_the_first_matching_route_gives_the_values(offline_site):
    settings = settings_for(offline_site, "http://127.0.0.1:9", ROUTES)
    to_ops = plan_issue(parsed(make_mail("Printer and disk", to="Ops <OPS@example.org>")), settings)
    assert (to_ops.project, to_ops.fields.get("tracker"), to_ops.route) == ("ops", "Bug", "route #1")
    assert "priority" not in to_ops.fields, "only the first matching route applies"
    printer = plan_issue(parsed(make_mail("Printer broken")), settings)
    assert (printer.project, printer.fields.get("priority"), printer.route) == ("helpdesk", "High", "route #2")
    neither = plan_issue(parsed(make_mail("Disk full")), settings)
    assert (neither.project, neither.route) == ("helpdesk", "defaults")


def test_routed_values_reach_redmine_as_ids(offline_site, redmine):
    settings = settings_for(offline_site, redmine.url, ROUTES)
    result = deliver(settings, make_mail("Disk full", to="ops@example.org"))
    assert (result.status, result.outcome.decision) == (0, "filed")
    [created] = redmine.created
    assert (created["project_id"], created["tracker_id"]) == (PROJECTS["ops"], TRACKERS["Bug"])
    deliver(settings, make_mail("Printer broken"))
    assert (redmine.created[1]["project_id"], redmine.created[1]["priority_id"]) == (PROJECTS["helpdesk"],
                                                                                      PRIORITIES["High"])


def test_a_subaddress_names_the_project(offline_site):
    settings = settings_for(offline_site, "http://127.0.0.1:9",
                            issue='project = "helpdesk"\nproject_from_subaddress = "redmine@example.org"')
    plan = plan_issue(parsed(make_mail("Disk full", to="redmine+ops@example.org")), settings)
    assert plan.project == "ops"


def test_a_reply_with_the_subject_tag_becomes_a_note_and_files_no_issue(offline_site, redmine):
    redmine.issues[12] = {"project": "helpdesk", "subject": "VPN down"}
    settings = settings_for(offline_site, redmine.url)
    result = deliver(settings, make_mail("Re: [Helpdesk - Bug #12] VPN down", "Works again.\n\n> old",
                                         sender="jsmith@example.net"))
    assert (result.status, result.outcome.decision, result.outcome.issue_id) == (0, "filed", 12)
    assert redmine.created == []
    [(issue_id, fields)] = redmine.updated
    assert issue_id == 12 and fields["notes"] == "Works again."
    assert "project_id" not in fields and "tracker_id" not in fields, "[issue] values never touch the issue"


def test_a_reply_to_a_missing_issue_is_filed_new_or_dropped(offline_site, redmine):
    settings = settings_for(offline_site, redmine.url)
    mail = make_mail("Re: [#987] Gone", "Still broken.", sender="jsmith@example.net")
    assert deliver(settings, mail).outcome.decision == "filed"
    assert [c["subject"] for c in redmine.created] == ["Re: [#987] Gone"] and redmine.updated == []
    settings = settings_for(offline_site, redmine.url, '[reply]\nmissing = "drop"\n')
    dropped = deliver(settings, make_mail("Re: [#987] Gone again", sender="jsmith@example.net"))
    assert (dropped.status, dropped.outcome.decision) == (0, "dropped")
    assert len(redmine.created) == 1 and redmine.updated == []


def test_a_version_custom_field_keyword_is_sent_as_the_versions_id(offline_site, redmine):
    """Redmine stores a version field as the version's id; a keyword names the version."""
    settings = settings_for(offline_site, redmine.url,
                            issue='project = "helpdesk"\nallow_override = ["custom_field:Affected version"]')
    result = deliver(settings, make_mail("Crash", "It crashes.\n\nAffected version: 1.0\n"))
    assert result.outcome.decision == "filed", result
    [created] = redmine.created
    assert {"id": 7, "value": VERSIONS["1.0"]} in created["custom_fields"]


def test_a_list_custom_field_keyword_takes_the_fields_spelling(offline_site, redmine):
    settings = settings_for(offline_site, redmine.url, issue='project = "helpdesk"\nallow_override = ["custom_field:Database"]')
    deliver(settings, make_mail("Slow queries", "Please look.\n\nDatabase: postgresql\n"))
    assert {"id": 5, "value": "PostgreSQL"} in redmine.created[0]["custom_fields"]


def test_a_refusal_is_the_mails_fault_and_keeps_the_mail(offline_site):
    with FakeRedmine(refuse_create=(422, {"errors": ["Tracker is not included in the list"]})) as redmine:
        settings = settings_for(offline_site, redmine.url)
        result = deliver(settings, make_mail("Refused"))
    assert result.status == 75
    assert result.failure.fault == "mail" and "Tracker is not included" in result.failure.reason


def test_a_reply_to_mail_filed_on_another_host_is_found_by_the_marker_field(offline_site, redmine):
    redmine.issues[12] = {"project": "helpdesk", "subject": "Printer", "marker": "<printer.1234@host-a.example>"}
    mail = make_mail("Re: Printer", "Still jammed.", sender="jsmith@example.net",
                     headers={"In-Reply-To": "<ack-of-sorts.99@elsewhere.example>",
                              "References": "<printer.1234@host-a.example> <ack-of-sorts.99@elsewhere.example>"})
    result = deliver(settings_for(offline_site, redmine.url), mail)
    assert redmine.created and not redmine.updated, "without a marker field: a new issue, no look-up"
    asked = [path for _, path in redmine.seen if path == "/issues.json"]
    offline_site.write_config(url=redmine.url, redmine='timeout = 10\nmarker_field = "Message-ID"')
    settings = load(str(offline_site.config_path), {}, {"HOME": str(offline_site.home)})
    result = deliver(settings, as_new_message(mail))
    assert (result.status, result.outcome.decision, result.outcome.issue_id) == (0, "filed", 12)
    assert redmine.updated == [(12, {"notes": "Still jammed."})] and len(redmine.created) == 1
    assert len([path for _, path in redmine.seen if path == "/issues.json"]) - len(asked) == 2, \
        "one look-up per unknown Message-ID until one is found, newest first"
