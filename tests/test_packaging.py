"""What the Debian package ships besides the program: the manual page m2r-deliver(1) and
the bash completion, which must name exactly the program's commands and options; the
logrotate example, run with the real logrotate on a log m2r-deliver writes; and a package
version that is the program's. (scripts/test-package builds and installs the package.)"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess

import pytest

from support.paths import ROOT
from support.mails import make_mail
from m2r_deliver import __version__
from m2r_deliver.cli import SUBCOMMANDS
from m2r_deliver.options import build_parser

MAN_PAGE = ROOT / "man" / "m2r-deliver.1"
COMPLETION = ROOT / "completions" / "m2r-deliver"
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
COMMANDS = ("deliver", *SUBCOMMANDS)


def parser_options(command: str) -> set[str]:
    return {option for action in build_parser(command)._actions for option in action.option_strings}


def every_option() -> set[str]:
    return set().union(*(parser_options(command) for command in COMMANDS))


def man_text() -> str:
    """The page's source with roff's escaped hyphens plain."""
    return MAN_PAGE.read_text().replace("\\-", "-")


def options_named(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))


def test_the_man_page_names_exactly_the_programs_options():
    page = man_text()
    options = page[page.index(".SH OPTIONS"):page.index(".SH EXIT STATUS")]
    assert options_named(options) == every_option()
    assert options_named(page) <= every_option()  # no option elsewhere that the program lacks
    status = options[options.index(".SS Options of status"):]
    assert options_named(status) == parser_options("status") - parser_options("check")


def test_the_man_page_describes_every_command():
    page = man_text()
    commands = page[page.index(".SH COMMANDS"):page.index(".SH OPTIONS")]
    assert set(re.findall(r"^\.TP\n\.BR? (\w+)", commands, re.MULTILINE)) == set(SUBCOMMANDS)
    for command in SUBCOMMANDS:
        assert f".B m2r-deliver {command}" in page  # and in the synopsis


def test_the_completion_names_exactly_the_programs_commands_and_options():
    """Read from the script; test_bash_completes_… runs it."""
    script = COMPLETION.read_text()
    lists = dict(re.findall(r'\b(\w+)="([^"$]*)"', script))
    assert set(lists["commands"].split()) == set(SUBCOMMANDS)
    for command in COMMANDS:
        assert set(lists["common"].split()) | set(lists[f"{command}_options"].split()) == parser_options(command)


@pytest.mark.parametrize("command", [["mandoc", "-Tlint"], ["groff", "-ww", "-man", "-Tutf8", "-z"]])
def test_the_man_page_renders_without_a_warning(command):
    if not shutil.which(command[0]):
        pytest.skip(f"{command[0]} is not installed")
    done = subprocess.run([*command, str(MAN_PAGE)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def complete(line: str) -> list[str]:
    """What bash offers for *line* (the cursor at its end), with Debian's bash-completion
    and the shipped completion loaded."""
    if not os.path.exists(BASH_COMPLETION):
        pytest.skip(f"{BASH_COMPLETION} is not installed (apt install bash-completion)")
    script = (f'source {BASH_COMPLETION}; source {COMPLETION}\n'
              'COMP_LINE=$LINE; COMP_POINT=${#LINE}; COMP_WORDS=($LINE); [[ $LINE == *" " ]] && COMP_WORDS+=("")\n'
              'COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n'
              '_m2r_deliver m2r-deliver "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "LINE": line})
    assert done.returncode == 0, done.stderr
    return sorted(done.stdout.split())


@pytest.mark.parametrize("command", COMMANDS)
def test_bash_completes_each_commands_own_options(command):
    line = "m2r-deliver -" if command == "deliver" else f"m2r-deliver {command} -"
    assert set(complete(line)) == parser_options(command)


def test_bash_completes_commands_options_and_values(tmp_path):
    assert complete("m2r-deliver ") == sorted(SUBCOMMANDS)
    assert complete("m2r-deliver st") == ["status"]
    assert complete("m2r-deliver check --no-") == ["--no-account-notice", "--no-check-certificate",
                                                   "--no-notification", "--no-permission-check"]
    assert complete("m2r-deliver --unknown-user ") == ["accept", "create", "ignore"]
    assert complete("m2r-deliver -o tracker,prio") == ["tracker,priority"]
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine.txt").write_text("")
    assert complete(f"m2r-deliver replay {tmp_path}/quar") == [f"{tmp_path}/quarantine"]
    assert complete("m2r-deliver status st") == []  # one command only
    assert complete("m2r-deliver status --max-retry-age 1") == ["12h", "1d", "1h"]


def test_the_logrotate_example_rotates_the_log_m2r_deliver_writes(offline_site):
    """m2r-deliver opens its log anew for each line, so a log that logrotate renamed is
    written afresh at the next mail, with neither copytruncate nor a signal."""
    logrotate = shutil.which("logrotate") or shutil.which("/usr/sbin/logrotate")
    if not logrotate:
        pytest.skip("logrotate is not installed (apt install logrotate)")
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    example = (ROOT / "examples" / "logrotate").read_text()
    assert example.count("/home/helpdesk/.local/state/m2r-deliver/m2r-deliver.log") == 1
    assert example.count("su helpdesk helpdesk") == 1
    config = offline_site.home / "logrotate.conf"
    config.write_text(example.replace("/home/helpdesk/.local/state/m2r-deliver/m2r-deliver.log",
                                      str(offline_site.log_file)).replace("su helpdesk helpdesk", f"su {user} {group}"))
    first = offline_site.deliver(make_mail(subject="before the rotation"))
    rotated = subprocess.run([logrotate, "--force", "--state", str(offline_site.home / "logrotate.state"), str(config)],
                             capture_output=True, text=True, timeout=60)
    assert rotated.returncode == 0, rotated.stderr
    old = offline_site.log_file.with_name(offline_site.log_file.name + ".1")  # delaycompress: .1 stays plain
    assert old.read_text() == first.log and not offline_site.log_file.exists()

    second = offline_site.deliver(make_mail(subject="after the rotation"))
    assert first.returncode == second.returncode == 75
    assert len(first.log.splitlines()) == len(second.log.splitlines()) == 1


def test_the_debian_package_version_is_the_programs():
    first = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert re.match(r"m2r-deliver \(([^)]+)\) ", first).group(1) == __version__
