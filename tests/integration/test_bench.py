"""scripts/bench runs end to end in its tiny mode: every figure of issue #11 is measured and
every request tollkeeper served is recorded. No timing is judged here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_measures_every_figure_in_tiny_mode(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--tiny", "--no-report"]
    done = subprocess.run(
        [*argv, "--json", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["metering"]["match"] and report["metering"]["served_ok"] > 0
    names = {r["name"] for r in report["ratios"]}
    for figure in (
        "RPS / bare, non-streamed, c=1",
        "RPS / bare, non-streamed, c=4",
        "RPS / bare, metered streams, c=4",
        "CPU per request / bare's, c=1",
        "added p50, c=1",
        "p99 / bare p99, c=1",
        "RSS with 8 open slow streams",
        "`keys list`, empty database, wall",
    ):
        assert f"tollkeeper: {figure}" in names, figure
    measured = {r["name"]: r["value"] for r in report["ratios"]}
    assert all(value is not None for value in measured.values()), measured
    assert report["extra"]["open_streams"]["tollkeeper"]["ok"] == 8
    assert "targets (timings are never enforced)" in done.stdout
