"""The head revision read from the migration files is the one Alembic finds."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from addon.store import db as db_module
from addon.store import head


def head_revision() -> str:
    found = ScriptDirectory.from_config(db_module._alembic_config()).get_current_head()
    assert found is not None
    return found


def test_the_head_read_from_the_files_is_alembics(tmp_path: Path) -> None:
    assert head.file_head() == head_revision()
    (tmp_path / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (tmp_path / "0002_b.py").write_text("revision: str = '0002'\ndown_revision = '0001'\n")
    assert head.file_head(tmp_path) == "0002"
    (tmp_path / "0003_c.py").write_text('revision = "0003"\ndown_revision = "0001"\n')
    assert head.file_head(tmp_path) is None  # two heads: Alembic decides
    (tmp_path / "0004_d.py").write_text("x = 1\n")
    assert head.file_head(tmp_path) is None


def test_the_engine_module_uses_the_same_head() -> None:
    assert db_module.file_head is head.file_head
    assert db_module.MIGRATIONS_DIR == head.MIGRATIONS_DIR
