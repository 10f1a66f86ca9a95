"""Deliver examples/mail/*.eml through the installed m2r-deliver and print the outcome; then
the conversation on the web form's request: staff write a private and a public note,
Redmine's notifications to the relay account are delivered like any mail, the public note
reaches the requester, and the requester's reply becomes a note."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import make_msgid
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
                      + f'\n[state]\ndir = "{home / "state"}"\n\n[log]\nsyslog = false\nfile = "{home / "m2r.log"}"\n'
                      # staff's public notes go on to the requester through the test bed's relay account
                      + '\n[relay]\nenabled = true\nuser = "relay"\ntemplate = "relay.ja.txt"\n')
    config.chmod(0o600)
    script = Path(sys.executable).parent / "m2r-deliver"
    print(f"Redmine: {info['url']}   config: {config}\n")

    def deliver(data: bytes) -> tuple[int, dict[str, str]]:
        """One mail handed over as a mail system would: its exit status and log fields."""
        proc = subprocess.run([str(script), "--config", str(config)], input=data, capture_output=True)
        line = (home / "m2r.log").read_text().strip().splitlines()[-1]
        return proc.returncode, dict(part.split("=", 1) for part in _split(line.split(": ", 1)[1]))

    form_issue = None
    for mail in sorted((ROOT / "examples" / "mail").glob("*.eml")):
        status, fields = deliver(mail.read_bytes())
        if mail.name.startswith("02-web-form") and fields.get("decision") == "filed":
            form_issue = int(fields["issue"].lstrip("#"))
        print(f"{mail.name}\n  exit {status}, {fields.get('decision')}"
              + (f" by guard {fields['guard']}" if "guard" in fields else "")
              + (f" ({fields.get('error')})" if "error" in fields else "")
              + (f": {fields['reason']}" if "reason" in fields else ""))
        if "issue" in fields and fields.get("decision") in ("filed", "duplicate"):
            number = fields["issue"].lstrip("#")
            issue = _api(info, "GET", f"/issues/{number}.json").json()["issue"]
            print(f"  #{number} [{issue['project']['name']} - {issue['tracker']['name']}] {issue['subject']}")
            fields_shown = "".join(f"; {cf['name']}: {cf['value']}"
                                   for cf in issue.get("custom_fields", []) if cf.get("value"))
            print(f"  author: {issue['author']['name']}{fields_shown}")
            print(f"  {info['url']}/issues/{number}")
        if fields.get("ack") == "acknowledged":
            print(f"  acknowledged to {fields.get('to')}: {_subject(outbox, fields.get('ack_msgid', ''))}")
        print()
    if form_issue is not None:
        _conversation(info, form_issue, deliver, outbox)
    print(f"One log line per mail: {home / 'm2r.log'}")
    print(f"The acknowledgements and relayed notes, as they would reach the requesters (not sent): {outbox}")
    return 0


def _conversation(info: dict, issue: int, deliver, outbox: Path) -> None:
    """Staff answer the web form's request; the relay account's notifications are delivered."""
    watchers = _api(info, "GET", f"/issues/{issue}.json", params={"include": "watchers"}).json()["issue"]["watchers"]
    print(f"The conversation on #{issue}, watched by {', '.join(w['name'] for w in watchers) or 'nobody'}")
    private = _note(info, issue, "社内メモ: VPN 装置の証明書が期限切れ。", private=True)
    public = _note(info, issue, "VPN 装置を再起動しました。もう一度接続をお試しください。")
    print(f"  jsmith writes a private note (journal {private}) and a public note (journal {public})")
    relayed = None
    for journal, message in _notifications(info, issue, {private, public}, wait_for=public):
        status, fields = deliver(message)
        print(f"  Redmine's notification of journal {journal} to the relay account: exit {status}, "
              f"{fields.get('decision')}" + (f" ({fields['reason']})" if "reason" in fields else ""))
        if fields.get("decision") == "relayed":
            relayed = _kept(outbox, fields.get("relay_msgid", ""))
            subject = _decoded(relayed["Subject"]) if relayed else "(not in the outbox)"
            print(f"    relayed to {fields.get('to')}: {subject}")
            if relayed:
                text = relayed.get_payload(decode=True).decode(relayed.get_content_charset() or "utf-8")
                print("".join(f"    | {line}\n" for line in text.strip().splitlines()), end="")
    if private not in [journal for journal, _ in _notifications(info, issue, {private, public})]:
        print("  the private note: Redmine sent the relay account no notification of it (a Reporter)")
    if relayed is None:
        return
    reply = EmailMessage()
    reply["From"], reply["To"] = "Taro Yamada <taro@example.org>", "request@example.org"
    reply["Subject"] = f"Re: {_decoded(relayed['Subject'])}"
    reply["Message-ID"], reply["In-Reply-To"] = make_msgid(domain="example.org"), relayed["Message-ID"]
    reply.set_content("つながりました。ありがとうございました。\n")
    status, fields = deliver(reply.as_bytes())
    print(f"  taro@example.org replies to it: exit {status}, {fields.get('decision')} "
          f"{fields.get('action', '')} on {fields.get('issue')}")
    journals = _journals(info, issue)
    if len(journals) > 2:
        for _, message in _notifications(info, issue, {journals[-1]}, wait_for=journals[-1]):
            status, fields = deliver(message)
            print(f"  Redmine's notification of that note to the relay account: exit {status}, "
                  f"{fields.get('decision')} ({fields.get('reason', '')})")
    print()


def _api(info: dict, method: str, path: str, key: str | None = None, **kwargs) -> requests.Response:
    return requests.request(method, f"{info['url']}{path}", timeout=30,
                            headers={"X-Redmine-API-Key": key or info["admin_key"]}, **kwargs)


def _note(info: dict, issue: int, text: str, private: bool = False) -> int:
    """A note by jsmith over the REST API; its journal id."""
    _api(info, "PUT", f"/issues/{issue}.json", info["jsmith_key"],
         json={"issue": {"notes": text, "private_notes": private}}).raise_for_status()
    return _journals(info, issue)[-1]


def _journals(info: dict, issue: int) -> list[int]:
    answer = _api(info, "GET", f"/issues/{issue}.json", params={"include": "journals"}).json()["issue"]
    return sorted(journal["id"] for journal in answer.get("journals", []))


def _notifications(info: dict, issue: int, journals: set[int], wait_for: int | None = None) -> list[tuple[int, bytes]]:
    """Redmine's notifications of *journals* to the relay account (the test bed writes
    them to a file per recipient), waiting up to 30 s for the one of *wait_for*."""
    path = Path(info["mail_dir"]) / info["users"]["relay"]["mail"]
    deadline = time.monotonic() + 30
    while True:
        raw = path.read_bytes() if path.exists() else b""
        found = []
        for message in re.split(rb"(?m)^(?=Date: [^\n]*\r?\nFrom: )", raw):
            journal = re.search(rb"(?im)^Message-ID:\s*<redmine\.journal-(\d+)\.", message)
            if journal and int(journal.group(1)) in journals and re.search(
                    rb"(?im)^X-Redmine-Issue-Id: %d\r?$" % issue, message):
                found.append((int(journal.group(1)), message.replace(b"\r\n", b"\n")))
        if wait_for is None or wait_for in dict(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def _subject(outbox: Path, message_id: str) -> str:
    """The decoded subject of the acknowledgement with that Message-ID in the outbox."""
    kept = _kept(outbox, message_id)
    return _decoded(kept["Subject"]) if kept else "(not in the outbox)"


def _kept(outbox: Path, message_id: str):
    """The mail with that Message-ID in the outbox, or None."""
    for kept in outbox.glob("*.eml"):
        message = message_from_bytes(kept.read_bytes())
        if message["Message-ID"] == message_id:
            return message
    return None


def _decoded(header: str) -> str:
    return str(make_header(decode_header(header)))


def _split(line: str) -> list[str]:
    """key=value pairs, values possibly in double quotes."""
    import shlex
    return shlex.split(line)


if __name__ == "__main__":
    sys.exit(main())
