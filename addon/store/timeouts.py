"""How long a database call may wait, shared by the engine (``db``) and the quick read path.

SQLite waits at most ``SQLITE_BUSY_S`` for a lock; PostgreSQL connections give up connecting
after ``PG_CONNECT_TIMEOUT_S`` and the server cancels any statement running longer than
``PG_STATEMENT_TIMEOUT_MS``. Plain constants, so that reading them imports no SQLAlchemy.
"""

from __future__ import annotations

SQLITE_BUSY_S = 30
PG_CONNECT_TIMEOUT_S = 5
PG_STATEMENT_TIMEOUT_MS = 10_000
