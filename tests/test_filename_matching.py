"""Tests mirror modules: every module under addon/ and cli/ has a test file of its own.

Like mitmproxy's ``test/filename_matching.py``. A module ``addon/…/name.py`` is mirrored by a
``test_name.py`` anywhere under tests/ that imports it (so tests/unit/test_errors.py, which
imports addon.errors, does not count for addon/store/errors.py). A ``cli/name.py`` is also
mirrored by a ``test_cli_name.py`` whatever it imports: CLI tests drive the commands through
``cli.main``, and the prefix already keeps them apart from the addon's tests.

A module without one is listed in ``WITHOUT_TEST_FILE`` with the reason, and the list is kept
honest both ways: an entry for a module that is gone, or that has since got its test file,
fails too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PACKAGES = ("addon", "cli")
NOT_MODULES = ("addon/migrations/versions",)  # Alembic revisions, checked by test_migrations

# module path -> why it has no test_<module>.py. Keep it sorted; one line each.
WITHOUT_TEST_FILE: dict[str, str] = {
    "addon/dashboard/tables.py": "the dashboard's HTML tables; tests/unit/dashboard/test_page.py",
    "addon/flowstate.py": "per-flow table; driven through the hooks in tests/addon",
    "addon/gateway.py": "the mitmdump entry script; every test in tests/integration loads it",
    "addon/injector.py": "real-key injection; driven through tests/addon and tests/integration",
    "addon/journal.py": "the writer's journal; tests/unit/test_writer_faults.py",
    "addon/metering/usage.py": "the Usage value type; used by every test in tests/unit/metering",
    "addon/migrations/env.py": "Alembic's env script; run by tests/unit/store/test_migrations.py",
    "addon/moments.py": "--since/--until parsing; tests/cli/test_cli_parse.py",
    "addon/pricing/charge.py": "media charges; tests/unit/pricing/test_media.py",
    "addon/pricing/price.py": "the Price value type; tests/unit/pricing/test_cost.py, test_table",
    "addon/providers/base.py": "provider base types; tests/unit/providers/test_registry.py",
    "addon/runtime.py": "the addon's running state; tests/addon and tests/integration",
    "addon/settings.py": "environment settings; tests/cli/test_cli_context.py, tests/conftest.py",
    "addon/store/alerts_repo.py": "alert claims; tests/unit/test_alert_watcher.py (both databases)",
    "addon/store/audit_repo.py": "audit events; tests/unit/store/test_keys_repo.py, tests/cli",
    "addon/store/changes.py": "change stamps; tests/unit/test_keycache.py (refresh)",
    "addon/store/custom_providers_repo.py": "tests/cli/test_cli_provider_definitions.py",
    "addon/store/errors.py": "store errors; tests/unit/store/test_keys_repo.py, test_realkeys_repo",
    "addon/store/models.py": "the tables; every test in tests/unit/store",
    "addon/store/record_cost.py": "cost of a stored record; tests/unit/store/test_reprice.py",
    "addon/store/report_repo.py": "dashboard queries; tests/unit/dashboard/test_data.py",
    "addon/store/retention.py": "prune and rebuild; tests/unit/store/test_rollups.py, tests/cli",
    "addon/store/timeouts.py": "constants; tests/unit/store/test_db_timeouts.py",
    "addon/writer_replay.py": "spool replay of the writer; tests/unit/test_writer*.py",
    "cli/key_test.py": "`keys test`; tests/cli/test_cli_keys.py",
}


def modules() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if path.name == "__init__.py" or any(rel.is_relative_to(n) for n in NOT_MODULES):
                continue
            yield rel


def dotted(module: Path) -> str:
    return ".".join(module.with_suffix("").parts)


def mirror_names(module: Path) -> tuple[str, ...]:
    names = [f"test_{module.stem}.py"]
    if module.parts[0] == "cli":
        names.append(f"test_cli_{module.stem}.py")
    return tuple(names)


@cache
def files_by_name() -> dict[str, list[Path]]:
    """Every ``test_*.py`` under tests/, by file name."""
    by_name: dict[str, list[Path]] = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        by_name.setdefault(path.name, []).append(path)
    return by_name


@cache
def imported_by(test_file: Path) -> frozenset[str]:
    """Every dotted name a test file imports, ``from a import b`` giving ``a`` and ``a.b``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(test_file.read_text(), str(test_file))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def mirrors(module: Path) -> list[Path]:
    """The test files that mirror ``module`` (see the module docstring)."""
    found = []
    for name in mirror_names(module):
        for test_file in files_by_name().get(name, ()):
            if name.startswith("test_cli_") or dotted(module) in imported_by(test_file):
                found.append(test_file.relative_to(ROOT))
    return found


def test_every_module_has_a_test_file_or_a_listed_reason() -> None:
    missing = [m for m in modules() if str(m) not in WITHOUT_TEST_FILE and not mirrors(m)]
    lines = [
        f"{m} has no test file: add {_wanted(m)}, or list it in WITHOUT_TEST_FILE in "
        f'{_here()} as "{m}": "<why it has no test file of its own>",'
        for m in missing
    ]
    assert not missing, "\n".join(lines)


def test_every_listed_module_exists_and_still_lacks_a_test_file() -> None:
    existing = {str(m): m for m in modules()}
    gone = [name for name in WITHOUT_TEST_FILE if name not in existing]
    tested = {name: mirrors(existing[name]) for name in WITHOUT_TEST_FILE if name in existing}
    lines = [
        f"{name} is listed in WITHOUT_TEST_FILE in {_here()} but does not exist: remove its line"
        for name in gone
    ]
    lines += [
        f"{name} is listed in WITHOUT_TEST_FILE in {_here()} but has {', '.join(map(str, files))}"
        ": remove its line"
        for name, files in tested.items()
        if files
    ]
    assert not lines, "\n".join(lines)


def test_the_list_is_sorted() -> None:
    wanted = sorted(WITHOUT_TEST_FILE)
    assert list(WITHOUT_TEST_FILE) == wanted, f"sort WITHOUT_TEST_FILE in {_here()}: {wanted}"


def _wanted(module: Path) -> str:
    own = f"a test_{module.stem}.py under tests/ that imports {dotted(module)}"
    return f"tests/cli/test_cli_{module.stem}.py or {own}" if module.parts[0] == "cli" else own


def _here() -> Path:
    return Path(__file__).resolve().relative_to(ROOT)
