import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser import read_tables
from sqlmodel import Session

from addon.store.models import UsageRecord
from addon.store.usage_repo import insert_records


@pytest.fixture
def records(store) -> None:
    def rec(n: int, day: int, project: str, cost: int | None) -> UsageRecord:
        return UsageRecord(
            request_id=f"req-{n}",
            created_at=datetime(2025, 1, day, 10 + n, tzinfo=UTC),
            virtual_key_id=f"k-{project}",
            project=project,
            provider="openai",
            model="gpt-4o",
            input_tokens=1000 * n,
            output_tokens=10 * n,
            cost_picousd=cost,
        )

    rows = [rec(1, 1, "alpha", 1_234_567), rec(2, 1, "alpha", None), rec(3, 2, "beta", 5 * 10**12)]
    rows.append(rec(4, 3, "gamma", None))
    with Session(store) as s:
        insert_records(session=s, records=rows)


def shown(item: dict, field: str) -> str:
    """How the report writes a field of ``tollkeeper usage --format json``."""
    value = item[field]
    if field == "cost_usd":
        return "unpriced" if value is None else f"${value}"
    return f"{value:,}" if isinstance(value, int) else str(value)


FIELDS = ("project", "requests", "input_tokens", "output_tokens", "cost_usd", "error_requests")


@pytest.mark.usefixtures("records")
@pytest.mark.parametrize(
    "period", [(), ("--since", "2025-01-02"), ("--until", "2025-01-01"), ("--project", "beta")]
)
def test_report_numbers_are_those_of_usage_json(ok, tmp_path: Path, period) -> None:
    out = tmp_path / "report.html"
    result = ok("report", "--html", str(out), *period)
    assert str(out) in result.stderr and result.stdout == ""
    usage = json.loads(ok("usage", "--format", "json", *period).stdout)
    rows = {r["project"]: r for r in read_tables(out.read_text())["projects"]}
    assert sorted(rows) == sorted(i["project"] for i in usage)
    for item in usage:
        assert {f: rows[item["project"]][f] for f in FIELDS} == {f: shown(item, f) for f in FIELDS}


@pytest.mark.usefixtures("records")
def test_report_is_one_self_contained_file(ok, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "r.html"
    out.parent.mkdir()
    ok("report", "--html", str(out), "--bucket", "hour")
    html = out.read_text()
    assert "Chart.js v4" in html and "https://cdn" not in html and "<script src" not in html
    assert '"bucket": "hour"' in html
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600  # usage is not for every local user
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]  # no temporary file left


def test_report_to_stdout_and_on_an_empty_database(ok) -> None:
    html = ok("report", "--html", "-").stdout
    assert html.startswith("<!doctype html>") and "Nothing in this period." in html


def test_report_errors_are_one_line(tk, one_line_error, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "r.html"
    one_line_error(tk("report", "--html", str(missing)), "cannot write")
    bad = tk(
        "report",
        "--html",
        str(tmp_path / "r.html"),
        "--since",
        "2025-02-01",
        "--until",
        "2025-01-01",
    )
    one_line_error(bad, "--since must be before --until")
    assert tk("report").exit_code != 0
