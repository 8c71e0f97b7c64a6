import shlex
import sys
from pathlib import Path

import pytest

import addon
from cli import serve

VENV_BIN = Path(sys.executable).parent
GATEWAY = Path(addon.__file__).resolve().parent / "gateway.py"


def _command(run_cli, *args: str) -> list[str]:
    result = run_cli("serve", "--dry-run", *args)
    assert result.exit_code == 0, result.stderr
    return shlex.split(result.stdout)


def test_default_is_mitmdump_from_this_venv_with_the_gateway_on_8080(run_cli):
    assert _command(run_cli) == [
        str(VENV_BIN / "mitmdump"),
        "-s",
        str(GATEWAY),
        "--mode",
        "regular@127.0.0.1:8080",
    ]


def test_reverse_listeners_and_port(run_cli):
    command = _command(
        run_cli, "--port", "9000", "--openai-port", "8081", "--anthropic-port", "8082"
    )
    assert command[3:] == [
        "--mode",
        "regular@127.0.0.1:9000",
        "--mode",
        "reverse:https://api.openai.com@127.0.0.1:8081",
        "--mode",
        "reverse:https://api.anthropic.com@127.0.0.1:8082",
    ]


def test_web_uses_mitmweb_with_its_ui_off_the_reverse_listener_ports(run_cli):
    command = _command(run_cli, "--web", "--openai-port", "8081")
    assert command[0] == str(VENV_BIN / "mitmweb")
    assert command[command.index("web_port=8090") - 1] == "--set"


def test_web_shows_the_comment_column_one_set_per_column(run_cli):
    """web_columns is a sequence option: one --set per value (a comma list is one bad name)."""
    command = _command(run_cli, "--web")
    columns = [w.removeprefix("web_columns=") for w in command if w.startswith("web_columns=")]
    assert columns == list(serve.WEB_COLUMNS) and columns[-1] == "comment"
    assert all(command[command.index(f"web_columns={c}") - 1] == "--set" for c in columns)
    assert not [w for w in _command(run_cli) if w.startswith("web_")]  # mitmdump has no UI


def test_gemini_reverse_listener(run_cli):
    command = _command(run_cli, "--gemini-port", "8083")
    assert command[5:] == [
        "--mode",
        "reverse:https://generativelanguage.googleapis.com@127.0.0.1:8083",
    ]


def test_arguments_after_double_dash_go_to_mitmproxy(run_cli):
    command = _command(run_cli, "--host", "10.1.2.3", "--", "--set", "confdir=/etc/tk", "-q")
    assert command[4] == "regular@10.1.2.3:8080"
    assert command[-3:] == ["--set", "confdir=/etc/tk", "-q"]


def test_global_settings_are_passed_in_the_environment_without_passwords(run_cli, tmp_path):
    result = run_cli(
        "--home", str(tmp_path), "--db", "postgresql://u:hunter2@db/tk", "serve", "--dry-run"
    )
    words = shlex.split(result.stdout)
    assert words[0] == f"TOLLKEEPER_HOME={tmp_path}"
    assert words[1] == "TOLLKEEPER_DB=postgresql://u:***@db/tk"
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--openai-port", "8080"], "ports must differ"),
        (["--gemini-port", "8081", "--openai-port", "8081"], "ports must differ"),
        (["--web", "--web-port", "8081", "--openai-port", "8081"], "ports must differ"),
        (["--port", "0"], "Invalid value for '--port'"),
        (["--port", "70000"], "Invalid value for '--port'"),
        (["--admin", "127.0.0.1:8080"], "ports must differ"),
        (["--port", "8089"], "ports must differ"),  # the admin listener's default
        (["--admin", "8089"], "--admin must be HOST:PORT or off"),
    ],
)
def test_bad_ports_fail_in_one_line(run_cli, one_line_error, args, fragment):
    one_line_error(run_cli("serve", "--dry-run", *args), fragment)


def test_admin_listener_address_goes_to_the_addon(run_cli):
    words = _command(run_cli, "--admin", "127.0.0.1:9100")
    assert words[words.index("tollkeeper_admin=127.0.0.1:9100") - 1] == "--set"
    assert "tollkeeper_admin=off" in _command(run_cli, "--admin", "off")
    assert not [w for w in _command(run_cli) if w.startswith("tollkeeper_admin")]
    assert _command(run_cli, "--port", "8089", "--admin", "off")


def test_real_run_execs_mitmproxy(run_cli, monkeypatch):
    calls = []
    monkeypatch.setattr(serve.os, "execve", lambda *a: calls.append(a))
    result = run_cli("--db", "sqlite:////tmp/x.db", "serve", "--port", "18080")
    assert result.exit_code == 0, result.stderr
    ((path, argv, env),) = calls
    assert path == str(VENV_BIN / "mitmdump") and argv[0] == path
    assert argv[-1] == "regular@127.0.0.1:18080"
    assert env["TOLLKEEPER_DB"] == "sqlite:////tmp/x.db"


def test_missing_mitmproxy_is_a_one_line_error(run_cli, one_line_error, monkeypatch, tmp_path):
    monkeypatch.setattr(serve.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    one_line_error(run_cli("serve", "--dry-run"), "mitmdump not found")
