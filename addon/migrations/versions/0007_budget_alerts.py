"""budget alerts: thresholds per virtual key, and the alerts that fired (one per period)

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02 03:10:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "alert_at",
                sqlmodel.sql.sqltypes.AutoString(length=200),
                nullable=False,
                server_default="",
            )
        )
    op.create_table(
        "budget_alerts",
        sa.Column("virtual_key_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("period_start", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("threshold_percent", sa.Integer(), nullable=False),
        sa.Column("fired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("spent_picousd", sa.BigInteger(), nullable=False),
        sa.Column("budget_picousd", sa.BigInteger(), nullable=False),
        sa.Column("instance_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("delivery", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.PrimaryKeyConstraint("virtual_key_id", "period_start", "threshold_percent"),
    )


def downgrade() -> None:
    op.drop_table("budget_alerts")
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.drop_column("alert_at")
