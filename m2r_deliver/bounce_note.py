"""A bounce of our own mail (own_bounce.py) filed as a private note on its issue, as the
API key's own user: nobody the bounce names is acted as. An issue that is gone, or whose
project is closed or archived, drops the bounce; it never becomes an issue.

Exactly once like every note: the ledger claims the bounce mail, and an attempt whose
outcome is unknown looks for the same text written since then before adding it again.
"""

from __future__ import annotations


from .filing import Site, dropped, issue_url
from .mail import Mail
from .plan import Outcome, Plan
from .redmine.issues import add_note, find_note, issue_state
from .states import Decision
from .valueclass import replace

RULE = "own_bounce"


def file_bounce_note(plan: Plan, mail: Mail, site: Site, dry_run: bool) -> tuple[Outcome, Plan]:
    settings, issue_id = site.settings, plan.issue_id
    assert issue_id is not None, "own_bounce plans name their issue"
    issue = issue_state(site.connection, issue_id)
    if issue is None:
        return dropped(plan, mail, settings, RULE, f"bounce of our mail about issue #{issue_id}, which does not "
                       "exist (or the key's user cannot see it)", dry_run)
    if site.directory.project(issue.project_id)["status"] != 1:
        return dropped(plan, mail, settings, RULE, f"bounce of our mail about issue #{issue_id}, which is in a "
                       "closed or archived project", dry_run)
    api_fields = {"notes": plan.notes, "private_notes": True}
    author = site.directory.me().login
    if dry_run:
        return Outcome(Decision.PLANNED, issue_id, author=author), replace(plan, resolved={"private_notes": True,
                                                                                              "as": author})
    attempt = site.attempt
    if attempt.look_first and attempt.since is not None:
        if find_note(site.connection, issue_id, plan.notes, attempt.since):
            return Outcome(Decision.DUPLICATE, issue_id, issue_url(settings, issue_id),
                           note=f"duplicate of a note on #{issue_id}"), plan
        attempt.looked = True
    attempt.sent = True
    add_note(site.connection, issue_id, api_fields, [])
    return Outcome(Decision.FILED, issue_id, issue_url(settings, issue_id), author), plan
