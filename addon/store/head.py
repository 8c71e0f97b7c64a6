"""The schema revision the migration files lead to, read without Alembic or SQLAlchemy.

Importing either is most of a quick command's start-up, so ``db.migrate`` and the quick
read path (``addon.store.quick``) both compare the database's ``alembic_version`` with this.
"""

from __future__ import annotations

import re
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

_REVISION = re.compile(r"^(down_)?revision\b[^=\n]*=\s*(?:None|[\"']([^\"']+)[\"'])", re.M)


def file_head(versions: Path = MIGRATIONS_DIR / "versions") -> str | None:
    """The newest revision, read from the migration files; None when the files do not show
    one single head (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        found = {bool(m[1]): m[2] for m in _REVISION.finditer(path.read_text())}
        if found.get(False) is None or True not in found:
            return None
        revisions.add(found[False])
        if found[True] is not None:
            parents.add(found[True])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
