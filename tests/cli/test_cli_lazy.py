"""Commands are imported when they run, and every one is still listed and reachable."""

from __future__ import annotations

import os
import subprocess
import sys

import click

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


def test_keys_list_imports_no_sqlalchemy(tmp_path):
    """`keys list` on a database at head reads it with the DB-API driver alone
    (addon.store.quick): SQLAlchemy and SQLModel are most of a command's start-up."""
    from addon.store.db import open_store

    url = f"sqlite:///{tmp_path / 'tollkeeper.db'}"
    open_store(url).dispose()
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'alembic'))))\n"
        "from cli.main import main\n"
        "main()\n"
    )
    env = {**os.environ, "TOLLKEEPER_HOME": str(tmp_path), "TOLLKEEPER_DB": url}
    env.pop("TOLLKEEPER_DEBUG", None)
    for args in (["list"], ["list", "--json"], ["list", "--all"], ["list", "--project", "p"]):
        out = subprocess.run(
            [sys.executable, "-c", code, "keys", *args],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        assert out.stdout.splitlines()[-1] == "[]", (args, out.stdout, out.stderr)


def test_the_usage_report_imports_no_sqlalchemy_nor_its_subcommands(tmp_path):
    """`usage` by a grouping the rollups answer reads them with the DB-API driver alone
    (addon.store.quick_report); its subcommands' modules stay unloaded."""
    from addon.store.db import open_store

    url = f"sqlite:///{tmp_path / 'tollkeeper.db'}"
    open_store(url).dispose()
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'alembic', 'cryptography')"
        " or m in ('cli.usage_log', 'cli.usage_rollups', 'cli.prices'))))\n"
        "from cli.main import main\n"
        "main()\n"
    )
    env = {**os.environ, "TOLLKEEPER_HOME": str(tmp_path), "TOLLKEEPER_DB": url}
    env.pop("TOLLKEEPER_DEBUG", None)
    for args in ([], ["--by", "day", "--json"], ["--by", "key", "--since", "2026-01-01"]):
        out = subprocess.run(
            [sys.executable, "-c", code, "usage", *args],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        assert out.stdout.splitlines()[-1] == "[]", (args, out.stdout, out.stderr)


def test_the_usage_subcommands_are_reachable():
    usage = cli.commands["usage"]
    assert isinstance(usage, click.Group)
    assert sorted(usage.commands) == ["log", "prune", "rebuild", "reprice"]
    assert all(usage.commands[name].name == name for name in usage.commands)
