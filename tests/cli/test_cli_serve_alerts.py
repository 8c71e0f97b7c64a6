"""``serve --alert-webhook``: handed to the gateway in its environment, never printed whole."""

import shlex

from cli import serve

HOOK = "https://hooks.example.com/services/T000/B000/SECRETTOKEN"


def test_the_webhook_goes_to_the_gateway_in_its_environment(run_cli, monkeypatch):
    calls = []
    monkeypatch.setattr(serve.os, "execve", lambda *a: calls.append(a))
    result = run_cli("serve", "--alert-webhook", HOOK)
    assert result.exit_code == 0, result.stderr
    ((_, argv, env),) = calls
    assert env["TOLLKEEPER_ALERT_WEBHOOK"] == HOOK
    assert not any("SECRETTOKEN" in a for a in argv)  # not visible in ps


def test_dry_run_shows_the_webhook_without_its_path(run_cli):
    result = run_cli("serve", "--dry-run", "--alert-webhook", HOOK)
    assert result.exit_code == 0, result.stderr
    assert "TOLLKEEPER_ALERT_WEBHOOK=https://hooks.example.com/…" in shlex.split(result.stdout)
    assert "SECRETTOKEN" not in result.output


def test_a_bad_webhook_is_a_one_line_error(run_cli, one_line_error):
    one_line_error(run_cli("serve", "--dry-run", "--alert-webhook", "hooks.example.com"), "http")
