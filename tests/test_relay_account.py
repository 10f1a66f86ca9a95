"""The relay account against the real test-bed Redmine: the watcher of each new issue filed
for an outside requester (a form's requester without an account, a stranger filed as the
fallback user, also when the answer to the create was lost), not of an issue filed for a
member as themselves or of one without a requester; a login that does not exist.
Its checks (``m2r-deliver check``) are in tests/test_relay_check.py."""

from __future__ import annotations

from support.faultproxy import FaultProxy
from support.mails import make_mail
from support.testbed import filed_issue_id

FORM = "web-form@lists.example.org"
FORM_CONFIG = f'[sender]\nrequester_labels = ["Email"]\n\n[form]\nsenders = ["{FORM}"]\n\n'
RELAY_ON = '[outgoing]\nfrom = "Helpdesk <request@example.org>"\n\n[relay]\nenabled = true\n'


def watcher_logins(testbed, issue_id: int) -> list[str]:
    ids = {u["id"]: login for login, u in testbed.info["users"].items()}
    return sorted(ids.get(w["id"], str(w["id"])) for w in testbed.issue(issue_id, include="watchers")["watchers"])


def form_mail(token: str, requester: str) -> bytes:
    return make_mail(f"Printer jammed {token}", f"Name: Hanako Yamada\nEmail: {requester}\n\nThe printer is jammed.",
                     sender=f"Web form <{FORM}>")


def test_the_relay_account_watches_an_outside_requesters_issue_only(site, testbed, token):
    site.write_config(FORM_CONFIG + RELAY_ON)
    outside = filed_issue_id(site.deliver(form_mail(token, f"hanako.{token}@example.org")))
    assert watcher_logins(testbed, outside) == ["relay"]
    stranger = filed_issue_id(site.deliver(make_mail(f"VPN down {token}", sender=f"taro.{token}@example.org")))
    assert watcher_logins(testbed, stranger) == ["relay"]
    # a member filed as themselves hears from Redmine directly
    member = filed_issue_id(site.deliver(make_mail(f"member {token}", sender="John Smith <jsmith@example.net>")))
    assert "author=jsmith" in site.last_log_line() and watcher_logins(testbed, member) == []
    named = filed_issue_id(site.deliver(form_mail(token, "dlopes@example.net")))
    assert "author=dlopes" in site.last_log_line() and watcher_logins(testbed, named) == []


def test_a_requester_not_acted_as_but_with_an_account_watches_instead_of_the_relay(site, testbed, token):
    """Without a pass from [sender] authserv_id jsmith is not acted as; his own account
    watches the issue, and Redmine notifies him itself: the relay would repeat every note."""
    site.write_config(FORM_CONFIG.replace("[sender]\n", '[sender]\nauthserv_id = "mx.example.org"\n') + RELAY_ON)
    issue = filed_issue_id(site.deliver(make_mail(f"unverified {token}", sender="John Smith <jsmith@example.net>")))
    assert "author=admin" in site.last_log_line() and watcher_logins(testbed, issue) == ["jsmith"]


def test_an_issue_without_a_requester_has_no_relay_watcher(site, testbed, token):
    site.write_config(FORM_CONFIG + RELAY_ON)
    mail = make_mail(f"no sender {token}").replace(b"From: Taro Yamada <taro@example.org>\n", b"")
    assert b"\nFrom:" not in mail
    issue = filed_issue_id(site.deliver(mail))
    assert watcher_logins(testbed, issue) == []


def test_the_relay_watches_when_the_fallback_user_may_not_add_watchers_even_after_a_lost_answer(
        site, testbed, token):
    """gateway, a Reporter, may not set watchers: Redmine drops watcher_user_ids from its
    create without an error. The answer to the create is lost; the retry finds the issue
    and adds the relay account with the administrator's key."""
    with FaultProxy(testbed.url) as proxy:
        site.write_config(FORM_CONFIG.replace("[sender]\n", '[sender]\nfallback_user = "gateway"\n') + RELAY_ON,
                          url=proxy.url)
        mail = form_mail(token, f"hanako.{token}@example.org")
        proxy.mode = "drop"
        assert site.deliver(mail).returncode == 75
        [issue] = testbed.issues_with_subject(token)
        assert watcher_logins(testbed, issue["id"]) == []
        proxy.mode = "pass"
        again = site.deliver(mail)
    assert again.returncode == 0 and f"decision=duplicate issue=#{issue['id']} " in site.last_log_line()
    assert len(testbed.issues_with_subject(token)) == 1
    assert watcher_logins(testbed, issue["id"]) == ["relay"]


def test_a_relay_login_that_does_not_exist_files_nothing_and_says_so(site, testbed, token):
    site.write_config(FORM_CONFIG + RELAY_ON + f'user = "norelay{token}"\n')
    result = site.deliver(form_mail(token, f"hanako.{token}@example.org"))
    assert (result.returncode, result.stdout, result.stderr) == (75, "", "")
    line = site.last_log_line()
    assert "fault=config" in line and f"'norelay{token}' does not exist" in line, line
    assert testbed.issues_with_subject(token) == []
