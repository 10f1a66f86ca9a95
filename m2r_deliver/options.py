"""The command line's options: rdm-mailhandler.rb's flags and ours, read by argparse, and
the config sections they override.

A delivery whose command line is the usual one (nothing, or ``--config PATH``) is read
without them (``cli``): argparse and its thirty options are built only for the rest.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import __version__
from .cli import Usage
from .errors import ConfigError

DESCRIPTIONS = {
    "deliver": "Deliver one RFC 822 mail from stdin into Redmine as an issue. "
               "Exit 0: filed or deliberately dropped; 75: keep the mail and retry later.",
    "check": "Check the config against Redmine: the key, the project and every name it uses, the state "
             "dir, where the log goes. One line per finding (ok, warn, FAIL); exit 1 when anything failed.",
    "replay": "Deliver the quarantined mail again, once its cause is fixed (default: the state dir's quarantine).",
    "status": "Show what the ledger holds: counts by outcome, the quarantine, mail in retry, recent outcomes.",
}
EPILOG = ("commands: 'm2r-deliver check' checks the config against Redmine; 'm2r-deliver replay [MAILDIR]' "
          "delivers quarantined mail again; 'm2r-deliver status' shows the ledger. "
          "'m2r-deliver COMMAND --help' describes each.")


class _Parser(argparse.ArgumentParser):
    #: A person reads the answer (a terminal, or a subcommand); else the mail system does.
    interactive = False

    def error(self, message: str):  # argparse would exit 2: a bounce for Postfix
        if self.interactive:
            raise Usage(message)
        raise ConfigError(f"command line: {message}")

    def add_argument(self, *args, **kwargs):
        # argparse checks each option's metavar with a help formatter, which sizes itself
        # to the terminal through shutil (imported for that alone); the check needs no width.
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def _get_formatter(self):
        if getattr(self, "_checking", False):
            return self.formatter_class(prog=self.prog, width=80)
        return super()._get_formatter()


def build_parser(command: str = "deliver", interactive: bool = False) -> argparse.ArgumentParser:
    p = _Parser(
        prog="m2r-deliver" if command == "deliver" else f"m2r-deliver {command}",
        description=DESCRIPTIONS[command],
        epilog=EPILOG if command == "deliver" else None,
    )
    p.interactive = interactive
    if command == "status":
        p.add_argument("--json", action="store_true", help="print the status as one JSON object")
        p.add_argument("--check", action="store_true",
                       help="for monitoring: one line, exit 0 all fine, 1 mail held or in quarantine, "
                       "2 mail in retry for longer than --max-retry-age or the last attempt failed")
        p.add_argument("--max-retry-age", metavar="DURATION", default="1h",
                       help="with --check: mail in retry longer than this is an alarm (default 1h; 30m, 12h, 2d…)")
    if command == "replay":
        p.add_argument("maildir", nargs="?", metavar="MAILDIR",
                       help="Maildir to replay (default: <state dir>/quarantine)")
    p.add_argument("-V", "--version", action="version", version=f"m2r-deliver {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="print an account of the delivery on stderr")
    p.add_argument("--config", metavar="PATH", help="TOML config (default $XDG_CONFIG_HOME/m2r-deliver/config.toml)")
    if command == "deliver":
        p.add_argument("--dry-run", action="store_true", help="decide and resolve everything, write nothing, "
                       "print the planned Redmine change as JSON")
    r = p.add_argument_group("Redmine (rdm-mailhandler.rb compatible)")
    r.add_argument("-u", "--url", help="URL of the Redmine server")
    r.add_argument("-k", "--key", help="Redmine API key (prefer --key-file or the config: argv is public)")
    r.add_argument("--key-file", metavar="FILE", help="file that holds the API key")
    r.add_argument("--no-check-certificate", action="store_true", help="do not verify the server's certificate")
    r.add_argument("--certificate-bundle", metavar="FILE", help="CA bundle to verify the server with")
    i = p.add_argument_group("issue attributes (override [issue] in the config)")
    i.add_argument("-p", "--project", help="identifier of the target project")
    i.add_argument("-s", "--status", help="name of the target status")
    i.add_argument("-t", "--tracker", help="name of the target tracker")
    i.add_argument("--category", help="name of the target category")
    i.add_argument("--priority", help="name of the target priority")
    i.add_argument("--assigned-to", metavar="ASSIGNEE", help="assignee (login, e-mail or group name)")
    i.add_argument("--fixed-version", metavar="VERSION", help="name of the target version")
    i.add_argument("--private", action="store_true", default=None, help="create new issues as private")
    i.add_argument("-o", "--allow-override", metavar="ATTRS",
                   help="attributes the mail's keywords may set, comma-separated: tracker, priority, …, "
                   "custom_field:NAME, custom_fields, or all")
    i.add_argument("--project-from-subaddress", metavar="ADDR",
                   help="take the project from the sub-address of ADDR (ADDR+project@domain) among the recipients")
    s = p.add_argument_group("sender handling (with an administrator's key mail is filed as its sender)")
    s.add_argument("--unknown-user", metavar="ACTION", choices=("accept", "ignore", "create"),
                   help="a sender the gateway cannot file as (no account, locked, no permission): 'accept' "
                   "files as [sender] fallback_user or the key's user (default), 'ignore' drops the mail, "
                   "'create' makes the account first")
    s.add_argument("--default-group", metavar="GROUPS", help="comma-separated groups for created users")
    s.add_argument("--no-permission-check", action="store_true", default=None,
                   help="act as the sender without first checking their roles in the project; "
                   "Redmine's own refusal still sends the mail to the fallback")
    s.add_argument("--no-account-notice", action="store_true", default=None,
                   help="do not mail created users their login and password")
    s.add_argument("--no-notification", action="store_true", default=None,
                   help="created users get no notification mail (mail_notification none)")
    return p


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The flags that were given, as config sections: flags win over the file."""
    allow = args.allow_override.split(",") if args.allow_override else None
    return {
        "redmine": {
            "url": args.url,
            "key": args.key,
            "key_file": args.key_file,
            "verify": False if args.no_check_certificate else None,
            "ca_bundle": args.certificate_bundle,
        },
        "issue": {
            "project": args.project,
            "status": args.status,
            "tracker": args.tracker,
            "category": args.category,
            "priority": args.priority,
            "assigned_to": args.assigned_to,
            "fixed_version": args.fixed_version,
            "private": args.private,
            "allow_override": allow,
            "project_from_subaddress": args.project_from_subaddress,
        },
        "sender": {
            "unknown_user": args.unknown_user,
            "default_group": args.default_group,
            "permission_check": False if args.no_permission_check else None,
            "account_notice": False if args.no_account_notice else None,
            "notification": False if args.no_notification else None,
        },
        "log": {"verbose": True if args.verbose else None},
    }
