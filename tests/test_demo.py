"""scripts/demo.py, the README's first command's last step: the sample mails delivered into
the test-bed Redmine with the original setup's config. It must change nothing of the mail
system: the acknowledgements that config sends are kept in the demo's own outbox."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT


def test_the_demo_files_the_samples_and_keeps_its_acknowledgements_unsent(testbed):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("exit 0, filed") == 4 and "dropped by guard redmine_own" in out
    config = Path(re.search(r"config: (\S+)", out).group(1))
    outbox = Path(re.search(r"\(not sent\): (\S+)", out).group(1))
    assert f'sendmail = "{config.parent / "sendmail"}"' in config.read_text()
    acknowledged = re.findall(r"acknowledged to (\S+): (.*)", out)
    assert acknowledged and len(acknowledged) == len(list(outbox.glob("*.eml")))
    for _, subject in acknowledged:
        assert re.match(r"\[(Helpdesk - Support|Operations - Bug) #\d+\] ", subject), subject
