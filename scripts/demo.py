"""Deliver examples/mail/*.eml through the installed m2r-deliver and print the outcome."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
TESTBED = Path(os.environ.get("M2R_TESTBED_DIR", "/var/tmp/m2r-testbed")) / "testbed.json"


def main() -> int:
    info = json.loads(TESTBED.read_text())
    home = Path(tempfile.mkdtemp(prefix="m2r-demo."))
    key_file = home / "api-key"
    key_file.write_text(info["admin_key"])
    key_file.chmod(0o600)
    # The acknowledgements the original setup sends go to a stand-in for sendmail that keeps
    # them in the demo's outbox: the demo sends no mail and needs no mail system.
    outbox = home / "outbox"
    outbox.mkdir()
    sendmail = home / "sendmail"
    sendmail.write_text(f'#!/bin/sh\n# the demo\'s sendmail: keeps the mail, sends nothing\ncat > "{outbox}/$$.eml"\n')
    sendmail.chmod(0o755)
    config = home / "config.toml"
    config.write_text((ROOT / "examples" / "original-setup.toml").read_text()
                      .replace("[outgoing]\n", f'[outgoing]\nsendmail = "{sendmail}"\n', 1)
                      .replace("https://redmine.example.org", info["url"])
                      .replace("~/.config/m2r-deliver/api-key", str(key_file))
                      + f'\n[state]\ndir = "{home / "state"}"\n\n[log]\nsyslog = false\nfile = "{home / "m2r.log"}"\n')
    config.chmod(0o600)
    script = Path(sys.executable).parent / "m2r-deliver"
    print(f"Redmine: {info['url']}   config: {config}\n")
    for mail in sorted((ROOT / "examples" / "mail").glob("*.eml")):
        proc = subprocess.run([str(script), "--config", str(config)], stdin=mail.open("rb"), capture_output=True)
        line = (home / "m2r.log").read_text().strip().splitlines()[-1]
        fields = dict(part.split("=", 1) for part in _split(line.split(": ", 1)[1]))
        print(f"{mail.name}\n  exit {proc.returncode}, {fields.get('decision')}"
              + (f" by guard {fields['guard']}" if "guard" in fields else "")
              + (f" ({fields.get('error')})" if "error" in fields else ""))
        if "issue" in fields:
            number = fields["issue"].lstrip("#")
            issue = requests.get(f"{info['url']}/issues/{number}.json", timeout=30,
                                 headers={"X-Redmine-API-Key": info["admin_key"]}).json()["issue"]
            print(f"  #{number} [{issue['project']['name']} - {issue['tracker']['name']}] {issue['subject']}")
            fields_shown = "".join(f"; {cf['name']}: {cf['value']}"
                                   for cf in issue.get("custom_fields", []) if cf.get("value"))
            print(f"  author: {issue['author']['name']}{fields_shown}")
            print(f"  {info['url']}/issues/{number}")
        if fields.get("ack") == "acknowledged":
            print(f"  acknowledged to {fields.get('to')}: {_subject(outbox, fields.get('ack_msgid', ''))}")
        print()
    print(f"One log line per mail: {home / 'm2r.log'}")
    print(f"The acknowledgements, as they would reach the requesters (not sent): {outbox}")
    return 0


def _subject(outbox: Path, message_id: str) -> str:
    """The decoded subject of the acknowledgement with that Message-ID in the outbox."""
    from email import message_from_bytes
    from email.header import decode_header, make_header

    for kept in outbox.glob("*.eml"):
        message = message_from_bytes(kept.read_bytes())
        if message["Message-ID"] == message_id:
            return str(make_header(decode_header(message["Subject"])))
    return "(not in the outbox)"


def _split(line: str) -> list[str]:
    """key=value pairs, values possibly in double quotes."""
    import shlex
    return shlex.split(line)


if __name__ == "__main__":
    sys.exit(main())
