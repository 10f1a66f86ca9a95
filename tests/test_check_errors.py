"""Every documented setup mistake, run through ``m2r-deliver check`` against the real
thing — a closed port, a name that does not resolve, a plain-HTTP server on loopback
asked for https, the test-bed Redmine with a page as url, a wrong key, unknown names —
and the message must name the fix, whole (never cut before the cause)."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading

import pytest

from support.paths import console_script
from support.testbed import Site


def check(site: Site, *args: str) -> str:
    done = subprocess.run([console_script(), "check", "--config", str(site.config_path), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                          env={"HOME": str(site.home), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stdout
    assert done.stderr == ""
    return done.stdout


def failures(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL ")]


def closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connect() is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_says_nothing_listens(tmp_path):
    site = Site(tmp_path, f"http://127.0.0.1:{closed_port()}", "0" * 40)
    [line] = failures(check(site))
    assert "nothing listens at that address" in line and "is Redmine running?" in line
    assert "is [redmine] url right" in line and "…" not in line


def test_an_unknown_host_is_named(tmp_path):
    site = Site(tmp_path, "http://redmine.host-that-does-not-exist.invalid", "0" * 40)
    [line] = failures(check(site))
    assert "unknown host redmine.host-that-does-not-exist.invalid" in line
    assert "host name in [redmine] url" in line and "…" not in line


@pytest.fixture
def plain_http_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_https_on_a_plain_http_port_says_use_http(tmp_path, plain_http_server):
    site = Site(tmp_path, f"https://127.0.0.1:{plain_http_server}", "0" * 40)
    [line] = failures(check(site))
    assert "WRONG_VERSION_NUMBER" in line and "speaks plain HTTP" in line and "use http://" in line


def test_a_project_page_as_url_says_use_the_base_url(tmp_path, testbed):
    site = Site(tmp_path, f"{testbed.url}/projects/helpdesk", testbed.admin_key)
    [line] = failures(check(site))
    assert "404" in line and "[redmine] url must be Redmine's base URL" in line


def test_a_wrong_key_says_where_the_key_is_and_that_the_api_must_be_on(tmp_path, testbed):
    site = Site(tmp_path, testbed.url, "0" * 40)
    [line] = failures(check(site))
    assert "401" in line and "My account » API access key" in line
    assert "Administration » Settings » API » Enable REST web service" in line


def test_an_unknown_project_lists_the_projects(tmp_path, testbed):
    site = Site(tmp_path, testbed.url, testbed.admin_key)
    [line] = failures(check(site, "--project", "no-such-project"))
    assert "project 'no-such-project' not found" in line
    assert "the names that exist:" in line and "'helpdesk'" in line and "'ops'" in line


def test_unknown_tracker_status_and_priority_list_the_names_that_exist(tmp_path, testbed):
    site = Site(tmp_path, testbed.url, testbed.admin_key)
    out = check(site, "--tracker", "Suport", "--status", "Neu", "--priority", "Hihg")
    lines = failures(out)
    tracker = next(line for line in lines if "tracker 'Suport'" in line)
    assert "the names that exist:" in tracker and "'Support'" in tracker and "'Bug'" in tracker
    status = next(line for line in lines if "status 'Neu'" in line)
    assert "'New'" in status
    priority = next(line for line in lines if "priority 'Hihg'" in line)
    assert "'High'" in priority and "'Normal'" in priority


def test_the_default_example_config_passes_check_on_the_test_bed(tmp_path, testbed):
    from support.paths import ROOT
    key = tmp_path / "api-key"
    key.write_text(testbed.admin_key)
    key.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "examples" / "config.toml").read_text()
                      .replace("https://redmine.example.org", testbed.url)
                      .replace("~/.config/m2r-deliver/api-key", str(key)))
    config.chmod(0o600)
    done = subprocess.run([console_script(), "check", "--config", str(config)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and failures(done.stdout) == [], done.stdout
    assert "ok   [issue]: project 'helpdesk'" in done.stdout
