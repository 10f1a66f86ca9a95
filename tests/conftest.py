"""Shared fixtures: the test-bed Redmine, a private config per test, and a way to run the
installed ``m2r-deliver`` exactly as a mail system does (bytes on stdin, exit status)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
TESTBED_DIR = Path(os.environ.get("M2R_TESTBED_DIR", "/var/tmp/m2r-testbed"))


def console_script() -> str:
    """The installed entry point next to this interpreter, as a mail system would run it."""
    candidate = Path(sys.executable).parent / "m2r-deliver"
    return str(candidate) if candidate.exists() else shutil.which("m2r-deliver") or "m2r-deliver"


@dataclass
class Testbed:
    info: dict
    url: str
    admin_key: str

    def api(self, method: str, path: str, key: str | None = None, **kwargs) -> requests.Response:
        """The tests' own REST call (setting up users, issues, notes; reading results). The
        test bed's SQLite answers 500 "database is locked" now and then when Redmine's mail
        jobs write at the same moment; the tests' own calls try again then (what
        m2r-deliver does with a 500 is tested on its own: it tempfails)."""
        headers = {"X-Redmine-API-Key": key or self.admin_key}
        for pause in (1, 2, 4, 0):
            response = requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)
            if response.status_code != 500 or not pause:
                return response
            time.sleep(pause)
        return response

    def get(self, path: str, **params) -> dict:
        response = self.api("GET", path, params=params)
        response.raise_for_status()
        return response.json()

    def issue(self, issue_id: int, include: str = "attachments,journals") -> dict:
        return self.get(f"/issues/{issue_id}.json", include=include)["issue"]

    def issues_with_subject(self, text: str, project: str | None = None) -> list[dict]:
        """Issues whose subject contains *text*, any status, newest first."""
        params = {"status_id": "*", "subject": f"~{text}", "sort": "id:desc", "limit": 100}
        if project:
            params["project_id"] = project
        return self.get("/issues.json", **params)["issues"]

    def issue_count(self) -> int:
        return self.get("/issues.json", status_id="*", limit=1)["total_count"]

    def journal_count(self) -> int:
        """Notes across all issues: the sum over every issue's journals."""
        total = 0
        offset = 0
        while True:
            page = self.get("/issues.json", status_id="*", limit=100, offset=offset)
            for issue in page["issues"]:
                total += len(self.issue(issue["id"], include="journals").get("journals", []))
            offset += 100
            if offset >= page["total_count"]:
                return total


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    path = TESTBED_DIR / "testbed.json"
    required = os.environ.get("M2R_REQUIRE_REDMINE") == "1"
    try:
        info = json.loads(path.read_text())
        requests.get(f"{info['url']}/users/current.json", timeout=5,
                     headers={"X-Redmine-API-Key": info["admin_key"]}).raise_for_status()
    except (OSError, ValueError, KeyError, requests.RequestException) as exc:
        reason = f"test-bed Redmine not available ({exc}); start it with: testbed/redmine-testbed up"
        if required:
            pytest.fail(reason)
        pytest.skip(reason)
    return Testbed(info=info, url=info["url"], admin_key=info["admin_key"])


@dataclass
class Delivered:
    returncode: int
    stdout: str
    stderr: str
    log: str


class Site:
    """One operator's setup in a temporary home: config, key file, state dir, log."""

    def __init__(self, home: Path, url: str, key: str):
        self.home = home
        self.url = url
        self.key_file = home / "api-key"
        self.key_file.write_text(key)
        self.key_file.chmod(0o600)
        self.state_dir = home / "state"
        self.log_file = home / "m2r.log"
        self.config_path = home / "config.toml"
        self.write_config()

    def write_config(self, extra: str = "", *, issue: str = 'project = "helpdesk"\ntracker = "Support"',
                     redmine: str = "timeout = 10", url: str | None = None) -> Path:
        self.config_path.write_text(
            f'[redmine]\nurl = "{url or self.url}"\nkey_file = "{self.key_file}"\n{redmine}\n\n'
            f"[issue]\n{issue}\n\n"
            f'[state]\ndir = "{self.state_dir}"\n\n'
            f'[log]\nsyslog = false\nfile = "{self.log_file}"\n\n{extra}'
        )
        self.config_path.chmod(0o600)
        return self.config_path

    def deliver(self, mail: bytes, *args: str, timeout: float = 120, env: dict | None = None) -> Delivered:
        command = [console_script(), "--config", str(self.config_path), *args]
        proc = subprocess.run(command, input=mail, capture_output=True, timeout=timeout,
                              env={**os.environ, "HOME": str(self.home), **(env or {})})
        log = self.log_file.read_text() if self.log_file.exists() else ""
        return Delivered(proc.returncode, proc.stdout.decode(), proc.stderr.decode(), log)

    def last_log_line(self) -> str:
        lines = self.log_file.read_text().splitlines() if self.log_file.exists() else []
        return lines[-1] if lines else ""


@pytest.fixture
def site(tmp_path: Path, testbed: Testbed) -> Site:
    return Site(tmp_path, testbed.url, testbed.admin_key)


@pytest.fixture
def offline_site(tmp_path: Path) -> Site:
    """A site whose Redmine is a closed loopback port: for paths that must not need one."""
    return Site(tmp_path, "http://127.0.0.1:9", "0" * 40)


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex[:12]


def corpus_file(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared corpus not present: {path} (tests that read ../shared/corpus need it)")
    return path
