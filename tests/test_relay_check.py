"""``m2r-deliver check`` with ``[relay] enabled``, against the test-bed Redmine's accounts:
``relay`` (a Reporter, notified only of what it watches) passes; ``relayleaky`` (a
Developer, allowed View private notes) fails naming the role and project; a login that
does not exist fails, and so does a key that cannot look users up."""

from __future__ import annotations

import subprocess

from support.paths import console_script

RELAY = '[outgoing]\nfrom = "Helpdesk <request@example.org>"\n\n[relay]\nenabled = true\n'


def check(site, extra: str, url: str | None = None) -> tuple[int, list[str]]:
    site.write_config(RELAY + extra, url=url)
    done = subprocess.run([console_script(), "check", "--config", str(site.config_path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120,
                          env={"HOME": str(site.home), "PATH": "/usr/bin:/bin"})
    assert done.stderr == ""
    return done.returncode, [line for line in done.stdout.splitlines()
                             if "[relay] user" in line or "relayed notes" in line]


def test_the_relay_account_passes(site, testbed):
    status, lines = check(site, "")
    relay = testbed.info["users"]["relay"]
    assert lines[1:] == [f"ok   [relay] user 'relay' is #{relay['id']}, active, notified at {relay['mail']}",
                         "ok   [relay] user 'relay' cannot view private notes in 'helpdesk'"]
    assert lines[0].startswith("ok   [outgoing]: relayed notes are handed to the sendmail program "), lines
    assert status == 0


def test_the_relay_template_is_named(site, testbed):
    (site.home / "relay.txt").write_text("{author} wrote on #{issue_id}:\n\n{notes}\n")
    site.write_config(RELAY + 'template = "relay.txt"\n')
    done = subprocess.run([console_script(), "check", "--config", str(site.config_path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120,
                          env={"HOME": str(site.home), "PATH": "/usr/bin:/bin"})
    assert f"ok   [relay] template {site.home / 'relay.txt'} is valid" in done.stdout.splitlines(), done.stdout


def test_an_account_that_may_view_private_notes_fails_naming_role_and_project(site, testbed):
    status, lines = check(site, 'user = "relayleaky"\n\n[[route]]\nto = "ops@example.org"\nproject = "ops"\n')
    assert status == 1
    assert [line for line in lines if line.startswith("FAIL")] == [
        f"FAIL [relay] user 'relayleaky' may view private notes in project {project!r} through role 'Developer': "
        "the relay would mail private notes to requesters; give the account a role without View private notes"
        for project in ("helpdesk", "ops")]


def test_a_relay_login_that_does_not_exist_fails(site, token):
    status, lines = check(site, f'user = "norelay{token}"\n')
    assert status == 1
    assert lines[1:] == [f"FAIL [relay] user 'norelay{token}' does not exist in Redmine: create it (a Reporter in the "
                     "served projects, notified only of the issues it watches, with an address that reaches the "
                     "gateway)"]


def test_a_key_that_cannot_look_users_up_fails_saying_so(site, testbed):
    site.key_file.write_text(testbed.info["gateway_key"])
    status, lines = check(site, "")
    assert status == 1
    [line] = lines[1:]
    assert line.startswith("FAIL [relay] user 'relay': a key that is not an administrator's cannot look the account "
                           "up"), line


def test_a_role_whose_permissions_cannot_be_read_is_a_warning_saying_what_was_not_checked(offline_site):
    """The small fake Redmine answers 404 for the relay account's role (Reporter, #5)."""
    from support.fakeredmine import RELAY, FakeRedmine

    with FakeRedmine() as redmine:
        _, lines = check(offline_site, "", url=redmine.url)
    assert lines[1] == f"ok   [relay] user 'relay' is #{RELAY['id']}, active, notified at relay@redmine.test"
    assert lines[2].startswith("warn [relay] user 'relay': whether role 'Reporter' may view private notes in project "
                               "'helpdesk' is not checked: "), lines
    assert len(lines) == 3, lines
