"""The per-module coverage floor that ``scripts/test --cov`` checks (tests/coverage_floor.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import coverage
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def floor() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "coverage_floor", ROOT / "tests/coverage_floor.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_file(tmp_path: Path, lines: dict[str, list[int]]) -> Path:
    path = tmp_path / ".coverage"
    data = coverage.CoverageData(basename=str(path))
    data.add_lines({str(ROOT / module): executed for module, executed in lines.items()})
    data.write()
    return path


def statements(module: str) -> list[int]:
    cov = coverage.Coverage(data_file=None, config_file=False)
    return sorted(cov.analysis2(str(ROOT / module))[1])


def test_a_module_below_its_floor_is_named_with_the_lines_not_run(floor, tmp_path) -> None:
    spool = statements("addon/spool.py")
    path = data_file(tmp_path, {"addon/spool.py": spool[:-1], "addon/limits.py": []})
    lines = {line.split(":")[0]: line for line in floor.below_floor(path)}
    assert lines["addon/spool.py"].endswith(f"< floor 100% (lines not run: {spool[-1]})")
    assert lines["addon/limits.py"].startswith("addon/limits.py: 0.0% < floor 100%")


def test_a_module_at_its_floor_passes(floor, tmp_path) -> None:
    path = data_file(tmp_path, {"addon/spool.py": statements("addon/spool.py")})
    assert not [line for line in floor.below_floor(path) if line.startswith("addon/spool.py")]


def test_every_floor_names_a_measured_module(floor) -> None:
    measured = {str(m) for m in floor.modules()}
    assert set(floor.FLOORS) <= measured, set(floor.FLOORS) - measured
    assert all(0 <= f <= 100 for f in floor.FLOORS.values())


def test_without_data_it_says_how_to_make_it(floor, tmp_path, capsys) -> None:
    assert floor.main(["coverage_floor.py", str(tmp_path / "none")]) == 2
    assert "run scripts/test --cov" in capsys.readouterr().err
