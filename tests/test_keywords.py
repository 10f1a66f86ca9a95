"""Keywords in the body (``Priority: High``), read as Redmine's mail handler reads them:
found offline, then applied in the real Redmine."""

from __future__ import annotations

import base64

import pytest

from m2r_deliver import keywords
from m2r_deliver.config import load
from m2r_deliver.errors import ConfigError
from m2r_deliver.keyed import custom_field_value
from support.mails import sjis_to_jis
from support.testbed import filed_issue, mail_text

pytestmark = pytest.mark.patient

ALL = frozenset({"tracker", "status", "priority", "category", "assigned_to", "fixed_version", "start_date",
                 "due_date", "estimated_hours", "done_ratio", "private", "parent_issue", "custom_fields"})


def found(text: str, allowed=ALL, project_given=True) -> dict:
    keys, _ = keywords.find(text, frozenset(allowed), project_given=project_given)
    return {(k.name or k.attribute): k.value for k in keys}


def test_every_label_names_one_attribute():
    seen: dict[str, str] = {}
    for language, labels in keywords.LABELS.items():
        for attribute, label in labels.items():
            folded = " ".join(label.split()).casefold()
            assert seen.setdefault(folded, attribute) == attribute, (language, label)
    for language in ("attribute", "ja"):
        assert set(keywords.LABELS[language]) == set(keywords.ATTRIBUTE_OF.values())


def test_labels_in_any_supported_language_and_any_case():
    text = ("Tracker: Bug\nPRIORITÉ: Urgent\n担当者: jsmith\nfixed version: 1.0\nTarget Version: 2.0\n"
            "開始日: 2026-01-05\nFecha fin: 2026-01-31\n予定工数: 1h30\n% Done: 40\nプライベート: はい\n"
            "Parent task: #12\nКатегория: Сеть\nStatus : Resolved")
    assert found(text) == {
        "tracker": "Bug", "priority": "Urgent", "assigned_to": "jsmith", "fixed_version": "1.0",
        "start_date": "2026-01-05", "due_date": "2026-01-31", "estimated_hours": 1.5, "done_ratio": 40,
        "private": True, "parent_issue": 12, "category": "Сеть", "status": "Resolved",
    }


def test_only_allowed_keywords_and_the_first_of_each():
    text = "Priority: High\nPriority: Low\nTracker: Bug\n  Status: Resolved\n> Category: x"
    assert found(text, {"priority"}) == {"priority": "High"}
    assert found(text, set()) == {}


def test_project_may_be_named_when_no_default_is_given():
    assert found("Project: ops", set(), project_given=False) == {"project": "ops"}
    assert found("Project: ops", set(), project_given=True) == {}


def test_values_of_the_wrong_form_are_reported_and_not_taken():
    keys, warnings = keywords.find("Start date: some day\nDone ratio: 55\nPrivate: maybe\nEstimated hours: lots",
                                   ALL, project_given=True)
    assert keys == ()
    assert warnings == ("start_date 'some day' is not a date (YYYY-MM-DD): ignored",
                        "done_ratio '55' is not 0, 10, … or 100: ignored", "private 'maybe' is not yes or no: ignored",
                        "estimated_hours 'lots' is not a number of hours: ignored")


def test_custom_fields_by_name_or_all():
    text = "Target host: web01\nSearchable field: x\nhttp://example.org/a:b"
    keys, _ = keywords.find(text, frozenset({"custom_field:target_host"}), project_given=True)
    assert [(k.name, k.value, k.speculative) for k in keys] == [("Target host", "web01", False)]
    keys, _ = keywords.find(text, frozenset({"custom_fields"}), project_given=True)
    assert [(k.name, k.speculative) for k in keys] == [("Target host", True), ("Searchable field", True), ("http", True)]


def test_hours_as_redmine_reads_them():
    assert [keywords.hours(t) for t in ("2.5", "2,5", "3h", "2:30", "2h30", "2 hours 15 min", "45m", "x", "")] == [
        2.5, 2.5, 3.0, 2.5, 2.5, 2.25, 0.75, None, None]


def test_applied_lines_leave_no_gap():
    text = "Hello\n\nPriority: High\nTracker: Bug\n\nThanks\nStatus: New"
    assert keywords.without_lines(text, {2, 3, 6}) == "Hello\n\nThanks"


def test_custom_field_values_as_redmine_reads_them():
    listed = {"id": 9, "multiple": False, "values": ["PostgreSQL", "MySQL"]}
    assert custom_field_value(listed, "postgresql") == "PostgreSQL"
    assert custom_field_value(listed, "Oracle") is None
    several = {"id": 9, "multiple": True, "values": ["Linux", "Windows", "Mac OS X"]}
    assert custom_field_value(several, "Mac OS X  ,windows") == ["Mac OS X", "Windows"]
    assert custom_field_value({"id": 3, "multiple": False, "values": []}, "free text") == "free text"


def settings_with(tmp_path, allow):
    path = tmp_path / "c.toml"
    path.write_text(f'[redmine]\nurl = "http://r"\nkey = "k"\n[issue]\nallow_override = {allow}\n')
    path.chmod(0o600)
    return load(str(path), {}, {})


def test_allow_override_spellings(tmp_path):
    settings = settings_with(tmp_path, '["Tracker, is_private", "target version", "custom_field:Target host"]')
    assert settings.allow_override == {"tracker", "private", "fixed_version", "custom_field:target_host"}
    assert {"project", "parent_issue", "custom_fields"} <= settings_with(tmp_path, '["all"]').allow_override
    with pytest.raises(ConfigError, match="prority.*custom_field:NAME"):
        settings_with(tmp_path, '["prority"]')


def jis_mail(token: str, body: str) -> bytes:
    subject = base64.b64encode(sjis_to_jis(f"キーワード {token}".encode("cp932"))).decode()
    head = (f"From: taro@example.org\r\nTo: request@example.org\r\nSubject: =?ISO-2022-JP?B?{subject}?=\r\n"
            f"Message-ID: <{token}@jis.example.org>\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n")
    return head.encode() + b"\r\n".join(sjis_to_jis(line.encode("cp932")) for line in body.split("\n"))


def test_japanese_keywords_are_applied_and_taken_out(site, testbed, token):
    body = ("お世話になっております。\nプリンタが動きません。\n\n"
            "トラッカー: Feature\n優先度: High\nカテゴリ: Printers\n担当者: jsmith\n対象バージョン: 1.0\n"
            "開始日: 2026-01-05\n期日: 2026-01-31\n予定工数: 3\n進捗率: 20\nプライベート: はい\n\nよろしくお願いします。")
    issue = filed_issue(site.deliver(jis_mail(token, body), "--allow-override", "all"), testbed)
    assert issue["tracker"]["name"] == "Feature" and issue["priority"]["name"] == "High"
    assert issue["category"]["name"] == "Printers" and issue["assigned_to"]["name"] == "John Smith"
    assert issue["fixed_version"]["name"] == "1.0" and issue["is_private"] is True
    assert (issue["start_date"], issue["due_date"]) == ("2026-01-05", "2026-01-31")
    assert issue["estimated_hours"] == 3 and issue["done_ratio"] == 20
    assert mail_text(issue) == "お世話になっております。\nプリンタが動きません。\n\nよろしくお願いします。"
    assert "warnings=" not in site.last_log_line()


def test_keywords_not_allowed_stay_text(site, testbed, token):
    body = f"Priority: Urgent\nTracker: Bug {token}"
    issue = filed_issue(site.deliver(jis_mail(token, body), "--allow-override", "priority"), testbed)
    assert issue["priority"]["name"] == "Urgent" and issue["tracker"]["name"] == "Support"
    assert mail_text(issue) == f"Tracker: Bug {token}"


def test_unknown_value_is_logged_and_the_default_kept(site, testbed, token):
    site.write_config(issue='project = "helpdesk"\ntracker = "Support"\npriority = "Low"')
    issue = filed_issue(site.deliver(jis_mail(token, "Printer broken.\nPriority: Supreme\n優先度: Extreme"),
                                     "--allow-override", "priority"), testbed)
    assert issue["priority"]["name"] == "Low"
    assert "warnings=\"priority 'Supreme' unknown: ignored\"" in site.last_log_line()
    assert mail_text(issue) == "Printer broken.\nPriority: Supreme\n優先度: Extreme"


def test_custom_field_keyword(site, testbed, token):
    body = f"Disk full.\nTarget host: web01-{token}\nNote: call me"
    issue = filed_issue(site.deliver(jis_mail(token, body), "--allow-override", "custom_fields"), testbed)
    values = {f["name"]: f.get("value") for f in issue["custom_fields"]}
    assert values["Target host"] == f"web01-{token}"
    assert mail_text(issue) == "Disk full.\nNote: call me"
    assert "warnings=" not in site.last_log_line()  # "Note" is no custom field: ordinary text


def test_value_redmine_refuses_costs_only_that_keyword(site, testbed, token):
    body = "Please look.\nPriority: High\nParent task: 99999999"
    issue = filed_issue(site.deliver(jis_mail(token, body), "--allow-override", "all"), testbed)
    assert issue["priority"]["name"] == "High" and issue.get("parent") is None
    assert mail_text(issue) == "Please look.\nParent task: 99999999"
    assert "parent_issue 99999999 refused by Redmine (creating the issue: 422 Parent task is invalid)" in \
        site.last_log_line()


def test_check_reports_a_misspelt_custom_field_override(site, testbed):
    import subprocess

    from support.paths import console_script

    site.write_config(issue='project = "helpdesk"\nallow_override = ["custom_field:Target host", "custom_field:Targt"]')
    proc = subprocess.run([console_script(), "check", "--config", str(site.config_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert "ok   allow_override: custom field 'target_host' exists" in proc.stdout.splitlines()
    assert "FAIL allow_override: no issue custom field is named 'targt'" in proc.stdout.splitlines()
