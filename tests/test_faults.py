"""Every failure class gives exit 75 and prints nothing: against servers that misbehave
on loopback, a closed port, and broken configs. (The real Redmine's refusals are in
test_delivery.py.)"""

import json

import pytest

from support.fakeserver import answering, misbehaving
from support.mails import make_mail


def assert_silent_tempfail(result, *log_words):
    assert result.returncode == 75, result
    assert result.stdout == "" and result.stderr == ""
    last = result.log.strip().splitlines()[-1]
    assert "decision=tempfail" in last
    for word in log_words:
        assert word in last, last


def test_connection_refused(offline_site):
    result = offline_site.deliver(make_mail())
    assert_silent_tempfail(result, "fault=redmine", "connection failed")


def test_server_that_never_answers_is_cut_off_by_the_timeout(offline_site):
    with misbehaving("hang") as url:
        offline_site.write_config(url=url, redmine="timeout = 2")
        result = offline_site.deliver(make_mail(), timeout=60)
    assert_silent_tempfail(result, "fault=redmine", "no answer within the timeout")


def test_connection_reset(offline_site):
    with misbehaving("reset") as url:
        offline_site.write_config(url=url)
        result = offline_site.deliver(make_mail())
    assert_silent_tempfail(result, "fault=redmine", "connection failed")


@pytest.mark.parametrize("status,words", [
    (500, "500 Internal Server Error"),
    (502, "HTTP 502"),
    (503, "HTTP 503"),
    (429, "HTTP 429"),
    (401, "401 Unauthorized"),
    (403, "403 Forbidden"),
    (409, "409 Conflict"),
])
def test_temporary_http_statuses(offline_site, status, words):
    with answering(status) as (url, seen):
        offline_site.write_config(url=url)
        result = offline_site.deliver(make_mail())
    assert seen, "the fake server was never asked"
    assert_silent_tempfail(result, "fault=redmine", words)


def test_refusals_are_the_mails_fault_and_still_keep_the_mail(offline_site):
    body = json.dumps({"errors": ["Subject cannot be blank"]}).encode()
    me = json.dumps({"user": {"id": 7, "login": "gateway", "admin": False}}).encode()
    with answering(422, body, paths={"/users/current.json": (200, me)}) as (url, seen):
        offline_site.write_config(url=url, issue='project = "7"\ntracker = "3"')
        result = offline_site.deliver(make_mail())
    assert any(method == "POST" and path.endswith("issues.json") for method, path in seen)
    assert result.returncode == 75 and result.stdout == "" and result.stderr == ""
    assert "fault=mail" in result.log and "Subject cannot be blank" in result.log


def test_the_api_key_is_sent_in_a_header_never_in_the_url(offline_site):
    """python-redmine before 2.5 (Debian 12 ships 2.3.0) puts the key in the query string,
    from where it would reach Redmine's access log and the text of every connection error."""
    key = "feedface" * 5
    offline_site.key_file.write_text(key)
    refused = offline_site.deliver(make_mail())
    me = json.dumps({"user": {"id": 7, "login": "gateway", "admin": False}}).encode()
    with answering(503, paths={"/users/current.json": (200, me)}) as (url, seen):
        offline_site.write_config(url=url, issue='project = "7"\ntracker = "3"')
        answered = offline_site.deliver(make_mail())
    assert_silent_tempfail(refused, "connection failed")
    assert_silent_tempfail(answered, "HTTP 503")
    assert seen and not [path for _, path in seen if key in path]
    assert key not in refused.log + answered.log


def test_a_proxy_error_page_instead_of_json(offline_site):
    with answering(200, b"<html>maintenance</html>", "text/html") as (url, _):
        offline_site.write_config(url=url, issue='project = "7"')
        result = offline_site.deliver(make_mail())
    assert_silent_tempfail(result, "not Redmine's JSON")


def test_missing_config_file(offline_site):
    offline_site.config_path.unlink()
    result = offline_site.deliver(make_mail())
    assert result.returncode == 75 and result.stdout == "" and result.stderr == ""


def test_unparseable_config_file_goes_to_syslog_only(offline_site):
    offline_site.config_path.write_text("[redmine\n")
    result = offline_site.deliver(make_mail())
    assert result.returncode == 75 and result.stdout == "" and result.stderr == ""
    assert result.log == ""


def test_invalid_config_is_logged_where_it_says(offline_site):
    offline_site.write_config("[colour]\n")
    assert_silent_tempfail(offline_site.deliver(make_mail()), "fault=config", "[colour]: unknown section")


def test_unknown_flag_is_a_config_error_not_a_bounce(offline_site):
    result = offline_site.deliver(make_mail(), "--frobnicate")
    assert (result.returncode, result.stdout, result.stderr) == (75, "", "")
    # Before the config is read there is no log file: the account goes to syslog, and with
    # --verbose to stderr, where it shows the class of the failure.
    shown = offline_site.deliver(make_mail(), "--frobnicate", "--verbose")
    assert shown.returncode == 75 and shown.stdout == ""
    assert "decision=tempfail fault=config" in shown.stderr and "unrecognized arguments: --frobnicate" in shown.stderr


def test_empty_input_is_retried_then_quarantined(offline_site):
    """Nothing to file, but no reason for a mail system to retry it forever either."""
    statuses = [offline_site.deliver(b"").returncode for _ in range(4)]
    assert statuses == [75, 75, 0, 0]
    assert "fault=mail" in offline_site.log_file.read_text() and "empty input" in offline_site.log_file.read_text()
    [kept] = (offline_site.state_dir / "quarantine" / "new").iterdir()
    assert kept.read_bytes() == b""


def test_verbose_prints_the_account_on_stderr(offline_site):
    result = offline_site.deliver(make_mail(), "-v")
    assert result.returncode == 75 and result.stdout == ""
    assert "decision=tempfail" in result.stderr and "connection failed" in result.stderr


def test_a_bug_before_delivery_starts_keeps_the_mail_silently(offline_site, monkeypatch, capsys):
    """Fault injection in-process: whatever goes wrong before the pass (here: loading the
    config raises something unexpected), the mail system sees 75 and no output."""
    import io
    import sys

    from m2r_deliver import cli

    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(cli, "load", broken)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(make_mail())))  # a mail system's pipe, not a terminal
    status = cli.main(["--config", str(offline_site.config_path)], env={"HOME": str(offline_site.home)})
    assert status == 75
    assert capsys.readouterr() == ("", "")


def test_a_bug_that_escapes_the_pass_keeps_the_mail_silently(offline_site, monkeypatch, capsys):
    """The pass catches its own failures; this is the net behind it (fault injection:
    the pass itself raises)."""
    import io
    import sys

    from m2r_deliver import cli, pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(pipeline, "deliver", broken)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(make_mail())))
    status = cli.main(["--config", str(offline_site.config_path)], env={"HOME": str(offline_site.home)})
    assert status == 75
    assert capsys.readouterr() == ("", "")
    assert "fault=ours" in offline_site.log_file.read_text() and "RuntimeError: injected" in offline_site.log_file.read_text()
