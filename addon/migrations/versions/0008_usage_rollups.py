"""hourly usage rollups, built from the existing usage records

The table and the SQL are spelled out here, not imported from addon.store.rollups: a later
migration may add a dimension there, and this revision must keep building this revision's
table.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02 03:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DIMENSIONS = (("virtual_key_id", 16), ("project", 200), ("model", 200), ("provider", 64))
# measure -> its value for one usage record, summed per hour and dimensions
MEASURES = {
    "requests": "1",
    "input_tokens": "input_tokens",
    "cached_input_tokens": "cached_input_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "output_tokens": "output_tokens",
    "reasoning_tokens": "reasoning_tokens",
    "cost_picousd": "COALESCE(cost_picousd, 0)",
    "priced_requests": "CASE WHEN cost_picousd IS NULL THEN 0 ELSE 1 END",
    "unpriced_requests": "CASE WHEN cost_picousd IS NULL THEN 1 ELSE 0 END",
    "unpriced_input_tokens": "CASE WHEN cost_picousd IS NULL THEN input_tokens ELSE 0 END",
    "unpriced_output_tokens": "CASE WHEN cost_picousd IS NULL THEN output_tokens ELSE 0 END",
    "estimated_requests": "CASE WHEN estimated THEN 1 ELSE 0 END",
    "error_requests": "CASE WHEN error_kind IS NULL THEN 0 ELSE 1 END",
}
HOUR = {
    "postgresql": "timezone('UTC', date_trunc('hour', timezone('UTC', created_at)))",
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', created_at)",  # SQLAlchemy's stored form
}


def upgrade() -> None:
    op.create_table(
        "usage_hourly",
        sa.Column("hour", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        *(
            sa.Column(name, sa.String(length=size), server_default="", nullable=False)
            for name, size in DIMENSIONS
        ),
        sa.Column("null_dims", sa.Integer(), server_default="0", nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
            for name in MEASURES
        ),
        sa.PrimaryKeyConstraint("hour", *(name for name, _ in DIMENSIONS), "null_dims"),
    )
    dims = [f"COALESCE({name}, '')" for name, _ in DIMENSIONS]
    mask = " + ".join(
        f"CASE WHEN {name} IS NULL THEN {1 << i} ELSE 0 END"
        for i, (name, _) in enumerate(DIMENSIONS)
    )
    keys = [HOUR[op.get_bind().dialect.name], *dims, f"({mask})"]
    columns = ["hour", *(name for name, _ in DIMENSIONS), "null_dims", *MEASURES]
    sums = [f"SUM({expr})" for expr in MEASURES.values()]
    positions = ", ".join(str(i + 1) for i in range(len(keys)))
    select = f"SELECT {', '.join(keys + sums)} FROM usage_records GROUP BY {positions}"  # noqa: S608 - constants only
    op.execute(f"INSERT INTO usage_hourly ({', '.join(columns)}) {select}")


def downgrade() -> None:
    op.drop_table("usage_hourly")
