"""The named states are written exactly as their values: in the log line, the ledger and
the --dry-run JSON nothing changes by naming them."""

from __future__ import annotations

import json

import pytest

from m2r_deliver import log, states
from m2r_deliver.errors import EX_OK, EX_TEMPFAIL, RedmineUnavailable, exit_status
from m2r_deliver.ledger import Ledger
from m2r_deliver.plan import Plan

ALL = [member for kind in (states.Action, states.Decision, states.RowState, states.ClaimVerdict, states.Fault,
                           states.Via, states.MailKind, states.Answered) for member in kind]


@pytest.mark.parametrize("member", ALL, ids=str)
def test_a_state_is_written_as_its_value(member):
    assert str(member) == f"{member}" == "%s" % member == member.value
    assert json.dumps(member) == json.dumps(member.value)
    assert log.summary(x=member) == f"x={member.value}"


def test_the_ledger_stores_and_answers_plain_text(tmp_path):
    with Ledger.open(tmp_path, keep_for=60, stale_after=60) as ledger:
        ledger.claim("<a@x>")
        ledger.settle("<a@x>", states.RowState.FILED, issue_id=1)
        stored = ledger.db.execute("SELECT state, typeof(state) FROM deliveries").fetchone()
        assert stored == ("filed", "text")
        assert ledger.counts() == {"filed": 1}


def test_a_plan_prints_its_action_as_text():
    plan = Plan(action=states.Action.NOTE, message_id=None, sender=None)
    assert json.loads(plan.to_json())["action"] == "note"


def test_only_the_released_decisions_let_the_mail_go():
    failure = RedmineUnavailable("down")
    released = {d for d in states.Decision if exit_status(failure, d) == EX_OK}
    assert {str(d) for d in released} == {"filed", "relayed", "duplicate", "dropped", "planned", "quarantined"}
    assert exit_status(failure, None) == EX_TEMPFAIL
