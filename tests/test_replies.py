"""Replies become notes, against the real test-bed Redmine: replies to its real
notifications (captured from its mail_dir), to the subject tag alone, to missing and
locked issues, and Redmine's own reply cases from its test suite."""

import json
import re
from email.header import decode_header, make_header

import pytest

from support.paths import corpus_file
from support.mails import as_new_message, make_mail
from support.testbed import (Site, add_note, filed_issue_id, make_issue, make_project, notification_about, text_of,
                          wait_for)


def reply_to(notification, sender: str, text: str, *, references: str | None = None, subject: str | None = None,
             **kwargs) -> bytes:
    """A reply the way a mail client writes one: Re: subject, In-Reply-To and References
    from the notification, and its text quoted below an attribution line."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in text_of(notification).splitlines())
    body = f"{text}\n\nOn {notification['Date']}, Redmine <redmine@redmine.test> wrote:\n{quoted}\n"
    message_id = notification["Message-ID"]
    if references is None:
        references = f"{notification.get('References', '')} {message_id}".strip()
    original = str(make_header(decode_header(notification["Subject"])))
    return make_mail(subject or f"Re: {original}", body, sender=sender, to="Redmine <redmine@redmine.test>",
                     headers={"In-Reply-To": message_id, "References": references}, **kwargs)


def last_journal(testbed, issue_id):
    return testbed.issue(issue_id)["journals"][-1]


def test_reply_to_a_real_notification_becomes_a_note_by_the_replier(site, testbed, token):
    issue_id = filed_issue_id(site.deliver(make_mail(f"VPN down {token}", "vpn1 does not answer since 9:00.",
                                                     sender=f"Taro <taro.{token}@example.org>")))
    notification = wait_for(lambda: notification_about(testbed, "dlopes@example.net", issue_id),
                            "Redmine's notification to dlopes")
    reply = reply_to(notification, "Dave Lopes <dlopes@example.net>", "Rebooted vpn1, works now.\n\n-- \nDave",
                     attachments=[("vpn1.log", "text/plain", b"vpn1 restarted\n")])
    result = site.deliver(reply)
    assert filed_issue_id(result) == issue_id
    assert "action=note" in result.log and "author=dlopes" in result.log
    issue = testbed.issue(issue_id)
    [note] = issue["journals"]
    assert note["user"]["id"] == testbed.info["users"]["dlopes"]["id"]
    assert note["notes"] == "Rebooted vpn1, works now."
    assert [a["filename"] for a in issue["attachments"]] == ["vpn1.log"]
    assert issue["subject"] == f"VPN down {token}"  # a reply changes no attribute

    # jsmith answers the notification of that note; his client kept only its Message-ID
    # and dropped the subject tag: the note's issue is found from the journal id alone
    journal_mail = wait_for(lambda: notification_about(testbed, "jsmith@example.net", issue_id, "journal"),
                            "Redmine's note notification to jsmith")
    assert "redmine.journal-" in journal_mail["Message-ID"]
    second = reply_to(journal_mail, "jsmith@example.net", "Thanks Dave, closing.",
                      references=journal_mail["Message-ID"], subject="Re: VPN")
    assert filed_issue_id(site.deliver(second)) == issue_id
    note = last_journal(testbed, issue_id)
    assert note["user"]["id"] == testbed.info["users"]["jsmith"]["id"] and note["notes"] == "Thanks Dave, closing."


def test_a_reply_keeping_only_the_subject_tag_threads(site, testbed, token):
    issue_id = make_issue(testbed, f"Printer {token}")
    mail = make_mail(f"Re: [Helpdesk - Bug #{issue_id}] Printer {token}", "Toner replaced.\n\n> old text",
                     sender="jsmith@example.net")
    plan = json.loads(site.deliver(mail, "--dry-run").stdout)
    assert (plan["action"], plan["issue_id"], plan["resolved"]["as"]) == ("note", issue_id, "jsmith")
    assert plan["thread"] == [{"via": "subject", "issue_id": issue_id, "journal_id": None, "since": None,
                              "key": None}]
    assert filed_issue_id(site.deliver(mail)) == issue_id
    note = last_journal(testbed, issue_id)
    assert note["notes"] == "Toner replaced." and note["user"]["id"] == testbed.info["users"]["jsmith"]["id"]


def test_an_unknown_replier_follows_unknown_user(site, testbed, token):
    issue_id = make_issue(testbed, f"Scanner {token}")
    site.write_config('[reply]\noutsiders = "anyone"\n')
    mail = make_mail(f"Re: [Helpdesk - Bug #{issue_id}] Scanner", "Me too!", sender=f"other.{token}@example.org")
    assert filed_issue_id(site.deliver(mail)) == issue_id
    note = last_journal(testbed, issue_id)
    assert note["user"]["id"] == testbed.info["users"]["admin"]["id"]
    assert note["notes"].splitlines() == [f"From: other.{token}@example.org", "", "Me too!"]  # who really wrote it
    result = site.deliver(as_new_message(mail), "--unknown-user", "ignore")
    assert result.returncode == 0 and "guard=unknown_user" in site.last_log_line()
    assert len(testbed.issue(issue_id)["journals"]) == 1


def test_reply_to_a_missing_issue_files_a_new_one_or_is_dropped(site, testbed, token):
    mail = make_mail(f"Re: [Helpdesk - Bug #987654321] Gone {token}", "Still broken.", sender="jsmith@example.net")
    new_id = filed_issue_id(site.deliver(mail))
    issue = testbed.issue(new_id)
    assert issue["subject"] == f"Re: [Helpdesk - Bug #987654321] Gone {token}"
    assert issue["author"]["id"] == testbed.info["users"]["jsmith"]["id"]
    site.write_config('[reply]\nmissing = "drop"\n')
    result = site.deliver(make_mail(f"Re: [#987654321] Gone again {token}", sender="jsmith@example.net"))
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    line = site.last_log_line()
    assert "decision=dropped" in line and "guard=reply" in line and "#987654321 does not exist" in line
    assert testbed.issues_with_subject(f"Gone again {token}") == []


def test_replies_to_closed_issues_and_closed_projects(site, testbed, token):
    closed = make_issue(testbed, f"Closed {token}")
    add_note(testbed, closed, "Closing.", status_id=testbed.info["statuses"]["Closed"])
    assert testbed.issue(closed)["status"]["is_closed"] is True
    reply = make_mail(f"Re: [Helpdesk - Bug #{closed}] Closed", "One more thing.", sender="jsmith@example.net")
    assert filed_issue_id(site.deliver(reply)) == closed  # like Redmine: closed issues take notes
    site.write_config('[reply]\nclosed = "missing"\nmissing = "drop"\n')
    dropped = site.deliver(as_new_message(reply))
    assert (dropped.returncode, dropped.stdout, dropped.stderr) == (0, "", "")
    assert "decision=dropped" in site.last_log_line() and "guard=reply" in site.last_log_line()
    assert "is closed and [reply] closed = missing" in site.last_log_line()
    assert len(testbed.issue(closed)["journals"]) == 2, "the closing note and the first reply: nothing more"
    assert testbed.issues_with_subject(f"Re: [Helpdesk - Bug #{closed}] Closed") == [], "no new issue either"
    project = make_project(testbed, f"c{token}")
    in_closed_project = make_issue(testbed, f"Archived {token}", project=project["identifier"])
    assert testbed.api("PUT", f"/projects/{project['identifier']}/close.json").status_code == 204
    site.write_config()
    reply = make_mail(f"Re: [Test - Bug #{in_closed_project}] Archived {token}", "Hello?", sender="jsmith@example.net")
    new_id = filed_issue_id(site.deliver(reply))
    assert new_id != in_closed_project and testbed.issue(new_id)["project"]["id"] == testbed.info["projects"]["helpdesk"]
    assert testbed.issue(in_closed_project)["journals"] == [], "no note on the issue of the closed project"


# Redmine's reply cases (redmine/redmine test/unit/mail_handler_test.rb). Mapping to the
# test bed: Redmine's issue #2 is an issue made here for the test (Bug, Normal), its
# jsmith@somenet.foo is the test bed's jsmith@example.net, dlopper@somenet.foo is
# dlopes@example.net, and the new-issue defaults given (tracker Support, priority High)
# must not touch the replied-to issue (test_update_issue_should_not_set_defaults).

def corpus_reply(name: str, issue_id: int) -> bytes:
    text = corpus_file("redmine-mail-handler", name).read_bytes()
    for old, new in ((b"redmine.issue-2.", f"redmine.issue-{issue_id}.".encode()),
                     (b"#2]", f"#{issue_id}]".encode())):
        text = text.replace(old, new)
    for old in (b"jsmith@somenet.foo", b"JSmith@somenet.foo"):
        text = text.replace(old, b"jsmith@example.net")
    return text.replace(b"dlopper@somenet.foo", b"dlopes@example.net")


@pytest.fixture
def replied(site, testbed, token):
    site.write_config('[mail]\nbody_delimiters = ["--- Reply above. Do not remove this line. ---"]\n',
                      issue='project = "helpdesk"\ntracker = "Support"\npriority = "High"')
    return make_issue(testbed, f"Add ingredients categories {token}")


@pytest.mark.parametrize("name,starts", [
    ("ticket_reply.eml", "This is reply"),                      # test_update_issue
    ("ticket_reply_with_status.eml", "This is reply"),          # by subject tag; no allow_override: no keyword applies
    ("issue_update_with_cc.eml", "An update to the issue by the sender."),
    ("issue_update_with_quoted_reply_above.eml", "An update to the issue by the sender."),
    ("issue_update_with_multiple_quoted_reply_above.eml", "An update to the issue by the sender."),
])
def test_redmine_reply_cases(site, testbed, replied, name, starts):
    assert filed_issue_id(site.deliver(corpus_reply(name, replied))) == replied
    issue = testbed.issue(replied, include="journals,watchers")
    [note] = issue["journals"]
    assert note["user"]["id"] == testbed.info["users"]["jsmith"]["id"]
    assert note["notes"].startswith(starts) and note["private_notes"] is False
    assert "Looks like the JSON api for projects was missed" not in note["notes"]
    assert "Reply above" not in note["notes"]
    assert (issue["tracker"]["name"], issue["priority"]["name"], issue["status"]["name"]) == ("Bug", "Normal", "New")
    assert issue.get("assigned_to") is None and issue["due_date"] is None
    if name == "issue_update_with_cc.eml":  # test_update_issue_should_add_cc_as_watchers
        assert testbed.info["users"]["dlopes"]["id"] in [w["id"] for w in issue["watchers"]]


@pytest.mark.parametrize("subject", [
    "Re: [Feature request #{id}] Add ingredients categories",  # ..._accept_issue_id_after_space_inside_brackets
    "Re: [#{id}] Add ingredients categories",                   # ..._accept_issue_id_inside_brackets
    "Re: [12345#1][bogus#1][Feature request #{id}] Add ingredients categories",  # ..._ignore_bogus_issue_ids
])
def test_redmine_subject_tag_cases(site, testbed, replied, subject):
    mail = corpus_reply("ticket_reply_with_status.eml", replied).replace(
        f"Re: [Cookbook - Feature #{replied}] (New) Add ingredients categories".encode(),
        subject.format(id=replied).encode())
    assert filed_issue_id(site.deliver(mail)) == replied


def test_redmine_reply_to_a_private_note_is_private(site, testbed, replied):
    """test_replying_to_a_private_note_should_add_reply_as_private; the journal's
    Message-ID carries its real creation time, as Redmine's notifications do."""
    private = add_note(testbed, replied, "Private notes", private_notes=True)
    stamp = private["created_on"].replace("-", "").replace(":", "").replace("T", "").rstrip("Z")
    mail = corpus_reply("ticket_reply.eml", replied).replace(
        f"<redmine.issue-{replied}.20060719210421@osiris>".encode(),
        f"<redmine.journal-{private['id']}.{stamp}@osiris>".encode())
    assert filed_issue_id(site.deliver(mail)) == replied
    note = last_journal(testbed, replied)
    assert note["notes"] == "This is reply" and note["private_notes"] is True


def test_redmine_reply_to_a_missing_journal(site, testbed, replied):
    """test_reply_to_a_nonexitent_journal (nothing filed, with [reply] missing = drop) and
    ..._with_subject_fallback (a note on the subject's issue)."""
    missing_journal = b"<redmine.journal-987654321.20260101000000@osiris>"
    mail = corpus_reply("ticket_reply.eml", replied).replace(f"<redmine.issue-{replied}.20060719210421@osiris>".encode(),
                                                             missing_journal)
    site.write_config('[reply]\nmissing = "drop"\n')
    assert site.deliver(mail).returncode == 0 and "decision=dropped" in site.last_log_line()
    assert testbed.issue(replied)["journals"] == []
    with_tag = mail.replace(b"Subject: Re: Add ingredients categories",
                            f"Subject: Re: [Feature request #{replied}] Add ingredients categories".encode())
    assert filed_issue_id(site.deliver(as_new_message(with_tag))) == replied


def test_redmine_reply_without_permission_goes_to_the_fallback(site, testbed, token):
    """test_reply_to_an_issue_without_permission: Redmine refuses the note. Here the mail
    is not lost: in a project the gateway does not serve it becomes a new issue; in one
    it serves, the fallback (the key's user) files the note, which names its sender."""
    project = make_project(testbed, f"n{token}", public=False)
    issue_id = make_issue(testbed, f"Private {token}", project=project["identifier"])
    mail = make_mail(f"Re: [Test - Bug #{issue_id}] Private", "Can I see this?", sender="outsider@example.net")
    new_id = filed_issue_id(site.deliver(mail))
    assert new_id != issue_id and testbed.issue(new_id)["project"]["id"] == testbed.info["projects"]["helpdesk"]
    assert "not a note on #" in site.last_log_line() and testbed.issue(issue_id).get("journals") == []
    site.write_config('[reply]\noutsiders = "anyone"\n', issue=f'project = "{project["identifier"]}"')
    assert filed_issue_id(site.deliver(as_new_message(mail))) == issue_id
    note = last_journal(testbed, issue_id)
    assert note["user"]["id"] == testbed.info["users"]["admin"]["id"]
    assert note["notes"].splitlines()[0] == "From: outsider@example.net"


@pytest.mark.parametrize("regex,cut", [(True, True), (False, False)])
def test_redmine_regex_delimiter_case(site, testbed, token, regex, cut):
    """'truncate emails using a regex delimiter' on ticket_reply_from_mail.eml (a new
    issue, not a reply: quotes are stripped only from notes)."""
    delimiter = "On .*, .* at .*, .* <.*<mailto:.*>> wrote:"
    site.write_config(f'[mail]\nbody_delimiters_regex = {str(regex).lower()}\nbody_delimiters = ["{delimiter}"]\n')
    mail = corpus_file("redmine-mail-handler", "ticket_reply_from_mail.eml").read_bytes().replace(
        b"JSmith@somenet.foo", b"jsmith@example.net").replace(b"New ticket on a given project",
                                                             f"New ticket {token}".encode())
    description = testbed.issue(filed_issue_id(site.deliver(mail)))["description"]
    assert "This paragraph is before delimiter" in description
    assert ("This paragraph is after the delimiter" in description) is not cut
    assert ("wrote:" in description) is not cut


def test_two_replies_with_the_same_text_are_two_notes_with_a_marker_field(site, testbed, token):
    """With a marker field every first delivery looks in Redmine first; a note carries no
    marker, so only an attempt whose outcome is unknown may look for its own text."""
    issue_id = make_issue(testbed, f"Thanks {token}")
    site.write_config(redmine='timeout = 30\nmarker_field = "Message-ID"')
    for _ in range(2):
        reply = make_mail(f"Re: [Helpdesk - Bug #{issue_id}] Thanks {token}", "Thanks!", sender="jsmith@example.net")
        assert filed_issue_id(site.deliver(reply)) == issue_id
    assert [j["notes"] for j in testbed.issue(issue_id)["journals"]] == ["Thanks!", "Thanks!"]


# Keywords in a reply (README: Replies become notes): applied to the issue under
# allow_override, as Redmine's test_update_issue_with_attribute_changes and its siblings.

def test_update_issue_with_attribute_changes(site, testbed, token):
    """ticket_reply_with_status.eml: Status, due date, Start Date, Assigned to and a float
    custom field in the reply change the issue; the keyword lines leave the note."""
    issue_id = make_issue(testbed, f"Add ingredients categories {token}", tracker_id=testbed.info["trackers"]["Feature"])
    site.write_config(issue='project = "helpdesk"\ntracker = "Support"\npriority = "High"')
    allow = "status,assigned_to,start_date,due_date,custom_field:float field"
    assert filed_issue_id(site.deliver(corpus_reply("ticket_reply_with_status.eml", issue_id),
                                       "--allow-override", allow)) == issue_id
    issue = testbed.issue(issue_id)
    [note] = issue["journals"]
    assert note["user"]["id"] == testbed.info["users"]["jsmith"]["id"]
    assert "This is reply" in note["notes"]
    assert issue["tracker"]["name"] == "Feature"
    assert issue["status"]["name"] == "Resolved"
    assert (issue["start_date"], issue["due_date"]) == ("2010-01-01", "2010-12-31")
    assert issue["assigned_to"]["id"] == testbed.info["users"]["jsmith"]["id"]
    assert {f["name"]: f.get("value") for f in issue["custom_fields"]}["Float field"] == "52.6"
    assert not re.search(r"^Status:", note["notes"], re.I | re.M)
    assert not re.search(r"^Start Date:", note["notes"], re.I | re.M)


def test_reply_keywords_change_nothing_without_allow_override_and_never_the_project(site, testbed, token):
    issue_id = make_issue(testbed, f"Keywords {token}")
    mail = make_mail(f"Re: [Helpdesk - Bug #{issue_id}] Keywords", "Done.\n\nStatus: Resolved\nProject: ops\n",
                     sender="jsmith@example.net")
    assert filed_issue_id(site.deliver(mail)) == issue_id
    issue = testbed.issue(issue_id)
    assert (issue["status"]["name"], issue["project"]["name"]) == ("New", "Helpdesk")
    assert "Status: Resolved" in issue["journals"][-1]["notes"]  # not applied, so not taken out
    assert filed_issue_id(site.deliver(as_new_message(mail), "--allow-override", "all")) == issue_id
    issue = testbed.issue(issue_id)
    assert (issue["status"]["name"], issue["project"]["name"]) == ("Resolved", "Helpdesk")
    assert len(issue["journals"]) == 2


def test_update_issue_with_attachment(site, testbed, token):
    """ticket_with_attachment.eml as a reply: one note whose one detail is the file, no new issue."""
    issue_id = make_issue(testbed, f"Add ingredients categories {token}")
    mail = corpus_file("redmine-mail-handler", "ticket_with_attachment.eml").read_bytes().replace(
        b"jsmith@somenet.foo", b"jsmith@example.net")
    mail = re.sub(rb"(?m)^Subject: .*$", f"Subject: Re: [Cookbook - Feature #{issue_id}] (New) Add ingredients "
                  f"categories".encode(), mail, count=1)
    mail = re.sub(rb"(?m)^Message-I[dD]: .*$", f"Message-ID: <{token}.attachment-reply@corpus.test>".encode(), mail,
                  count=1)
    assert filed_issue_id(site.deliver(mail)) == issue_id
    issue = testbed.issue(issue_id)
    [note] = issue["journals"]
    assert [(d["property"], d["new_value"]) for d in note["details"]] == [("attachment", "Paella.jpg")]
    assert [a["filename"] for a in issue["attachments"]] == ["Paella.jpg"]
    assert testbed.issues_with_subject(f"#{issue_id}] (New) Add ingredients categories") == []  # no new issue


@pytest.mark.parametrize("attribution", ["On {date}, Redmine wrote:", "{date} Redmine <redmine@redmine.test>:"])
def test_a_signature_below_the_quoted_notification_is_not_in_the_note(site, testbed, token, attribution):
    """Thunderbird's and Gmail's default: the reply on top, the whole quoted notification
    with Redmine's footer, the signature below it. The note is the reply alone."""
    issue_id = filed_issue_id(site.deliver(make_mail(f"Toner {token}", "Printer out of toner.",
                                                     sender=f"Taro <taro.{token}@example.org>")))
    notification = wait_for(lambda: notification_about(testbed, "dlopes@example.net", issue_id),
                            "Redmine's notification to dlopes")
    quoted = "\n".join(f"> {line}" if line else ">" for line in text_of(notification).splitlines())
    assert "> You have received this notification because" in quoted
    heading = attribution.format(date="2026年12月1日(火) 17:53" if "<" in attribution else notification["Date"])
    body = f"Toner replaced, it prints again.\n\n{heading}\n{quoted}\n\n-- \nDave Lopes\nIT desk, ext. 123\n"
    reply = make_mail(f"Re: [Helpdesk - Support #{issue_id}] Toner {token}", body, sender="dlopes@example.net",
                      headers={"In-Reply-To": notification["Message-ID"]})
    assert filed_issue_id(site.deliver(reply)) == issue_id
    assert last_journal(testbed, issue_id)["notes"] == "Toner replaced, it prints again."


def test_a_reply_delivered_on_another_host_finds_the_issue_by_the_marker_field(site, testbed, token, tmp_path):
    """Host A filed the mail (its ledger knows it); host B, with an empty state dir, gets
    the requester's reply carrying only the original's Message-ID in References."""
    marker = 'timeout = 10\nmarker_field = "Message-ID"'
    site.write_config(redmine=marker)
    requester = f"Taro <taro.{token}@example.org>"
    original = make_mail(f"Scanner {token}", "The scanner is offline.", sender=requester,
                         msgid=f"<scanner.{token}@host-a.example>")
    issue_id = filed_issue_id(site.deliver(original))
    (tmp_path / "b").mkdir()
    host_b = Site(tmp_path / "b", testbed.url, testbed.admin_key)
    host_b.write_config(redmine=marker)
    reply = make_mail(f"Re: Scanner {token}", f"It is back, thanks ({token}).", sender=requester,
                      headers={"In-Reply-To": f"<unknown.{token}@mua.example>",
                               "References": f"<scanner.{token}@host-a.example> <unknown.{token}@mua.example>"})
    plan = json.loads(host_b.deliver(reply, "--dry-run").stdout)
    assert plan["action"] == "note" and [ref["via"] for ref in plan["thread"]] == ["marker", "marker"]
    assert filed_issue_id(host_b.deliver(reply)) == issue_id
    assert "action=note" in host_b.last_log_line()
    assert last_journal(testbed, issue_id)["notes"].endswith(f"It is back, thanks ({token}).")
    host_b.write_config()  # no marker field: no look-up, a new issue as before
    assert filed_issue_id(host_b.deliver(as_new_message(reply))) != issue_id
