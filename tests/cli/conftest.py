"""CLI test fixtures: run ``tollkeeper`` in-process against the test database.

Helpers are fixtures (not an importable module) so they work with any pytest import mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from addon.store.db import open_store
from cli.main import cli

Run = Callable[..., Result]


@pytest.fixture
def run_cli(tk_home: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run_cli(*args, input=None, env=None)``: invoke the CLI as a user would, no --db."""
    monkeypatch.delenv("TOLLKEEPER_ACTOR", raising=False)
    monkeypatch.delenv("TOLLKEEPER_DEBUG", raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    return run


@pytest.fixture
def tk(run_cli: Run, db_url: str) -> Run:
    """``tk(*args, actor="tester", …)``: the CLI on the test database with a fixed actor."""

    def run(*args: str, actor: str | None = "tester", **kwargs: object) -> Result:
        prefix = ["--db", db_url] + (["--actor", actor] if actor else [])
        return run_cli(*prefix, *args, **kwargs)

    return run


@pytest.fixture
def ok(tk: Run) -> Run:
    """Like ``tk`` but asserts success, showing stderr when it fails."""

    def run(*args: str, **kwargs: object) -> Result:
        result = tk(*args, **kwargs)
        assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
        return result

    return run


@pytest.fixture
def store(migrated_db_url: str) -> Iterator[Engine]:
    """An engine on the test database, for setting up and checking rows directly."""
    engine = open_store(migrated_db_url)
    yield engine
    engine.dispose()


def check_one_line_error(result: Result, *fragments: str) -> str:
    """Assert a failed run printed exactly one ``Error:`` line on stderr and nothing else."""
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def one_line_error() -> Callable[..., str]:
    """``one_line_error(result, *fragments)``: see ``check_one_line_error``."""
    return check_one_line_error
