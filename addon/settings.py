"""Settings shared by the addon and the CLI: home directory, database URL, master key.

Environment variables (the addon also takes the first two as mitmproxy options):

- ``TOLLKEEPER_HOME``: data directory, default ``~/.tollkeeper``.
- ``TOLLKEEPER_DB``: any SQLAlchemy URL, default ``sqlite:///$TOLLKEEPER_HOME/tollkeeper.db``.
- ``TOLLKEEPER_MASTER_KEY``: Fernet key that encrypts real provider keys; without it a
  0600 file ``$TOLLKEEPER_HOME/master.key`` is created and used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str

    @property
    def spool_path(self) -> Path:
        return self.home / "spool.jsonl"

    @property
    def master_key_path(self) -> Path:
        return self.home / "master.key"


def normalize_db_url(url: str) -> str:
    """Make plain ``postgresql://`` URLs use the psycopg 3 driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def resolve(*, home: str | None = None, db_url: str | None = None) -> Settings:
    """Settings from explicit values, else the environment, else defaults."""
    home_str = home or os.environ.get("TOLLKEEPER_HOME") or str(Path.home() / ".tollkeeper")
    home_path = Path(home_str).expanduser()
    url = db_url or os.environ.get("TOLLKEEPER_DB") or f"sqlite:///{home_path / 'tollkeeper.db'}"
    return Settings(home=home_path, db_url=normalize_db_url(url))
