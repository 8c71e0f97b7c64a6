"""Two real ``tollkeeper`` processes changing keys at the same time, on SQLite and PostgreSQL."""

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from sqlmodel import Session

from addon.store.audit_repo import list_events
from addon.store.keys_repo import list_keys

TOLLKEEPER_BIN = Path(sys.executable).parent / "tollkeeper"
ROUNDS = 10


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOLLKEEPER_BIN), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _worker(name: str, env: dict[str, str], start: threading.Barrier, out: list) -> None:
    start.wait()
    for _ in range(ROUNDS):
        created = _run(env, "--actor", name, "keys", "create", "--project", name, "--json")
        out.append(("create", name, created))
        if created.returncode != 0:
            continue
        key_id = json.loads(created.stdout)["id"]
        out.append(("revoke", name, _run(env, "--actor", name, "keys", "revoke", key_id)))


def test_two_processes_create_and_revoke_at_the_same_time(db_url, tk_home, store):
    env = {**os.environ, "TOLLKEEPER_HOME": str(tk_home), "TOLLKEEPER_DB": db_url}
    for name in ("TOLLKEEPER_ACTOR", "TOLLKEEPER_DEBUG"):
        env.pop(name, None)
    start = threading.Barrier(2)
    results: list = []
    threads = [
        threading.Thread(target=_worker, args=(name, env, start, results))
        for name in ("worker-a", "worker-b")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    failures = [(op, r.stderr) for op, _, r in results if r.returncode != 0]
    for _, stderr in failures:  # a failure must at least be clean
        assert len(stderr.splitlines()) == 1 and stderr.startswith("Error: "), stderr
    assert failures == []
    assert len(results) == 2 * 2 * ROUNDS

    with Session(store) as s:
        events = list_events(session=s)
        keys = list_keys(session=s, include_inactive=True)
    assert Counter((e.action, e.actor) for e in events) == {
        ("key.created", "worker-a"): ROUNDS,
        ("key.created", "worker-b"): ROUNDS,
        ("key.revoked", "worker-a"): ROUNDS,
        ("key.revoked", "worker-b"): ROUNDS,
    }
    created_ids = {json.loads(r.stdout)["id"] for op, _, r in results if op == "create"}
    assert {k.id for k in keys} == created_ids and len(created_ids) == 2 * ROUNDS
    assert all(k.revoked_at is not None and k.revoked_by == k.project for k in keys)
    for e in events:  # each key's events name the process that made it
        key = next(k for k in keys if k.id == e.target)
        assert e.actor == key.project
