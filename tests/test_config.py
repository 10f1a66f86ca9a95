"""Config validation: every mistake names the file, the key and the reason."""

import pytest

from m2r_deliver.config import load
from m2r_deliver.errors import ConfigError


def write(tmp_path, text, mode=0o600):
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def key_file(tmp_path, mode=0o600):
    path = tmp_path / "key"
    path.write_text("abc123\n")
    path.chmod(mode)
    return path


def test_minimal_file(tmp_path):
    path = write(tmp_path, f'[redmine]\nurl = "https://r.example.org/"\nkey_file = "{key_file(tmp_path)}"\n'
                           '[issue]\nproject = "helpdesk"\nallow_override = ["tracker", "priority"]\n')
    settings = load(str(path), {}, {"HOME": str(tmp_path)})
    assert settings.url == "https://r.example.org"
    assert settings.key == "abc123"
    assert settings.issue == {"project": "helpdesk"}
    assert settings.allow_override == {"tracker", "priority"}
    assert settings.state_dir == tmp_path / ".local/state/m2r-deliver"
    assert settings.timeout == 30


def test_every_mistake_is_reported_at_once(tmp_path):
    path = write(tmp_path, '[redmine]\nurl = "x"\ntimout = 3\n[issue]\nproject = 5\n[colour]\n'
                           '[[route]]\nto = "a@x.org"\nprojct = "ops"\n[[route]]\nproject = "ops"\n')
    with pytest.raises(ConfigError) as info:
        load(str(path), {}, {})
    text = str(info.value)
    assert f"{path}: redmine.timout: unknown key" in text
    assert f"{path}: issue.project: must be a string, not int" in text
    assert f"{path}: [colour]: unknown section" in text
    assert f"{path}: route #1: projct: unknown route field" in text
    assert f"{path}: route #2: has nothing to match on" in text


def test_key_in_a_file_others_can_read_is_refused(tmp_path):
    path = write(tmp_path, '[redmine]\nurl = "https://r"\nkey = "secret"\n', mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load(str(path), {}, {})


def test_key_file_others_can_read_is_refused(tmp_path):
    path = write(tmp_path, f'[redmine]\nurl = "https://r"\nkey_file = "{key_file(tmp_path, 0o640)}"\n', mode=0o644)
    with pytest.raises(ConfigError, match="API key file"):
        load(str(path), {}, {})


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, f'[redmine]\nurl = "https://r"\nkey_file = "{key_file(tmp_path)}"\n[issue]\nproject = "a"\n')
    settings = load(str(path), {"issue": {"project": "b", "tracker": None}, "redmine": {"verify": False}}, {})
    assert settings.issue["project"] == "b" and "tracker" not in settings.issue
    assert settings.verify is False


def test_flags_only_without_a_default_file(tmp_path):
    settings = load(None, {"redmine": {"url": "http://r", "key": "k"}}, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.source is None and settings.key == "k"


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "nope.toml"), {}, {})


def test_bad_toml_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(str(write(tmp_path, "[redmine\n")), {}, {})
    base = f'[redmine]\nurl = "https://r"\nkey_file = "{key_file(tmp_path)}"\n'
    with pytest.raises(ConfigError, match="allow_override"):
        load(str(write(tmp_path, base + '[issue]\nallow_override = ["colour"]\n')), {}, {})
    with pytest.raises(ConfigError, match="unknown_user"):
        load(str(write(tmp_path, base + '[sender]\nunknown_user = "maybe"\n')), {}, {})
    with pytest.raises(ConfigError, match="subject: bad regular expression"):
        load(str(write(tmp_path, base + '[[route]]\nsubject = "(("\nproject = "x"\n')), {}, {})


def test_identity_and_reply_keys(tmp_path):
    base = f'[redmine]\nurl = "https://r"\nkey_file = "{key_file(tmp_path)}"\n'
    path = write(tmp_path, base + '[sender]\nfallback_user = "gateway"\nown_addresses = ["Helpdesk@Example.org"]\n'
                 'authserv_id = "MX.example.org"\nrequester_labels = ["依頼者メール"]\n'
                 'requester_field = "Requester e-mail"\nrequester_header = "依頼者: {name} <{addr}>"\n'
                 '[form]\nsenders = ["request@example.org"]\nsubject = "{申請種別}: {subject}"\n'
                 'fields = { "申請種別" = "category", "対象" = "cf: Target host" }\n'
                 '[reply]\nmissing = "drop"\nclosed = "missing"\ndelimiters = ["^-+ Reply above -+$"]\n'
                 '[mail]\nbody_delimiters_regex = true\n')
    settings = load(str(path), {}, {})
    assert settings.fallback_user == "gateway" and settings.own_addresses == ("helpdesk@example.org",)
    assert settings.authserv_id == "mx.example.org"
    assert settings.form_fields == {"申請種別": "category", "対象": "cf:Target host"}
    assert (settings.reply_missing, settings.reply_closed, settings.body_delimiters_regex) == ("drop", "missing", True)
    defaults = load(str(write(tmp_path, base)), {}, {})
    assert (defaults.reply_missing, defaults.reply_closed, defaults.requester_header) == (
        "new", "note", "Requester: {requester}")


@pytest.mark.parametrize("text,words", [
    ('[reply]\nmissing = "later"\n', "reply.missing: must be one of new, drop"),
    ('[reply]\nclosed = "ignore"\n', "reply.closed: must be one of note, missing"),
    ('[form]\nfields = { "種別" = "colour" }\n', "form.fields: '種別': unknown target 'colour'"),
    ('[form]\nfields = { "種別" = 3 }\n', "form.fields: '種別': must be a string"),
    ('[form]\nsubject = "{unclosed"\n', "form.subject: bad template"),
    ('[sender]\nrequester_header = "From {who}"\n', "sender.requester_header: unknown field(s)"),
    ('[sender]\nown_addresses = [1]\n', "sender.own_addresses: must be a list of strings"),
    ('[mail]\nbody_delimiters_regex = true\nbody_delimiters = ["(("]\n', "mail.body_delimiters: bad regular expression"),
])
def test_identity_mistakes_name_the_key(tmp_path, text, words):
    path = write(tmp_path, f'[redmine]\nurl = "https://r"\nkey_file = "{key_file(tmp_path)}"\n' + text)
    with pytest.raises(ConfigError) as info:
        load(str(path), {}, {})
    assert words in str(info.value) and str(path) in str(info.value)


def test_state_durations_and_limits(tmp_path):
    base = f'[redmine]\nurl = "https://r.example.org/"\nkey_file = "{key_file(tmp_path)}"\n'
    settings = load(str(write(tmp_path, base)), {}, {"HOME": str(tmp_path)})
    assert (settings.retry_for, settings.max_attempts, settings.keep_for) == (5 * 86400, 3, 30 * 86400)
    assert settings.marker_field is None
    settings = load(str(write(tmp_path, base + 'marker_field = 4\n[state]\nretry_for = "12h"\nkeep_for = 86400\n'
                                             'max_attempts = 5\n')), {}, {})
    assert (settings.retry_for, settings.keep_for, settings.max_attempts) == (43200, 86400, 5)
    assert settings.marker_field == "4"


@pytest.mark.parametrize("state,words", [
    ('retry_for = "five days"', "state.retry_for: not a duration: 'five days'"),
    ("retry_for = -1", "state.retry_for: must be a duration of zero or more"),
    ('retry_for = "2d"\nkeep_for = "1d"', "state.keep_for: must be at least [state] retry_for (2d)"),
    ("max_attempts = 0", "state.max_attempts: must be a whole number from 1 to 100"),
    ("max_attempts = true", "state.max_attempts: must be an integer, not bool"),
])
def test_state_mistakes(tmp_path, state, words):
    text = f'[redmine]\nurl = "https://r.example.org/"\nkey_file = "{key_file(tmp_path)}"\n[state]\n{state}\n'
    with pytest.raises(ConfigError) as info:
        load(str(write(tmp_path, text)), {}, {})
    assert words in str(info.value)


def test_the_example_config_is_valid(tmp_path):
    from conftest import ROOT
    key = key_file(tmp_path)
    text = (ROOT / "examples" / "config.toml").read_text().replace("~/.config/m2r-deliver/api-key", str(key))
    settings = load(str(write(tmp_path, text)), {}, {"HOME": str(tmp_path)})
    assert settings.issue == {"project": "helpdesk", "tracker": "Support"}
    assert settings.guard.trusted_senders == ("request@example.org",)
    assert settings.requester_field == "Requester e-mail" and settings.form_fields == {"対象": "cf:Target host"}
    assert [route.values["project"] for route in settings.routes] == ["ops"]


def test_allow_override_is_site_wide_not_per_route(tmp_path):
    path = write(tmp_path, f'[redmine]\nurl = "https://r"\nkey_file = "{key_file(tmp_path)}"\n'
                           '[[route]]\nto = "ops@example.org"\nallow_override = ["all"]\n')
    with pytest.raises(ConfigError, match="route #1: allow_override: unknown route field"):
        load(str(path), {}, {})
