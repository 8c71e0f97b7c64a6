import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cli import main as cli_main
from cli.main import cli

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/x"
TOLLKEEPER_BIN = Path(sys.executable).parent / "tollkeeper"


def _all_commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*path, name))


def test_every_command_has_help(run_cli):
    paths = list(_all_commands(cli))
    assert ("keys", "create") in paths and ("client-env",) in paths
    for path in paths:
        result = run_cli(*path, "--help")
        assert result.exit_code == 0, path
        assert result.stdout.startswith(f"Usage: tollkeeper {' '.join(path)}")
    assert run_cli("-h").exit_code == 0


def test_version(run_cli):
    assert run_cli("--version").stdout.startswith("tollkeeper, version ")


def test_a_group_without_subcommand_shows_its_help(run_cli):
    result = run_cli("keys")
    assert "Commands:" in result.output and "create" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--db", UNREACHABLE, "keys", "list"],
        ["--db", UNREACHABLE, "usage"],
        ["--db", UNREACHABLE, "audit", "--json"],
    ],
)
def test_unreachable_database_is_a_one_line_error(run_cli, one_line_error, args):
    line = one_line_error(run_cli(*args), "database unavailable", "127.0.0.1")
    assert "nobody@127.0.0.1:1/x" in line


def test_unreachable_database_in_a_real_process(tk_home):
    env = {**os.environ, "TOLLKEEPER_HOME": str(tk_home)}
    env.pop("TOLLKEEPER_DEBUG", None)
    done = subprocess.run(
        [str(TOLLKEEPER_BIN), "--db", UNREACHABLE, "keys", "create", "--project", "p"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: database unavailable"), done.stderr


def test_password_in_database_url_is_not_shown(run_cli, one_line_error):
    url = "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/x"
    line = one_line_error(run_cli("--db", url, "keys", "list"), "database unavailable")
    assert "hunter2" not in line and "***" in line


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "bad database URL"),
        ("nosuchdialect://x/y", "bad database URL"),
    ],
)
def test_bad_database_url_is_a_one_line_error(run_cli, one_line_error, url, fragment):
    one_line_error(run_cli("--db", url, "keys", "list"), fragment)


def test_unusable_sqlite_path_is_a_one_line_error(run_cli, one_line_error, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'tollkeeper.db'}"
    one_line_error(run_cli("--db", url, "keys", "list"), "cannot open database")


def test_home_option_and_environment_choose_the_database(run_cli, tk_home, tmp_path, monkeypatch):
    other = tmp_path / "other-home"
    assert run_cli("--home", str(other), "keys", "create", "--project", "p").exit_code == 0
    assert (other / "tollkeeper.db").exists() and not (tk_home / "tollkeeper.db").exists()
    monkeypatch.setenv("TOLLKEEPER_DB", f"sqlite:///{other / 'tollkeeper.db'}")
    assert len(json.loads(run_cli("keys", "list", "--json").stdout)) == 1
    assert not (tk_home / "tollkeeper.db").exists()


def test_default_database_is_sqlite_in_the_home(run_cli, tk_home):
    assert run_cli("keys", "create", "--project", "p").exit_code == 0
    assert (tk_home / "tollkeeper.db").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["--bogus"], "No such option '--bogus'"),
        (["keys", "show"], "Missing argument 'KEY_ID'"),
        (["keys", "list", "--colour"], "No such option '--colour'"),
    ],
)
def test_usage_errors_are_one_line_with_a_hint(run_cli, one_line_error, args, fragment):
    result = run_cli(*args)
    one_line_error(result, fragment, "--help")
    assert result.exit_code == 2


def _failing_main(monkeypatch, capsys) -> tuple[int, str]:
    @cli.command(name="explode")
    def explode() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(sys, "argv", ["tollkeeper", "explode"])
    try:
        with pytest.raises(SystemExit) as exc:
            cli_main.main()
    finally:
        cli.commands.pop("explode")
    return int(exc.value.code or 0), capsys.readouterr().err


def test_main_reports_a_bug_in_one_line(monkeypatch, capsys, tk_home):
    code, err = _failing_main(monkeypatch, capsys)
    assert code == 1
    assert err.splitlines() == [
        "Error: internal error (RuntimeError); rerun with TOLLKEEPER_DEBUG=1 to see the traceback"
    ]


def test_main_shows_the_traceback_with_debug(monkeypatch, tk_home):
    monkeypatch.setenv("TOLLKEEPER_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["tollkeeper", "explode"])

    @cli.command(name="explode")
    def explode() -> None:
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError, match="boom"):
            cli_main.main()
    finally:
        cli.commands.pop("explode")
