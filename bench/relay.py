"""One staff note relayed: Redmine's notification of a journal to the relay account in, one
mail to the requester out (to a stand-in sendmail that keeps it). Whole-process wall time,
median of N, and the HTTP requests the process made, counted at a loopback proxy in front
of Redmine (a second site with its own state directory takes the same notification through
the proxy, so the timed runs have no proxy in their way). Also counted: the requests of
filing one request for an outside requester with [relay] on and off (the relay account
made a watcher).

    flock /tmp/m2r-testbed.lock .venv/bin/python bench/relay.py [N]
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

from common import SCRIPT, machine_state, median_ms, request_mail, site_config, testbed, timed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.faultproxy import FaultProxy  # noqa: E402  (a loopback proxy that records every request)

RELAY_ON = '[outgoing]\nsendmail = "{sendmail}"\nfrom = "Helpdesk <request@example.org>"\n\n[relay]\nenabled = true\n'


def site(info: dict, relay: bool = True, url: str | None = None, extra: str = "") -> tuple[Path, Path]:
    """A config (relay on: with a stand-in sendmail keeping each mail in the site's outbox)
    and that outbox."""
    config = site_config(info, extra)
    home = config.parent
    outbox = home / "outbox"
    outbox.mkdir()
    sendmail = home / "sendmail"
    sendmail.write_text(f'#!/bin/sh\ncat > "{outbox}/$$.eml"\n')
    sendmail.chmod(0o755)
    text = config.read_text()
    if url:
        text = text.replace(f'url = "{info["url"]}"', f'url = "{url}"')
    config.write_text(text + (RELAY_ON.format(sendmail=sendmail) if relay else ""))
    return config, outbox


def deliver(config: Path, mail: bytes) -> tuple[float, str]:
    ms, status = timed([str(SCRIPT), "--config", str(config)], mail)
    line = (config.parent / "log").read_text().strip().splitlines()[-1]
    assert status == 0, line
    return ms, line


def note(info: dict, issue: int, text: str) -> int:
    """jsmith's public note over REST; its journal id."""
    headers = {"X-Redmine-API-Key": info["jsmith_key"]}
    requests.put(f"{info['url']}/issues/{issue}.json", json={"issue": {"notes": text}}, headers=headers,
                 timeout=30).raise_for_status()
    journals = requests.get(f"{info['url']}/issues/{issue}.json", params={"include": "journals"}, timeout=30,
                            headers={"X-Redmine-API-Key": info["admin_key"]}).json()["issue"]["journals"]
    return max(j["id"] for j in journals)


def notification(info: dict, journal: int) -> bytes:
    """Redmine's notification of *journal* to the relay account, as its file holds it."""
    path = Path(info["mail_dir"]) / info["users"]["relay"]["mail"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        raw = path.read_bytes() if path.exists() else b""
        for message in re.split(rb"(?m)^(?=Date: [^\n]*\r?\nFrom: )", raw):
            if re.search(rb"(?im)^Message-ID:\s*<redmine\.journal-%d\." % journal, message):
                return message.replace(b"\r\n", b"\n")
        time.sleep(0.1)
    raise SystemExit(f"no notification of journal {journal} to the relay account within 60 s")


def requests_made(proxy: FaultProxy, since: int) -> str:
    counted = Counter(f"{method} {re.sub(r'/[0-9]+', '/N', path.split('?')[0])}"
                      for method, path, _ in proxy.seen[since:])
    return f"{sum(counted.values())} ({', '.join(f'{what} ×{n}' if n > 1 else what for what, n in counted.items())})"


def main(runs: int) -> None:
    info = testbed()
    print(f"{machine_state()} at the start")
    timed_site, timed_outbox = site(info)
    with FaultProxy(info["url"]) as proxy:
        counted_site, counted_outbox = site(info, url=proxy.url)
        off_site, _ = site(info, relay=False, url=proxy.url)
        fallback_site, _ = site(info, url=proxy.url, extra='[sender]\nfallback_user = "gateway"\n\n')
        # filing one request for an outside requester, name caches warm (a first mail each)
        for config in (counted_site, off_site, fallback_site):
            deliver(config, request_mail(sender=f"warm.{uuid.uuid4().hex[:8]}@example.org", tag="bench-relay-warm"))
        filing = {}
        for name, config in (("[relay] on", counted_site), ("[relay] off", off_site),
                             ("[relay] on, filed as fallback_user gateway (a Reporter)", fallback_site)):
            start = len(proxy.seen)
            deliver(config, request_mail(sender=f"taro.{uuid.uuid4().hex[:8]}@example.org", tag="bench-relay"))
            filing[name] = requests_made(proxy, start)
        # the issue staff answer, filed for an outside requester: the relay account watches it
        _, line = deliver(timed_site, request_mail(sender=f"taro.{uuid.uuid4().hex[:8]}@example.org",
                                                   tag="bench-relay-issue"))
        issue = int(re.search(r"decision=filed issue=#(\d+)", line).group(1))
        samples, counts = [], []
        for run in range(runs + 1):  # the first run warms the name caches and is not counted
            message = notification(info, note(info, issue, f"Answer {run} from staff."))
            ms, line = deliver(timed_site, message)
            assert " decision=relayed " in line, line
            start = len(proxy.seen)
            _, counted_line = deliver(counted_site, message)
            assert " decision=relayed " in counted_line, counted_line
            if run:
                samples.append(ms)
                counts.append(requests_made(proxy, start))
    assert len(list(timed_outbox.glob("*.eml"))) == runs + 1 == len(list(counted_outbox.glob("*.eml")))
    print(f"{machine_state()} at the end")
    print(f"relay, one notification in, one mail out: median {median_ms(samples)} ms, min {min(samples):.0f}, "
          f"max {max(samples):.0f} ({runs} runs)")
    print(f"  HTTP requests per notification: {', '.join(sorted(set(counts)))}")
    for name, made in filing.items():
        print(f"filing one request for an outside requester, {name}: HTTP requests {made}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
