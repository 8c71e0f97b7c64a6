"""Alembic environment: runs on the connection that addon.store.db.migrate passes in."""

from alembic import context
from sqlmodel import SQLModel

from addon.store import models, rollups  # noqa: F401  (registers the tables)

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through addon.store.db.migrate()")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
