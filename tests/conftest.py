"""The suite's fixtures: the test-bed Redmine, a private site per test, a fresh token; and
the layers. Every test that uses the test bed (the ``testbed`` fixture, or ``site``, which
needs it) is marked ``redmine``; the mail-chain tests under e2e/ are also marked ``e2e``:

    pytest -m "not redmine"      the fast layer: no Redmine, no mail system
    pytest -m "redmine and not e2e"
    pytest -m e2e

Helpers live in the ``support`` package (see tests/README.md)."""

from __future__ import annotations

import functools
import json
import os
import uuid
from pathlib import Path

import pytest
import requests

from support.paths import ROOT, TESTBED_DIR, in_ci
from support.secretscan import OUTPUTS, known_keys, leaks, recording_subprocess
from support.testbed import Site, Testbed, smtp_answers

E2E_DIR = ROOT / "tests" / "e2e"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "testbed" in item.fixturenames:
            item.add_marker(pytest.mark.redmine)
        if Path(str(item.fspath)).is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


def pytest_runtest_logreport(report) -> None:
    """Every test's captured output and failure report, for the secret scan."""
    for name, text in report.sections:
        OUTPUTS.append((report.nodeid, name, text))
    if report.longrepr:
        OUTPUTS.append((report.nodeid, "failure report", str(report.longrepr)))


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_output(tmp_path_factory):
    """At the end of the run: no file under the run's temporary directory, no captured
    output, holds an API key of the test bed (support/secretscan.py)."""
    with recording_subprocess():
        yield
    keys = known_keys(TESTBED_DIR / "testbed.json")
    found = leaks([tmp_path_factory.getbasetemp()], OUTPUTS, keys) if keys else []
    if found:
        pytest.fail("an API key of the test bed is in: " + ", ".join(found[:20]), pytrace=False)


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    path = TESTBED_DIR / "testbed.json"
    try:
        info = json.loads(path.read_text())
        requests.get(f"{info['url']}/users/current.json", timeout=5,
                     headers={"X-Redmine-API-Key": info["admin_key"]}).raise_for_status()
        if info.get("notifications") == "smtp" and not smtp_answers():
            raise OSError("it sends its notifications to 127.0.0.1:25, where no Postfix answers")
    except (OSError, ValueError, KeyError, requests.RequestException) as exc:
        reason = f"test-bed Redmine not available ({exc}); start it with: testbed/redmine-testbed up"
        if os.environ.get("M2R_REQUIRE_REDMINE") == "1" or in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return Testbed(info=info, url=info["url"], admin_key=info["admin_key"])


@pytest.fixture
def site(request, tmp_path: Path, testbed: Testbed) -> Site:
    """An operator's setup around the installed program, filing into the test bed. In a
    module marked ``patient`` the program waits a minute for an answer, not ten seconds
    (the shared Redmine answers slowly to uploads while other suites run)."""
    site = Site(tmp_path, testbed.url, testbed.admin_key)
    if request.node.get_closest_marker("patient"):
        site.write_config = functools.partial(site.write_config, redmine="timeout = 60")
        site.write_config()
    return site


@pytest.fixture
def offline_site(tmp_path: Path) -> Site:
    """A site whose Redmine is a closed loopback port: for paths that must not need one."""
    return Site(tmp_path, "http://127.0.0.1:9", "0" * 40)


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex[:12]
