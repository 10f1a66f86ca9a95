"""``m2r-deliver check`` with ``[outgoing] from`` (bounces of our own mail become private
notes written as the key's user), against the test-bed Redmine: the ``gateway`` key's user
(a Reporter, without "Set notes as private") fails, since Redmine would file those notes
public; jsmith (a Manager) passes; an administrator's key needs no look; without
``[outgoing] from`` nothing is asked."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

from support.faultproxy import FaultProxy
from support.paths import console_script

FROM = '[outgoing]\nfrom = "Helpdesk <request@example.org>"\n'
OPS_ROUTE = '\n[[route]]\nto = "ops@example.org"\nproject = "ops"\n'


def check(site, testbed, key: str, extra: str, url: str | None = None) -> tuple[int, list[str]]:
    site.key_file.write_text(testbed.info[key])
    site.write_config(extra, url=url)
    done = subprocess.run([console_script(), "check", "--config", str(site.config_path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120,
                          env={"HOME": str(site.home), "PATH": "/usr/bin:/bin"})
    assert done.stderr == ""
    return done.returncode, [line for line in done.stdout.splitlines() if "bounce notes" in line]


def test_a_key_whose_user_may_not_set_notes_private_fails(site, testbed):
    status, lines = check(site, testbed, "gateway_key", FROM)
    assert lines == ["FAIL bounce notes in project 'helpdesk' would be public: the key's user 'gateway' may not set "
                     "notes private there, and Redmine then files a private note public (the requester's address "
                     "and the diagnostic); give it a role with Set notes as private"]
    assert status == 1


def test_a_key_whose_user_may_set_notes_private_passes_in_each_served_project(site, testbed):
    status, lines = check(site, testbed, "jsmith_key", FROM + OPS_ROUTE)
    assert lines == [f"ok   bounce notes in project {project!r} are private: the key's user 'jsmith' may set notes "
                     "private through role 'Manager'" for project in ("helpdesk", "ops")]


def test_each_served_project_is_looked_at(site, testbed):
    status, lines = check(site, testbed, "gateway_key", FROM + OPS_ROUTE)
    assert [line.split(" would be public")[0] for line in lines] == [
        "FAIL bounce notes in project 'helpdesk'", "FAIL bounce notes in project 'ops'"]
    assert status == 1


def test_an_administrators_key_and_a_site_that_sends_no_mail_are_not_asked(site, testbed):
    assert check(site, testbed, "admin_key", FROM)[1] == []
    assert check(site, testbed, "gateway_key", "")[1] == []


def test_a_role_in_several_served_projects_is_read_once(site, testbed):
    """The gateway user is a Reporter in both served projects: its role's permissions are
    one request, not one per project."""
    with FaultProxy(testbed.url) as proxy:
        status, lines = check(site, testbed, "gateway_key", FROM + OPS_ROUTE, url=proxy.url)
    assert status == 1 and len(lines) == 2
    reads = Counter(path.split("?")[0] for method, path, _ in proxy.seen
                    if method == "GET" and re.fullmatch(r"/roles/\d+\.json", path.split("?")[0]))
    assert reads and set(reads.values()) == {1}, reads
