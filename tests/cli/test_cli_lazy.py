"""Commands are imported when they run, and every one is still listed and reachable."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from cli.lazy import LazyCommands
from cli.main import COMMANDS, cli


def test_a_command_is_imported_only_when_it_is_looked_up():
    built: list[str] = []

    def make(name: str):
        def spec() -> click.Command:
            built.append(name)
            return click.Command(name)

        return spec

    commands = LazyCommands({"a": make("a"), "b": make("b")})
    assert "a" in commands and len(commands) == 2 and built == []
    assert commands["a"].name == "a" and built == ["a"]
    assert commands.get("b") is not None and built == ["a", "b"]
    assert commands.get("c") is None


def test_listing_the_commands_loads_them_all():
    commands = LazyCommands({"x": "cli.audit:audit"})
    assert [c.name for c in commands.values()] == ["audit"]


def test_every_registered_command_loads_and_has_its_name():
    for name in COMMANDS:
        assert cli.commands[name].name == name


def test_keys_list_does_not_import_the_other_commands():
    """What `tollkeeper keys list` imports: not the usage, serve or report modules."""
    code = (
        "import sys; from cli.main import cli; cli.commands['keys'];"
        "print(sorted(m for m in sys.modules if m.startswith('cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for module in ("cli.usage", "cli.serve", "cli.report", "cli.usage_log", "cli.prices"):
        assert f"'{module}'" not in out.stdout, out.stdout
    assert "'cli.keys'" in out.stdout


@pytest.fixture
def at_head(tmp_path) -> dict[str, str]:
    """The environment of a command on a SQLite store already at the migrations' head."""
    from addon.store.db import open_store

    url = f"sqlite:///{tmp_path / 'tollkeeper.db'}"
    open_store(url).dispose()
    env = {**os.environ, "TOLLKEEPER_HOME": str(tmp_path), "TOLLKEEPER_DB": url}
    env.pop("TOLLKEEPER_DEBUG", None)
    return env


def loaded(env: dict[str, str], watched: str, *args: str) -> str:
    """The last line `tollkeeper ARGS` prints in a fresh interpreter: the sorted modules it
    loaded that ``watched`` (a condition on the module name ``m``) selects."""
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print(sorted(m for m in sys.modules if {watched})))\n"
        "from cli.main import main\n"
        "main()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.splitlines()[-1] if out.stdout else out.stderr


SQLALCHEMY = "m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'alembic')"


def test_keys_list_imports_no_sqlalchemy(at_head):
    """`keys list` on a database at head reads it with the DB-API driver alone
    (addon.store.quick): SQLAlchemy and SQLModel are most of a command's start-up."""
    for args in (["list"], ["list", "--json"], ["list", "--all"], ["list", "--project", "p"]):
        assert loaded(at_head, SQLALCHEMY, "keys", *args) == "[]", args


def test_the_usage_report_imports_no_sqlalchemy_nor_its_subcommands(at_head):
    """`usage` by a grouping the rollups answer reads them with the DB-API driver alone
    (addon.store.quick_report); its subcommands' modules and the vault stay unloaded."""
    watched = (
        f"{SQLALCHEMY} or m.split('.')[0] == 'cryptography'"
        " or m in ('cli.usage_log', 'cli.usage_rollups', 'cli.prices')"
    )
    for args in ([], ["--by", "day", "--json"], ["--by", "key", "--since", "2026-01-01"]):
        assert loaded(at_head, watched, "usage", *args) == "[]", args


def test_the_usage_subcommands_are_reachable():
    usage = cli.commands["usage"]
    assert isinstance(usage, click.Group)
    assert sorted(usage.commands) == ["log", "prune", "rebuild", "reprice"]
    assert all(usage.commands[name].name == name for name in usage.commands)
