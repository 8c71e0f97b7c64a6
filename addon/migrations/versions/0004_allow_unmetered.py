"""virtual keys: allow_unmetered (a limited key may reach endpoints the gateway does not meter)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allow_unmetered", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.drop_column("allow_unmetered")
