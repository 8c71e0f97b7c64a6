"""Two processes changing keys with ``tollkeeper`` commands at the same time, on SQLite and
PostgreSQL. Each process runs its commands one after another (tests/cli/concurrent_cli.py), each
command with its own engine as a fresh ``tollkeeper`` would; a process per command only added
interpreter starts (the console script itself is run by test_cli_main.py)."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from sqlmodel import Session

from addon.store.audit_repo import list_events
from addon.store.keys_repo import list_keys

WORKER = Path(__file__).with_name("concurrent_cli.py")
ROUNDS = 10


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def _start(name: str, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), name, str(ROUNDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n", proc.communicate(timeout=60)
    return proc


def _results(name: str, proc: subprocess.Popen[str]) -> list[tuple[str, str, Result]]:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    return [(r["op"], name, Result(r["code"], r["stdout"], r["stderr"])) for r in lines]


def test_two_processes_create_and_revoke_at_the_same_time(db_url, tk_home, store):
    env = {**os.environ, "TOLLKEEPER_HOME": str(tk_home), "TOLLKEEPER_DB": db_url}
    for name in ("TOLLKEEPER_ACTOR", "TOLLKEEPER_DEBUG"):
        env.pop(name, None)
    names = ("worker-a", "worker-b")
    procs = [_start(name, env) for name in names]  # both imported: they start together
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [r for name, proc in zip(names, procs, strict=True) for r in _results(name, proc)]

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
