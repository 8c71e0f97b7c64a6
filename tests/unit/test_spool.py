"""The local append-only spool that keeps usage records while the database is away."""

from __future__ import annotations

import errno
import json
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from addon.spool import Spool
from addon.store.models import UsageRecord


def record(request_id: str, **fields: object) -> UsageRecord:
    return UsageRecord(request_id=request_id, provider="openai", **fields)  # type: ignore[arg-type]


def full_record() -> UsageRecord:
    return UsageRecord(
        request_id="req-full",
        created_at=datetime(2026, 3, 1, 23, 30, 15, 123456, tzinfo=UTC),
        virtual_key_id="abc123xyz0",
        project="Projekt Ä",
        provider="anthropic",
        real_key_label="main",
        endpoint="/v1/messages",
        model="claude-haiku-4-5",
        status_code=200,
        input_tokens=1200,
        cached_input_tokens=1000,
        cache_write_tokens=100,
        output_tokens=80,
        reasoning_tokens=20,
        cost_picousd=123_456_789_012,
        latency_ms=850,
        ttfb_ms=120,
        streamed=True,
        estimated=True,
        error_kind="stream_error:overloaded_error",
        provider_request_id="req_011CXYZ",
        extras_json='{"service_tier": "standard"}',
        end_user="alice@example.com",
        tags="a,b",
    )


def comparable(r: UsageRecord) -> dict[str, object]:
    return r.model_dump(exclude={"id"})


def test_records_round_trip_with_every_field(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    original = full_record()
    spool.append([original])
    (back,) = spool.read()
    assert comparable(back) == comparable(original)
    assert back.created_at.tzinfo is not None
    assert back.created_at == original.created_at


def test_defaults_and_nulls_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    original = record("req-min")
    spool.append([original])
    (back,) = spool.read()
    assert comparable(back) == comparable(original)
    assert back.cost_picousd is None  # unpriced stays unpriced, never 0


def test_times_in_another_zone_keep_their_instant(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    t = datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    spool.append([record("r", created_at=t)])
    assert spool.read()[0].created_at == t


def test_appends_accumulate_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a"), record("b")])
    spool.append([record("c")])
    spool.append([])
    assert [r.request_id for r in spool.read()] == ["a", "b", "c"]


def test_an_absent_or_empty_spool_has_nothing_pending(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "sub" / "spool.jsonl")
    assert not spool.pending()
    assert spool.read() == []
    spool.path.parent.mkdir()
    spool.path.write_text("")
    assert not spool.pending()
    assert spool.read() == []


def test_append_creates_the_directory_and_a_private_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "new" / "dir" / "spool.jsonl")
    spool.append([record("a")])
    assert spool.pending()
    assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600


def test_clear_empties_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a")])
    spool.clear()
    assert not spool.pending()
    assert spool.read() == []
    spool.clear()  # clearing twice is fine


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a"), record("b")])
    with spool.path.open("a", encoding="utf-8") as f:
        f.write('{"request_id": "c", "provider": "ope')  # the writer died mid-line
    assert [r.request_id for r in spool.read()] == ["a", "b"]


def test_blank_lines_and_garbage_lines_are_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a")])
    with spool.path.open("a", encoding="utf-8") as f:
        f.write("\n   \n\x00\x00\x00\nnot json\n")  # NULs: what a crash can leave on disk
    spool.append([record("b")])
    assert [r.request_id for r in spool.read()] == ["a", "b"]


def test_a_line_that_is_json_but_not_an_object_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a")])
    with spool.path.open("a", encoding="utf-8") as f:
        f.write("[1, 2]\n")
    spool.append([record("b")])
    assert [r.request_id for r in spool.read()] == ["a", "b"]


def test_a_torn_line_does_not_lose_the_records_before_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a")])
    lines = spool.path.read_text(encoding="utf-8")
    spool.path.write_text(lines + lines[: len(lines) // 2], encoding="utf-8")
    assert [r.request_id for r in spool.read()] == ["a"]


def test_the_file_holds_one_json_object_per_line(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a"), record("b"), record("c")])
    lines = spool.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert all(line.startswith("{") and line.endswith("}") for line in lines)


def test_unpriced_cost_is_written_as_null_not_zero(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a", cost_picousd=None, input_tokens=5)])
    assert '"cost_picousd": null' in spool.path.read_text(encoding="utf-8")


def test_records_appended_after_a_torn_line_are_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a")])
    with spool.path.open("a", encoding="utf-8") as f:
        f.write('{"request_id": "torn", "prov')  # crash mid-write
    spool.append([record("b"), record("c")])  # the restarted gateway spools more
    assert [r.request_id for r in spool.read()] == ["a", "b", "c"]


def test_unreadable_lines_move_to_the_quarantine_file_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a")])
    with spool.path.open("a", encoding="utf-8") as f:
        f.write("not json\n[1, 2]\n")
    spool.append([record("b")])
    with spool.path.open("a", encoding="utf-8") as f:
        f.write('{"request_id": "torn", "prov')
    assert [r.request_id for r in spool.read()] == ["a", "b"]
    kept = spool.quarantine.read_text(encoding="utf-8").splitlines()
    assert kept == ["not json", "[1, 2]", '{"request_id": "torn", "prov']
    assert [r.request_id for r in spool.read()] == ["a", "b"]  # read again: nothing doubled
    assert spool.quarantine.read_text(encoding="utf-8").splitlines() == kept


def test_a_spool_whose_quarantine_cannot_be_written_stays_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the quarantine directory should be")
    spool = Spool(tmp_path / "spool.jsonl", quarantine=tmp_path / "blocked" / "q.jsonl")
    spool.append([record("a")])
    with spool.path.open("a", encoding="utf-8") as f:
        f.write("garbage\n")
    before = spool.path.read_text(encoding="utf-8")
    try:
        spool.read()
    except OSError:
        pass
    else:
        raise AssertionError("read must fail when it cannot keep the unreadable lines")
    assert spool.path.read_text(encoding="utf-8") == before


def test_an_append_the_disk_cuts_short_leaves_the_spool_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record("a")])
    before = spool.path.read_bytes()
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) < 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[: len(data) // 2]))

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        spool.append([record("b"), record("c")])
    monkeypatch.undo()
    assert spool.path.read_bytes() == before
    assert [r.request_id for r in spool.read()] == ["a"]


def test_pending_does_not_race_with_the_file_going_away(tmp_path: Path) -> None:
    """The writer thread removes the spool file at any moment, e.g. between an exists()
    and a stat() of the admin listener's /readyz."""

    class Vanishing(type(tmp_path)):  # type: ignore[misc]
        def exists(self, *args: object, **kwargs: object) -> bool:
            return True  # it was there ...

        def stat(self, *args: object, **kwargs: object) -> os.stat_result:
            raise FileNotFoundError(str(self))  # ... and is gone by the next call

    spool = Spool(Vanishing(tmp_path / "spool.jsonl"))
    assert not spool.pending()
    assert spool.size() == 0


def test_a_line_spooled_before_attribution_existed_reads_back_unattributed(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([full_record()])
    line = json.loads(spool.path.read_text())
    del line["end_user"], line["tags"]
    spool.path.write_text(json.dumps(line) + "\n")
    (back,) = spool.read()
    assert (back.request_id, back.end_user, back.tags) == ("req-full", None, "")
