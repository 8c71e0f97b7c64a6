"""Test databases at the newest migration without migrating each one.

Migrating a new database runs every Alembic revision: 60-250 ms a test, several hundred
tests a run. A fixture that wants a migrated database (rather than to test migrating one)
gets a copy of one migrated once per process instead: a SQLite file copied, a PostgreSQL
schema's ``pg_dump`` (structure and rows: the version table) replayed in the test's fresh
schema. Either way ``open_store`` then finds the database at its head and migrates nothing.
Tests of migrations themselves (tests/unit/store/test_db.py, test_migrations.py, …) keep
fresh databases.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from addon.store.db import open_store

SEARCH_PATH = "options=-csearch_path%3D"  # how tests/conftest.py's postgres_url names its schema


class Templates:
    """Migrated databases made on first use, one of each kind per process."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._sqlite: Path | None = None
        self._pg: tuple[str, str] | None = None  # (dump, the schema named in it)
        self._pg_tried = False

    def copy_into(self, url: str) -> None:
        """Make the new, empty database at ``url`` a migrated one."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            target = Path(str(parsed.database))
            assert not target.exists(), f"{target} is not a new database"
            shutil.copyfile(self._sqlite_file(), target)
            return
        base, _, schema = url.rpartition(SEARCH_PATH)
        base = base.rstrip("?&")
        found = self._pg_dump(base)
        if found is None:  # no usable pg_dump here: migrate as open_store does
            open_store(url).dispose()
            return
        dump, template = found
        engine = create_engine(base)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(dump.replace(template, schema))
        finally:
            engine.dispose()

    def _sqlite_file(self) -> Path:
        if self._sqlite is None:
            path = self._workdir / "template.db"
            open_store(f"sqlite:///{path}").dispose()
            self._sqlite = path
        return self._sqlite

    def _pg_dump(self, base: str) -> tuple[str, str] | None:
        """A dump of a migrated schema; None without a pg_dump that can read the server."""
        if not self._pg_tried:
            self._pg_tried = True
            if shutil.which("pg_dump") is None:
                return None
            schema = "tk_template_" + secrets.token_hex(6)
            admin = create_engine(base)
            try:
                with admin.begin() as conn:
                    conn.execute(text(f"CREATE SCHEMA {schema}"))
                try:
                    sep = "&" if "?" in base else "?"
                    open_store(f"{base}{sep}{SEARCH_PATH}{schema}").dispose()
                    libpq = make_url(base).set(drivername="postgresql")
                    args = [f"--schema={schema}", "--no-owner", "--no-privileges", "--inserts"]
                    done = subprocess.run(
                        ["pg_dump", *args, libpq.render_as_string(hide_password=False)],
                        capture_output=True,
                        text=True,
                    )
                finally:
                    with admin.begin() as conn:
                        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            finally:
                admin.dispose()
            if done.returncode != 0:  # e.g. a pg_dump older than the server
                return None
            # not psql's meta-commands (\restrict …) nor the schema, which the test's fixture made
            lines = [
                ln for ln in done.stdout.splitlines() if not ln.startswith(("\\", "CREATE SCHEMA "))
            ]
            self._pg = ("\n".join(lines), schema)
        return self._pg
