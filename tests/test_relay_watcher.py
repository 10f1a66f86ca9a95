"""The relay account as a watcher of new issues, in-process against the small fake Redmine
(support/fakeredmine.py): who gets it, the create's watcher_user_ids and the add after it,
the attempt that finds the issue an earlier one filed, and a relay account that cannot be.
The same against the real test-bed Redmine: tests/test_relay_account.py."""

from __future__ import annotations


import pytest

from m2r_deliver.config import load
from support.fakeredmine import JSMITH, RELAY, FakeRedmine
from support.faultproxy import FaultProxy
from support.mails import make_mail
from support.inprocess import deliver_quietly, settings_for as settings_with

FORM = "web-form@lists.example.org"
FORM_CONFIG = f'[sender]\nrequester_labels = ["Email"]\n\n[form]\nsenders = ["{FORM}"]\n\n'
RELAY_ON = '[outgoing]\nfrom = "Helpdesk <request@example.org>"\n\n[relay]\nenabled = true\n'


@pytest.fixture
def redmine():
    with FakeRedmine() as fake:
        yield fake


def settings_for(site, url: str, extra: str = RELAY_ON):
    return settings_with(site, url, FORM_CONFIG + extra)


deliver = deliver_quietly


def form_mail(subject: str, requester: str = "hanako@example.org") -> bytes:
    return make_mail(subject, f"Name: Hanako Yamada\nEmail: {requester}\n\nThe printer is jammed.",
                     sender=f"Web form <{FORM}>")


def test_an_outside_requesters_issue_is_watched_by_the_relay_account(offline_site, redmine):
    settings = settings_for(offline_site, redmine.url)
    result = deliver(settings, form_mail("Printer jammed"))
    assert (result.status, result.outcome.decision, result.outcome.issue_id) == (0, "filed", 101)
    [created] = redmine.created
    assert created["watcher_user_ids"] == [RELAY["id"]]
    assert redmine.watched == []  # filed by the key's own administrator: Redmine takes its watchers


def test_filed_as_a_fallback_user_the_relay_account_is_added_again_after_the_create(offline_site, redmine):
    """Redmine silently drops watcher_user_ids a user without "Add watchers" sets: the
    key's own connection adds the relay account once the issue exists."""
    offline_site.write_config(FORM_CONFIG.replace("[sender]\n", '[sender]\nfallback_user = "jsmith"\n') + RELAY_ON,
                              url=redmine.url)
    settings = load(str(offline_site.config_path), {}, {"HOME": str(offline_site.home)})
    result = deliver(settings, make_mail("VPN down", sender="taro@example.org"))
    assert (result.outcome.decision, result.outcome.author) == ("filed", "jsmith")
    assert redmine.created[0]["watcher_user_ids"] == [RELAY["id"]]
    assert redmine.watched == [(101, RELAY["id"])]


def test_a_stranger_filed_as_the_keys_user_is_an_outside_requester_too(offline_site, redmine):
    settings = settings_for(offline_site, redmine.url)
    assert deliver(settings, make_mail("VPN down", sender="taro@example.org")).outcome.decision == "filed"
    assert redmine.created[0]["watcher_user_ids"] == [RELAY["id"]]


def test_a_member_acting_as_themselves_and_an_issue_without_relay_get_no_relay_watcher(offline_site, redmine):
    settings = settings_for(offline_site, redmine.url)
    assert deliver(settings, make_mail("VPN down", sender=JSMITH["mail"])).outcome.author == "jsmith"
    assert "watcher_user_ids" not in redmine.created[0] and redmine.watched == []
    off = settings_for(offline_site, redmine.url, extra="")
    assert deliver(off, form_mail("Printer jammed")).outcome.decision == "filed"
    assert "watcher_user_ids" not in redmine.created[1] and redmine.watched == []


def test_a_requester_with_an_account_watches_instead_of_the_relay_account(offline_site, redmine):
    """jsmith named in a form is recorded as a watcher through his own account: Redmine
    notifies him itself, the relay would only repeat it."""
    settings = settings_for(offline_site, redmine.url)
    assert deliver(settings, form_mail("Printer jammed", JSMITH["mail"])).outcome.decision == "filed"
    created = redmine.created[0]
    assert RELAY["id"] not in created.get("watcher_user_ids", [])
    assert (101, RELAY["id"]) not in redmine.watched


def test_a_relay_account_that_does_not_exist_is_a_config_error(offline_site, redmine):
    settings = settings_for(offline_site, redmine.url, extra=RELAY_ON + 'user = "nobody"\n')
    result = deliver(settings, form_mail("Printer jammed"))
    assert result.status == 75 and redmine.created == []
    line = offline_site.last_log_line()
    assert "fault=config" in line and "relay.user" in line and "'nobody' does not exist" in line, line


def test_the_attempt_that_finds_the_issue_adds_the_relay_watcher(offline_site, redmine):
    """The answer to the create is lost (the issue exists, the delivery exits 75): the
    retry finds the issue and makes sure the relay account watches it."""
    with FaultProxy(redmine.url) as proxy:
        settings = settings_for(offline_site, proxy.url)
        mail = form_mail("Printer jammed")
        proxy.mode = "drop"
        assert deliver(settings, mail).status == 75
        assert len(redmine.created) == 1 and redmine.watched == []
        proxy.mode = "pass"
        again = deliver(settings, mail)
    assert (again.status, again.outcome.decision, again.outcome.issue_id) == (0, "duplicate", 101)
    assert len(redmine.created) == 1
    assert redmine.watched == [(101, RELAY["id"])]
