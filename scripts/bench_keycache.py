"""Benchmark: what the gateway's key snapshot costs with many virtual keys.

Fills a temporary SQLite database (or ``--db URL``) with ``--keys`` virtual keys and a few
real keys, then times, on the key cache as the gateway runs it: the first (full) load; a
refresh after one key is revoked; a refresh after a real key's health is written; and an
idle refresh (nothing changed). Prints milliseconds (median of ``--rounds``). Timings are
information, never a pass/fail.

    .venv/bin/python scripts/bench_keycache.py --keys 20000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from addon import keys  # noqa: E402
from addon.keycache import KeyCache  # noqa: E402
from addon.store import keys_repo, realkeys_repo  # noqa: E402
from addon.store.db import open_store  # noqa: E402
from addon.store.models import AuditEvent, VirtualKey  # noqa: E402
from addon.vault import Vault  # noqa: E402


def fill(engine: object, n: int) -> list[str]:
    ids = [f"{i:010d}" for i in range(n)]
    with Session(engine) as s:  # type: ignore[arg-type]
        for i, key_id in enumerate(ids):
            s.add(
                VirtualKey(
                    id=key_id,
                    project=f"project-{i % 50}",
                    secret_hash=keys.hash_key(keys.format_key(key_id, keys.new_secret())),
                    rpm=60 if i % 3 == 0 else None,
                    metadata_json='{"team": "x"}',
                )
            )
            s.add(AuditEvent(actor="bench", action="key.created", target=key_id))
        s.commit()
        vault = Vault(Fernet.generate_key())
        for label in ("a", "b", "c"):
            realkeys_repo.add_real_key(
                session=s,
                vault=vault,
                provider="openai",
                label=label,
                secret=f"sk-bench-{label}-000000000",
                env_ref=None,
                base_url=None,
                actor="bench",
            )
    return ids


def timed(step: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    step()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--db", help="SQLAlchemy URL (default: a temporary SQLite file)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(args.db or f"sqlite:///{tmp}/bench.db")
        ids = fill(engine, args.keys)
        cache = KeyCache(engine)
        first = timed(cache.refresh)
        assert len(cache.keys) >= args.keys
        revoke, health, idle = [], [], []
        with Session(engine) as s:
            real_id = realkeys_repo.list_real_keys(session=s)[0].id
        for r in range(args.rounds):
            with Session(engine) as s:
                keys_repo.revoke_key(session=s, key_id=ids[r], actor="bench", reason=None)
            revoke.append(timed(cache.refresh))
            assert cache.keys[ids[r]].revoked
            with Session(engine) as s:
                assert real_id is not None
                realkeys_repo.record_health(
                    session=s,
                    key_id=real_id,
                    status="cooling",
                    cooldown_until=datetime.now(UTC),
                    auth_failures=r,
                    last_error="bench",
                )
            health.append(timed(cache.refresh))
            idle.append(timed(cache.refresh))
        engine.dispose()  # type: ignore[attr-defined]
    print(f"virtual keys: {args.keys}")
    print(f"first load:              {first:8.1f} ms")
    print(f"refresh after a revoke:  {statistics.median(revoke):8.1f} ms (median)")
    print(f"refresh after health:    {statistics.median(health):8.1f} ms (median)")
    print(f"idle refresh:            {statistics.median(idle):8.1f} ms (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
