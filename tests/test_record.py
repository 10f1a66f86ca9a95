"""The record stage in-process, without Redmine: what the ledger keeps for a dropped
mail, for a failure that is our own bug, and for a marker filter Redmine ignores."""

import json

import pytest

from m2r_deliver import guards, pipeline
from m2r_deliver.config import load
from m2r_deliver.errors import ConfigError
from m2r_deliver.ledger import Ledger
from m2r_deliver.states import RowState
from support.fakeserver import answering
from support.mails import make_mail
from support.inprocess import delivered


def settings_of(site, state=""):
    if state:
        site.config_path.write_text(site.config_path.read_text().replace("[state]\n", f"[state]\n{state}\n"))
    return load(str(site.config_path), {}, {"HOME": str(site.home)})


def deliver(settings, data):
    return delivered(settings, data).result


def ledger_row(settings, key):
    with Ledger.open(settings.state_dir, keep_for=settings.keep_for, stale_after=300) as ledger:
        return ledger.get(key)


def test_a_dropped_mail_is_recorded_and_a_copy_is_a_duplicate(offline_site, monkeypatch):
    monkeypatch.setattr(guards, "run", lambda mail, settings: guards.Verdict("auto_reply", "X-Autoreply: yes"))
    settings = settings_of(offline_site)
    mail = make_mail("Out of office", msgid="ooo-reply-1@example.org")
    first = deliver(settings, mail)
    assert (first.status, first.outcome.decision) == (0, "dropped")
    row = ledger_row(settings, "<ooo-reply-1@example.org>")
    assert (row.state, row.guard) == (RowState.DROPPED, "auto_reply")
    again = deliver(settings, mail)
    assert (again.status, again.outcome.decision) == (0, "duplicate")
    assert again.outcome.note == "duplicate of a mail dropped by auto_reply"


def test_our_own_bug_is_retried_then_quarantined_not_looped_forever(offline_site, monkeypatch):
    def broken(received):
        raise RuntimeError("a bug in the parser")

    monkeypatch.setattr(pipeline, "parse", broken)
    settings = settings_of(offline_site, 'retry_for = "0s"')
    mail = make_mail("crashes the parser", msgid="crash-1@example.org")
    result = deliver(settings, mail)
    assert result.status == 0 and result.outcome.decision == "quarantined"
    assert result.failure.fault == "ours" and "a bug in the parser" in result.failure.reason
    row = ledger_row(settings, "<crash-1@example.org>")
    assert row.state == RowState.QUARANTINED
    assert open(row.quarantine, "rb").read() == mail


def test_a_marker_filter_redmine_ignores_is_a_config_error(offline_site):
    """Redmine skips a filter the key cannot use and answers with every issue; taking that
    for "not filed yet" would file duplicates across hosts without anyone noticing."""
    from m2r_deliver import redmine as api
    every_issue = json.dumps({"issues": [{"id": 7, "custom_fields": [{"id": 1, "value": None}]}],
                              "total_count": 1}).encode()
    with answering(200, every_issue) as (url, seen):
        settings = settings_of(offline_site)
        connection = api.connect(type(settings)(url=url, key="k"))
        with pytest.raises(ConfigError) as info:
            api.find_by_marker(connection, 1, "<a@b.example>")
    assert "ignored the filter on custom field #1" in info.value.reason
    assert any("cf_1" in path and "op%5Bcf_1%5D=%3D" in path for _, path in seen)
