"""The coverage floor of every module under addon/ and cli/, checked by ``scripts/test --cov``.

Reads the ``.coverage`` data of a whole-suite run and fails, one line per module, when a
module's line coverage is below its floor. Only the pytest process is measured (unit, addon
and in-process CLI tests); code that runs only inside the integration tests' mitmdump or
``tollkeeper`` subprocesses counts as not executed, which is why some floors are lower.

The spool, the quarantine (record_keeper) and the limit periods are held at 100 %: every path
that keeps a record through an outage, and every budget period, must be executed.

Usage: ``python tests/coverage_floor.py [DATA_FILE]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("addon", "cli")
NOT_MEASURED = ("addon/migrations/versions",)
DEFAULT_FLOOR = 80.0

# module -> its floor in percent, where it differs from DEFAULT_FLOOR (and why, for lower ones)
FLOORS: dict[str, float] = {
    # only ever run inside mitmdump (the integration tests' subprocess)
    "addon/gateway.py": 0.0,  # mitmdump's -s script: builds the addon list
    "addon/runtime.py": 65.0,  # the threads, listener and store of a running gateway
    "addon/sweeper.py": 70.0,  # its thread's loop
    # what keeps a record through an outage, and what refuses a request
    "addon/limits.py": 100.0,
    "addon/record_keeper.py": 90.0,
    "addon/spool.py": 100.0,
    "addon/store/limits_repo.py": 100.0,
}


def modules() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if not any(rel.is_relative_to(n) for n in NOT_MEASURED):
                found.append(rel)
    return found


def percent(cov: coverage.Coverage, module: Path) -> tuple[float, str]:
    """Line coverage of ``module`` and its missing lines (``1-3, 7``)."""
    _, statements, _, missing, shown = cov.analysis2(str(ROOT / module))
    if not statements:
        return 100.0, ""
    return 100.0 * (len(statements) - len(missing)) / len(statements), shown


def below_floor(data_file: Path) -> list[str]:
    cov = coverage.Coverage(data_file=str(data_file), config_file=str(ROOT / "pyproject.toml"))
    cov.load()
    lines = []
    for module in modules():
        floor = FLOORS.get(str(module), DEFAULT_FLOOR)
        got, missing = percent(cov, module)
        if got < floor:
            lines.append(f"{module}: {got:.1f}% < floor {floor:.0f}% (lines not run: {missing})")
    return lines


def main(argv: list[str]) -> int:
    data_file = Path(argv[1]) if len(argv) > 1 else ROOT / ".coverage"
    if not data_file.exists():
        print(f"coverage floor: no data at {data_file}; run scripts/test --cov", file=sys.stderr)
        return 2
    lines = below_floor(data_file)
    for line in lines:
        print(f"coverage floor: {line}", file=sys.stderr)
    if lines:
        print(
            f"coverage floor: {len(lines)} module(s) below their floor; raise their coverage "
            f"or, with the reason, their entry in FLOORS in {Path(__file__).relative_to(ROOT)}",
            file=sys.stderr,
        )
        return 1
    print(f"coverage floor: all {len(modules())} modules at or above their floor")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
