"""Who files the issue, against the real test-bed Redmine: the sender's own account, the
fallback, the three unknown_user actions, permissions, forged senders, and the requester
of a web form. Users, groups and projects a test needs are made with unique names."""

import json

from support.mails import make_mail
from support.testbed import (created, filed_issue_id, make_issue, make_project, make_user, notification_about,
                          notifications, wait_for)

FORM_CONFIG = ('[sender]\nfallback_user = "gateway"\nrequester_labels = ["依頼者メール", "Requester e-mail"]\n'
               'requester_field = "Requester e-mail"\n'
               '[form]\nsenders = ["request@example.org"]\nsubject = "{申請種別}: {件名}"\n'
               'fields = { "申請種別" = "category", "対象" = "cf:Target host" }\n')


def users(testbed):
    return testbed.info["users"]


def issue_of(result, testbed):
    return testbed.issue(filed_issue_id(result), include="watchers,journals")


def requester_cf(issue):
    return next(f.get("value") for f in issue["custom_fields"] if f["name"] == "Requester e-mail")


def test_a_users_mail_is_authored_by_that_user_and_cc_watches(site, testbed, token):
    mail = make_mail(f"VPN broken {token}", sender="John Smith <JSmith@example.net>", to="helpdesk@example.org",
                     headers={"Cc": "Dave Lopes <dlopes@example.net>, stranger@example.org"})
    issue = issue_of(site.deliver(mail), testbed)
    assert issue["author"]["id"] == users(testbed)["jsmith"]["id"]
    assert users(testbed)["dlopes"]["id"] in [w["id"] for w in issue["watchers"]]
    assert issue["description"] == "The printer says PC LOAD LETTER.\r\nPlease help."  # no requester line
    assert "author=jsmith" in site.last_log_line()


def test_without_an_admin_key_everything_is_filed_as_the_keys_user(site, testbed, token):
    site.key_file.write_text(testbed.info["gateway_key"])
    issue = issue_of(site.deliver(make_mail(f"as gateway {token}", sender="jsmith@example.net")), testbed)
    assert issue["author"]["id"] == users(testbed)["gateway"]["id"]
    assert issue["description"].startswith("Requester: jsmith@example.net\r\n\r\n")


def test_unknown_user_accept_files_as_the_keys_user_and_records_the_sender(site, testbed, token):
    """Worked example 1 in docs/guide.md (Who files the issue)."""
    site.write_config('[sender]\nrequester_field = "Requester e-mail"\n')
    issue = issue_of(site.deliver(make_mail(f"accept {token}", sender=f"Taro Yamada <taro.{token}@example.org>")),
                     testbed)
    assert issue["author"]["id"] == users(testbed)["admin"]["id"]
    assert requester_cf(issue) == f"taro.{token}@example.org"
    assert issue["description"].startswith(f"Requester: Taro Yamada <taro.{token}@example.org>\r\n\r\n")


def test_unknown_user_accept_with_a_fallback_user(site, testbed, token):
    site.write_config('[sender]\nfallback_user = "gateway"\nrequester_header = "依頼者: {addr}"\n')
    issue = issue_of(site.deliver(make_mail(f"fallback {token}", sender=f"taro.{token}@example.org")), testbed)
    assert issue["author"]["id"] == users(testbed)["gateway"]["id"]
    assert issue["description"].startswith(f"依頼者: taro.{token}@example.org\r\n\r\n")
    assert "no Redmine account" in site.deliver(make_mail(f"fallback {token}"), "--dry-run").stdout


def test_unknown_user_ignore_drops_the_mail(site, testbed, token):
    """Worked example 2 in docs/guide.md (Who files the issue)."""
    result = site.deliver(make_mail(f"ignored {token}", sender=f"taro.{token}@example.org"), "--unknown-user", "ignore")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    line = site.last_log_line()
    assert "decision=dropped" in line and "guard=unknown_user" in line and "no Redmine account" in line
    assert testbed.issues_with_subject(f"ignored {token}") == []
    issue = issue_of(site.deliver(make_mail(f"known {token}", sender="dlopes@example.net"), "--unknown-user", "ignore"),
                     testbed)
    assert issue["author"]["id"] == users(testbed)["dlopes"]["id"]


def test_unknown_user_create_makes_the_account_like_redmine(site, testbed, token):
    """Worked example 3 in docs/guide.md (Who files the issue): two senders, one with the defaults, one with
    --default-group, --no-account-notice and --no-notification."""
    created(testbed, "/groups.json", {"group": {"name": f"mail-{token}"}}, "group")
    plain, quiet = f"hanako.{token}@example.org", f"jiro.{token}@example.org"
    first = issue_of(site.deliver(make_mail(f"create {token}", sender=f"Hanako Suzuki <{plain}>"),
                                  "--unknown-user", "create"), testbed)
    second = issue_of(site.deliver(make_mail(f"create quiet {token}", sender=f"山田 次郎 <{quiet}>"),
                                   "--unknown-user", "create", "--default-group", f"mail-{token}",
                                   "--no-account-notice", "--no-notification"), testbed)
    hanako = testbed.get(f"/users/{first['author']['id']}.json", include="groups")["user"]
    jiro = testbed.get(f"/users/{second['author']['id']}.json", include="groups")["user"]
    assert (hanako["login"], hanako["mail"], hanako["firstname"], hanako["lastname"]) == (plain, plain, "Hanako", "Suzuki")
    assert (jiro["login"], jiro["firstname"], jiro["lastname"], jiro["status"]) == (quiet, "山田", "次郎", 1)
    assert [g["name"] for g in jiro["groups"]] == [f"mail-{token}"] and hanako["groups"] == []
    assert "Requester" not in first["description"]
    # Mail: Hanako gets her account and, as a watcher of a new issue, its notification;
    # Jiro (no account notice, mail_notification none) gets neither.
    watched = make_issue(testbed, f"watched {token}", watcher_user_ids=[hanako["id"], jiro["id"]])
    wait_for(lambda: notification_about(testbed, plain, watched), "Hanako's notification")
    assert any("account activation" in (m["Subject"] or "") for m in notifications(testbed, plain))
    assert notifications(testbed, quiet) == []
    again = issue_of(site.deliver(make_mail(f"create again {token}", sender=plain), "--unknown-user", "create"),
                     testbed)
    assert again["author"]["id"] == hanako["id"]  # found now, not created twice


def test_locked_user_and_user_without_permission_fall_back(site, testbed, token):
    project = make_project(testbed, f"p{token}", public=False)
    site.write_config('[sender]\nfallback_user = "gateway"\n', issue='project = "helpdesk"\ntracker = "Support"')
    locked = issue_of(site.deliver(make_mail(f"locked {token}", sender="locked@example.net")), testbed)
    assert locked["author"]["id"] == users(testbed)["gateway"]["id"]
    assert locked["description"].startswith("Requester: locked@example.net")
    # outsider is in no project: the private project falls back to the key's user
    site.write_config(issue=f'project = "{project["identifier"]}"\ntracker = "Support"')
    checked = site.deliver(make_mail(f"private {token}", sender="outsider@example.net"))
    assert testbed.issue(filed_issue_id(checked))["author"]["id"] == users(testbed)["admin"]["id"]
    assert "lacks add_issues" in site.deliver(make_mail(f"private {token}", sender="outsider@example.net"),
                                              "--dry-run").stdout
    # without the check, Redmine itself refuses outsider (403) and the fallback files it
    unchecked = site.deliver(make_mail(f"unchecked {token}", sender="outsider@example.net"), "--no-permission-check")
    assert testbed.issue(filed_issue_id(unchecked))["author"]["id"] == users(testbed)["admin"]["id"]
    # a member of the public helpdesk project files as themself; a non-member of it too
    # (Redmine's non-member role may add issues there)
    site.write_config()
    public = issue_of(site.deliver(make_mail(f"public {token}", sender="outsider@example.net")), testbed)
    assert public["author"]["id"] == users(testbed)["outsider"]["id"]


def test_permission_comes_from_roles_in_the_project(site, testbed, token):
    project = make_project(testbed, f"r{token}", public=False)
    member = make_user(testbed, f"m{token}", "Mia Member")
    created(testbed, f"/projects/{project['id']}/memberships.json",
            {"membership": {"user_id": member["id"], "role_ids": [testbed.info["roles"]["Reporter"]]}}, "membership")
    site.write_config(issue=f'project = "{project["identifier"]}"\ntracker = "Support"')
    issue = issue_of(site.deliver(make_mail(f"member {token}", sender=member["mail"])), testbed)
    assert issue["author"]["id"] == member["id"]


def test_a_forged_admin_from_is_not_filed_as_the_admin(site, testbed, token):
    site.write_config('[sender]\nfallback_user = "gateway"\nauthserv_id = "mx.m2r.test"\n')
    forged = make_mail(f"forged {token}", sender="Redmine Admin <admin@redmine.test>", headers={
        "Authentication-Results": "mx.m2r.test; dkim=fail header.d=redmine.test; spf=fail smtp.mailfrom=admin@redmine.test"})
    # The plan first: once the mail is filed, a dry run answers "duplicate" instead.
    assert "not authenticated" in site.deliver(forged, "--dry-run").stdout
    issue = issue_of(site.deliver(forged), testbed)
    assert issue["author"]["id"] == users(testbed)["gateway"]["id"]
    planted = make_mail(f"planted {token}", sender="admin@redmine.test", headers={
        "Authentication-Results": "evil.example; dkim=pass header.d=redmine.test"})
    assert issue_of(site.deliver(planted), testbed)["author"]["id"] == users(testbed)["gateway"]["id"]
    genuine = make_mail(f"genuine {token}", sender="jsmith@example.net", headers={
        "Authentication-Results": "mx.m2r.test; spf=pass smtp.mailfrom=bounces@example.net; dkim=none"})
    assert issue_of(site.deliver(genuine), testbed)["author"]["id"] == users(testbed)["jsmith"]["id"]


def test_the_web_form_is_filed_by_the_fallback_with_the_requester_recorded(site, testbed, token):
    site.write_config(FORM_CONFIG)
    body = (f"依頼者メール: taro.{token}@example.org\n申請種別: Network\n対象: vpn1.example.org\n件名: VPN 接続できない\n\n"
            "詳細: 朝から接続できません。")
    issue = issue_of(site.deliver(make_mail("Confluence form", body, sender="request@example.org")), testbed)
    assert issue["author"]["id"] == users(testbed)["gateway"]["id"]
    assert requester_cf(issue) == f"taro.{token}@example.org"
    assert issue["subject"] == "Network: VPN 接続できない"
    assert issue["category"]["name"] == "Network"
    assert next(f["value"] for f in issue["custom_fields"] if f["name"] == "Target host") == "vpn1.example.org"
    assert issue["description"].replace("\r\n", "\n") == f"Requester: taro.{token}@example.org\n\n{body}"


def test_a_form_requester_with_an_account_files_the_issue(site, testbed, token):
    site.write_config(FORM_CONFIG)
    body = f"依頼者メール: Dave <dlopes@example.net>\n申請種別: Printers\n件名: toner {token}"
    issue = issue_of(site.deliver(make_mail("Confluence form", body, sender="request@example.org")), testbed)
    assert issue["author"]["id"] == users(testbed)["dlopes"]["id"]
    assert requester_cf(issue) == "dlopes@example.net" and issue["category"]["name"] == "Printers"
    # other senders' fields are not read when [form] senders is set
    issue = issue_of(site.deliver(make_mail(f"not a form {token}", body, sender=f"x.{token}@example.org")), testbed)
    assert requester_cf(issue) == f"x.{token}@example.org"
    # without [form] senders every mail's requester field is recorded, and the requester
    # with an account only watches: a body line must not make anyone its author
    site.write_config(FORM_CONFIG.split("[form]")[0])
    issue = issue_of(site.deliver(make_mail(f"no form senders {token}", body, sender=f"x.{token}@example.org")), testbed)
    assert issue["author"]["id"] == users(testbed)["gateway"]["id"]
    assert requester_cf(issue) == "dlopes@example.net"
    assert [w["id"] for w in issue["watchers"]] == [users(testbed)["dlopes"]["id"]]
    assert "Requester" not in issue["description"]


def test_dry_run_shows_whom_it_would_file_as_and_creates_nothing(site, testbed, token):
    result = site.deliver(make_mail(f"dry {token}", sender=f"new.{token}@example.org"), "--unknown-user", "create",
                          "--dry-run")
    plan = json.loads(result.stdout)
    assert plan["author"] == {"addr": f"new.{token}@example.org", "name": "", "source": "From"}
    assert plan["resolved"]["as"] == f"new.{token}@example.org" and "not created: dry run" in plan["resolved"]["why"]
    assert testbed.get("/users.json", name=f"new.{token}@example.org", status="")["users"] == []


def check(site):
    import subprocess
    from support.paths import console_script
    proc = subprocess.run([console_script(), "check", "--config", str(site.config_path)], capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout.splitlines()


def test_check_reports_the_identity_setup(site, testbed, token):
    code, lines = check(site)
    assert code == 0 and "warn no [sender] authserv_id: any sender can act as any Redmine user by forging From" in lines
    site.write_config('[sender]\nfallback_user = "locked"\ndefault_group = "no-such-group-' + token + '"\n'
                      'authserv_id = "mx.m2r.test"\nrequester_field = "Requester e-mail"\n'
                      '[form]\nfields = { "x" = "cf:No such field" }\n')
    code, lines = check(site)
    assert code == 1
    assert "ok   From addresses are trusted only with a pass from mx.m2r.test" in lines
    assert "FAIL [sender] fallback_user 'locked' is locked" in lines
    assert f"FAIL [sender] default_group 'no-such-group-{token}' not found in Redmine" in lines
    assert any(line.startswith("FAIL custom field 'No such field' not found") for line in lines)
    assert not any("'Requester e-mail'" in line for line in lines)
    site.write_config('[sender]\nunknown_user = "ignore"\n')
    site.key_file.write_text(testbed.info["gateway_key"])
    code, lines = check(site)
    assert ("warn [sender] unknown_user = ignore: no effect without an administrator's key, "
            "every mail is filed as gateway") in lines


def test_a_user_locked_after_being_cached_falls_back_on_redmines_412(site, testbed, token):
    user = make_user(testbed, f"l{token}", "Lena Later")
    first = issue_of(site.deliver(make_mail(f"before lock {token}", sender=user["mail"])), testbed)
    assert first["author"]["id"] == user["id"]  # now cached as active for [state] cache_ttl
    assert testbed.api("PUT", f"/users/{user['id']}.json", json={"user": {"status": 3}}).status_code == 204
    second = issue_of(site.deliver(make_mail(f"after lock {token}", sender=user["mail"])), testbed)
    assert second["author"]["id"] == testbed.info["users"]["admin"]["id"]
    assert second["description"].startswith(f"Requester: {user['mail']}")
