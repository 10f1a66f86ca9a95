"""Config validation: every mistake names the file, the key and the reason."""

import dataclasses
import os
import re
import shutil
import subprocess

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


def test_the_original_setup_example_is_valid(tmp_path):
    from support.paths import ROOT
    key = key_file(tmp_path)
    text = (ROOT / "examples" / "original-setup.toml").read_text().replace("~/.config/m2r-deliver/api-key", str(key))
    settings = load(str(write(tmp_path, text)), {}, {"HOME": str(tmp_path)})
    assert settings.issue == {"project": "helpdesk", "tracker": "Support"}
    assert settings.guard.trusted_senders == ("request@example.org",)
    assert settings.requester_field == "Requester e-mail" and settings.form_fields == {"対象": "cf:Target host"}
    assert [route.values["project"] for route in settings.routes] == ["ops"]


def test_the_default_example_is_the_minimum(tmp_path):
    """url, key file, project: nothing a stock Redmine lacks (a tracker, a custom field, a route)."""
    from support.paths import ROOT
    key = key_file(tmp_path)
    text = (ROOT / "examples" / "config.toml").read_text().replace("~/.config/m2r-deliver/api-key", str(key))
    settings = load(str(write(tmp_path, text)), {}, {"HOME": str(tmp_path)})
    assert settings.url == "https://redmine.example.org" and settings.key == "abc123"
    assert settings.issue == {"project": "helpdesk"}
    assert list(settings.routes) == []
    assert not settings.guard.trusted_senders and not settings.form_fields and not settings.requester_field


def test_allow_override_is_site_wide_not_per_route(tmp_path):
    path = write(tmp_path, f'[redmine]\nurl = "https://r"\nkey_file = "{key_file(tmp_path)}"\n'
                           '[[route]]\nto = "ops@example.org"\nallow_override = ["all"]\n')
    with pytest.raises(ConfigError, match="route #1: allow_override: unknown route field"):
        load(str(path), {}, {})


def base_config(tmp_path):
    return f'[redmine]\nurl = "https://r.example.org/"\nkey_file = "{key_file(tmp_path)}"\n'


def mistakes_of(tmp_path, text):
    path = write(tmp_path, base_config(tmp_path) + text)
    with pytest.raises(ConfigError) as info:
        load(str(path), {}, {"HOME": str(tmp_path)})
    return path, str(info.value)


@pytest.mark.parametrize("text,words", [
    ("[state]\nretry_for = nan", "state.retry_for: must be a duration of zero or more, not nan"),
    ("[state]\nretry_for = inf", "state.retry_for: must be a duration of zero or more, not inf"),
    ("[state]\nkeep_for = -1", "state.keep_for: must be a duration of zero or more, not -1"),
    ("[state]\nkeep_for = nan", "state.keep_for: must be a duration of zero or more, not nan"),
    ("[state]\ncache_ttl = -1", "state.cache_ttl: must be a number of seconds, at least 0, not -1"),
    ("[state]\ncache_ttl = nan", "state.cache_ttl: must be a finite number, not nan"),
    ("[state]\nmax_attempts = 101", "state.max_attempts: must be a whole number from 1 to 100, not 101"),
    ("[guard]\nrate_window = nan", "guard.rate_window: must be a finite number, not nan"),
    ("[guard]\nrate_window = inf", "guard.rate_window: must be a finite number, not inf"),
    ("[guard]\nrate_window = -60", "guard.rate_window: must be a number of seconds above 0, not -60"),
    ("timeout = nan", "redmine.timeout: must be a finite number, not nan"),
    ("timeout = -inf", "redmine.timeout: must be a finite number, not -inf"),
    ("timeout = 0", "redmine.timeout: must be a number of seconds above 0 and at most 600, not 0"),
    ("timeout = 601", "redmine.timeout: must be a number of seconds above 0 and at most 600, not 601"),
    ('[state]\ndir = ""', "state.dir: must not be empty"),
    ('[state]\ndir = "  "', "state.dir: must not be empty"),
    ('[log]\nfile = ""', "log.file: must not be empty"),
    ('[guard]\nhold = ""', "guard.hold: must not be empty"),
    ('[guard]\nkeep_dropped = ""', "guard.keep_dropped: must not be empty"),
    ('ca_bundle = ""', "redmine.ca_bundle: must not be empty"),
    ('[issue]\nproject_from_subaddress = ""', "issue.project_from_subaddress: must not be empty"),
])
def test_values_that_cannot_work_are_refused(tmp_path, text, words):
    """Issue 14 item 18: `nan` never quarantines, `nan` windows never fire, `dir = ""` is
    the current directory: each is refused, naming file, key and reason."""
    path, message = mistakes_of(tmp_path, text)
    assert f"{path}: {words}" in message


def test_an_empty_key_file_path_is_refused(tmp_path):
    path = write(tmp_path, '[redmine]\nurl = "https://r.example.org/"\nkey_file = ""\n')
    with pytest.raises(ConfigError, match="redmine.key_file: must not be empty"):
        load(str(path), {}, {})


def test_range_choice_and_type_mistakes_are_reported_together(tmp_path):
    """All at once, as promised: a wrong type does not hide a value out of range, nor one
    range mistake the next."""
    path, message = mistakes_of(tmp_path, 'timeout = 0\nverify = "yes"\n'
                                          '[sender]\nunknown_user = "maybe"\n'
                                          '[reply]\nmissing = "later"\n'
                                          '[state]\nretry_for = "2d"\nkeep_for = "1d"\nmax_attempts = 0\n'
                                          '[guard]\nrate_limit = -1\nrate_window = nan\nbounse = false\n'
                                          '[mail]\nbody_delimiters_regex = true\nbody_delimiters = ["(("]\n'
                                          '[issue]\nallow_override = ["colour"]\n')
    lines = message.split("\n")
    expected = ["redmine.timeout:", "redmine.verify: must be true or false", "sender.unknown_user:",
                "reply.missing:", "state.keep_for: must be at least", "state.max_attempts:", "guard.rate_limit:",
                "guard.rate_window:", "guard.bounse: unknown key", "mail.body_delimiters: bad regular expression",
                "issue.allow_override: unknown attribute(s) colour"]
    for words in expected:
        assert [line for line in lines if line.startswith(f"{path}: {words}")], words
    assert len(lines) == len(expected)


def test_a_flag_mistake_names_the_flags_not_the_file(tmp_path):
    path = write(tmp_path, base_config(tmp_path) + '[sender]\nunknown_user = "accept"\n')
    with pytest.raises(ConfigError) as info:
        load(str(path), {"redmine": {"url": "redmine.example.org"}}, {})
    assert str(info.value) == "(flags): redmine.url: not an http(s) URL: 'redmine.example.org'"


def test_defaults_are_the_schemas(tmp_path):
    """Settings built from a file that sets nothing optional equals Settings with only
    the required values: the readers and the dataclasses take their defaults from one
    place."""
    from m2r_deliver.config import GuardSettings, Settings
    from m2r_deliver.config.schema import SECTIONS

    path = write(tmp_path, base_config(tmp_path))
    settings = load(str(path), {}, {"HOME": str(tmp_path)})
    state_dir = tmp_path / ".local/state/m2r-deliver"
    expected = Settings(url="https://r.example.org", key="abc123", state_dir=state_dir,
                        guard=GuardSettings(hold=state_dir / "hold"), source=str(path))
    names = [f.name for f in dataclasses.fields(Settings)]  # Settings builds no __eq__: nothing compares two
    assert {name: getattr(settings, name) for name in names} == {name: getattr(expected, name) for name in names}
    for section in SECTIONS:
        for key in section.keys:
            assert key.doc and "\n" not in key.doc, (section.name, key.name)
            if key.default is not None:
                assert key.kind.check(key.default) is None, (section.name, key.name)


# The API key file: its first line only, and nothing of it in any message.
SECRET = "6f3c2b8e0d9a41c7b5e2f1a0c3d4e5f6a7b8c9d0"


@pytest.mark.parametrize("content", [
    f"{SECRET}\n# helpdesk-gateway-key\n",
    f"{SECRET}\nsecond-{SECRET[:8]}",
    f"\n{SECRET}\n",
    f"{SECRET} {SECRET[:6]}\n",
    f"{SECRET}\x00\n",
])
def test_a_key_file_is_its_first_line_alone_and_never_echoed(tmp_path, content):
    """Issue 14 item 11: a second line (a comment, say) once ended up in the key, and from
    there in the log, the ledger, status and check."""
    secret_file = tmp_path / "key"
    secret_file.write_text(content)
    secret_file.chmod(0o600)
    path = write(tmp_path, f'[redmine]\nurl = "https://r.example.org/"\nkey_file = "{secret_file}"\n')
    with pytest.raises(ConfigError) as info:
        load(str(path), {}, {})
    message = str(info.value)
    assert f"{path}: redmine.key_file: API key file {secret_file}" in message
    for part in (SECRET[:6], SECRET[-6:], "helpdesk-gateway"):
        assert part not in message


@pytest.mark.parametrize("content", [f"{SECRET}\n", f"{SECRET}\r\n\r\n", f"  {SECRET}  \n\n\n", SECRET])
def test_a_key_file_may_end_in_blank_lines(tmp_path, content):
    secret_file = tmp_path / "key"
    secret_file.write_text(content)
    secret_file.chmod(0o600)
    path = write(tmp_path, f'[redmine]\nurl = "https://r.example.org/"\nkey_file = "{secret_file}"\n')
    assert load(str(path), {}, {}).key == SECRET


def test_a_key_file_that_is_not_utf8_is_refused_without_its_bytes(tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_bytes(SECRET.encode() + b"\xff\xfe\n")
    secret_file.chmod(0o600)
    path = write(tmp_path, f'[redmine]\nurl = "https://r.example.org/"\nkey_file = "{secret_file}"\n')
    with pytest.raises(ConfigError) as info:
        load(str(path), {}, {})
    assert f"API key file {secret_file} is not UTF-8 text" in str(info.value)
    assert "0xff" not in str(info.value) and SECRET[:6] not in str(info.value)


def test_a_key_in_the_file_on_two_lines_is_refused_without_echo(tmp_path):
    path = write(tmp_path, f'[redmine]\nurl = "https://r.example.org/"\nkey = """{SECRET}\nmore"""\n')
    with pytest.raises(ConfigError) as info:
        load(str(path), {}, {})
    assert f"{path}: redmine.key: " in str(info.value) and SECRET[:6] not in str(info.value)


def test_no_config_file_says_where_it_looked_and_as_whom(tmp_path):
    """Issue 11: the common cause is running as root (or another user) by mistake."""
    import pwd

    user = pwd.getpwuid(os.geteuid()).pw_name
    with pytest.raises(ConfigError) as info:
        load(None, {}, {"HOME": str(tmp_path)})
    expected = tmp_path / ".config/m2r-deliver/config.toml"
    assert str(info.value).startswith(f"no config file at {expected} (running as {user})")
    with pytest.raises(ConfigError, match=f"no config file at {tmp_path}/xdg/m2r-deliver/config.toml"):
        load(None, {"issue": {"project": "p"}}, {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")})


def test_no_config_file_through_the_command_line(tmp_path, capsys):
    from m2r_deliver.cli import main

    assert main(["check"], {"HOME": str(tmp_path)}) == 1
    assert f"no config file at {tmp_path}/.config/m2r-deliver/config.toml (running as " in capsys.readouterr().out


# m2r-deliver.toml(5) is written from the schema.
PAGE_KEY = re.compile(r"^\\fB(.+?)\\fR = ")


def page_keys(text):
    keys, section = set(), None
    for line in text.splitlines():
        if line.startswith(".SS "):
            section = line[4:].strip("[]")
        elif line.startswith(".SH "):
            section = None
        elif section and PAGE_KEY.match(line):
            keys.add((section, PAGE_KEY.match(line).group(1).replace("\\-", "-")))
    return keys


def test_the_man_page_lists_every_key_and_no_other():
    from support.paths import ROOT
    from m2r_deliver.config import SCHEMA

    committed = (ROOT / "man" / "m2r-deliver.toml.5").read_text()
    in_schema = {(section, key) for section, keys in SCHEMA.items() for key in keys}
    in_page = page_keys(committed)
    assert in_page - in_schema == set(), "keys in the page the program does not read"
    assert in_schema - in_page == set(), "keys the program reads missing from the page"


def test_the_man_page_is_what_the_generator_writes():
    from support.paths import ROOT
    from m2r_deliver import manpage

    assert (ROOT / "man" / "m2r-deliver.toml.5").read_text() == manpage.render(), \
        "man/m2r-deliver.toml.5 is stale: run python -m m2r_deliver.manpage"


def test_the_page_check_notices_a_stale_page(tmp_path):
    from m2r_deliver import manpage

    page = tmp_path / "page.5"
    assert manpage.main([str(page)]) == 0
    assert manpage.main([str(page), "--check"]) == 0
    page.write_text(page.read_text().replace("\\fBtimeout\\fR", "\\fBtimeout_s\\fR"))
    assert page_keys(page.read_text()) != page_keys(manpage.render())
    assert manpage.main([str(page), "--check"]) == 1


@pytest.mark.parametrize("command", [["mandoc", "-Tlint", "-Wstyle"], ["groff", "-ww", "-man", "-z"]])
def test_the_man_page_renders_without_warnings(command):
    from support.paths import ROOT

    if not shutil.which(command[0]):
        pytest.skip(f"{command[0]} is not installed")
    done = subprocess.run([*command, str(ROOT / "man" / "m2r-deliver.toml.5")], capture_output=True, text=True,
                          check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_route_patterns_one_or_many_and_none_blank(tmp_path):
    path = write(tmp_path, base_config(tmp_path) + '[[route]]\nsubject = "^(PROBLEM|RECOVERY): "\npriority = "High"\n'
                 '[[route]]\nto = ["ops@example.org", "*+ops@example.org"]\nproject = "ops"\n')
    routes = load(str(path), {}, {}).routes
    assert [(r.match, r.values) for r in routes] == [
        ({"subject": ("^(PROBLEM|RECOVERY): ",)}, {"priority": "High"}),
        ({"to": ("ops@example.org", "*+ops@example.org")}, {"project": "ops"})]
    _, message = mistakes_of(tmp_path, '[[route]]\nto = ["ops@example.org", " "]\n[[route]]\nfrom = ""\n'
                                       '[guard]\nredmine_from = [""]\n')
    assert "route #1: to: must not have an empty entry" in message
    assert "route #2: from: must not be empty" in message
    assert "guard.redmine_from: must not have an empty entry" in message
