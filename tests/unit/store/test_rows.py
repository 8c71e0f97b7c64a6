"""One record shape: the row the writer builds is the usage table, column for column."""

from __future__ import annotations

import typing
from dataclasses import fields
from datetime import UTC, datetime

from addon.pricing.table import PriceBook
from addon.records import UsageDraft, finish
from addon.store.models import UsageRecord
from addon.store.rows import COLUMNS, UsageRow, as_dict

TABLE = UsageRecord.__table__  # type: ignore[attr-defined]


def test_the_row_has_exactly_the_table_columns_but_the_surrogate_id():
    assert set(COLUMNS) == {c.name for c in TABLE.columns} - {"id"}


def test_each_row_field_may_be_null_exactly_where_its_column_may():
    hints = typing.get_type_hints(UsageRow)
    for f in fields(UsageRow):
        optional = type(None) in typing.get_args(hints[f.name])
        assert optional == TABLE.columns[f.name].nullable, f.name


def test_a_finished_row_fits_every_string_column():
    """finish() clips what a client or provider sends to the column lengths."""
    long = "x" * 1000
    draft = UsageDraft(
        request_id="r" * 64,
        created_at=datetime.now(UTC),
        provider="openai",
        api="openai.chat",
        endpoint="/v1/" + long,
        project=long,
        real_key_label=long,
        requested_model=long,
        error_kind=long,
        provider_request_id=long,
    )
    row = as_dict(finish(draft, PriceBook({})))
    checked = 0
    for column in TABLE.columns:
        length = getattr(column.type, "length", None)  # sqlmodel's AutoString is no String
        if length and isinstance(row.get(column.name), str):
            assert len(row[column.name]) <= length, column.name
            checked += 1
    assert checked >= 6
