"""scripts/demo.py, the README's first command's last step: the sample mails delivered into
the test-bed Redmine with the original setup's config. It must change nothing of the mail
system: the acknowledgements that config sends are kept in the demo's own outbox."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import ROOT


@pytest.fixture(scope="module")
def demo_output(testbed) -> str:
    """What scripts/demo.py printed (run once for the module's tests)."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_demo_files_the_samples_and_keeps_its_acknowledgements_unsent(demo_output):
    out = demo_output
    samples = out.split("The conversation on #", 1)[0]
    # Redmine's own notification (to admin, not to the relay account) is never filed
    assert samples.count("exit 0, filed") == 4 and re.search(r"05-redmine-notification.eml\n  exit 0, dropped by "
                                                            r"guard (redmine_own|relay)", samples), samples
    config = Path(re.search(r"config: (\S+)", out).group(1))
    outbox = Path(re.search(r"\(not sent\): (\S+)", out).group(1))
    assert f'sendmail = "{config.parent / "sendmail"}"' in config.read_text()
    acknowledged = re.findall(r"acknowledged to (\S+): (.*)", out)
    relayed = re.findall(r"relayed to (\S+): (.*)", out)
    assert acknowledged and len(acknowledged) + len(relayed) == len(list(outbox.glob("*.eml")))
    for _, subject in acknowledged:
        assert re.match(r"\[(Helpdesk - Support|Operations - Bug) #\d+\] ", subject), subject


def test_the_demo_shows_the_conversation_on_the_forms_request(demo_output):
    """Staff's public note reaches the requester (in the outbox), the private one does not,
    the requester's reply is a note, and Redmine's notification of that reply goes nowhere."""
    out = demo_output.split("The conversation on #", 1)[1]
    issue = out.split(",", 1)[0]
    assert out.startswith(f"{issue}, watched by Mail Relay\n"), out
    [(to, subject)] = re.findall(r"relayed to (\S+): (.*)", out)
    assert (to, subject) == ("taro@example.org", f"Re: [Helpdesk - Support #{issue}] 【依頼】VPN 接続できない")
    assert "VPN 装置を再起動しました" in out and "社内メモ" not in out
    assert "the private note: Redmine sent the relay account no notification of it" in out
    assert f"taro@example.org replies to it: exit 0, filed note on #{issue}" in out
    assert "Redmine's notification of that note to the relay account: exit 0, dropped (the requester's own note" in out
