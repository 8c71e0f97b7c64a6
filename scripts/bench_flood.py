"""Benchmark: valid traffic through tollkeeper while a flood of random ``tk-…`` keys arrives.

Starts the fake upstream and ``mitmdump -s addon/gateway.py`` (temporary home, SQLite, with
``--keys`` extra virtual keys in the database), then for ``--seconds`` each: valid requests
alone over ``--valid`` connections; then the same together with ``--flood`` connections that
send well-formed virtual keys nobody issued (each with a fresh random id). Prints requests per
second of each kind. Timings are information, never a pass/fail.

    .venv/bin/python scripts/bench_flood.py --seconds 10 --valid 4 --flood 16 [--limited]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import (
    BIN,
    HOST,
    ROOT,
    Conn,
    Procs,
    build_request,
    child_env,
    free_port,
    tollkeeper_cli,
)


def random_key() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    key_id = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"tk-{key_id}-{secrets.token_hex(20)}"


def add_keys(db: Path, n: int) -> None:
    """Many keys straight into the table (the CLI would take minutes for 20,000)."""
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO virtual_keys (id, project, secret_hash, created_at, created_by,"
            " updated_at, allowed_providers, allowed_models, budget_period, metadata_json)"
            " VALUES (?, 'filler', ?, datetime('now'), 'bench', datetime('now'), '', '',"
            " 'total', '{}')",
            [(f"f{i:09d}", secrets.token_hex(32)) for i in range(n)],
        )


async def worker(port: int, make: object, until: float, counts: Counter[str], kind: str) -> None:
    conn = Conn(port)
    try:
        while time.perf_counter() < until:
            request = make()  # type: ignore[operator]
            try:
                status, _, _ = await asyncio.wait_for(conn.exchange(request), 30)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
                counts[f"{kind} error"] += 1
                conn.close()
                continue
            counts[f"{kind} {status}"] += 1
    finally:
        conn.close()


async def phase(port: int, key: str, valid: int, flood: int, seconds: float) -> Counter[str]:
    counts: Counter[str] = Counter()
    until = time.perf_counter() + seconds
    good = build_request(port, key, stream=False, event_delay_s=0)
    tasks = [worker(port, lambda: good, until, counts, "valid") for _ in range(valid)]
    tasks += [
        worker(
            port,
            lambda: build_request(port, random_key(), stream=False, event_delay_s=0),
            until,
            counts,
            "flood",
        )
        for _ in range(flood)
    ]
    await asyncio.gather(*tasks)
    return counts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--valid", type=int, default=4, help="connections with the valid key")
    p.add_argument("--flood", type=int, default=16, help="connections with random keys")
    p.add_argument("--keys", type=int, default=20_000, help="extra keys in the database")
    p.add_argument(
        "--limited",
        action="store_true",
        help="give the valid key a (high) rate limit, so each of its requests is admitted",
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = Procs(work)
        try:
            fake = ROOT / "tests" / "fakes" / "upstream.py"
            cmd = [sys.executable, str(fake), "--host", HOST, "--port", "0"]
            procs.start("upstream", cmd, child_env(), stdout=subprocess.PIPE)
            up = procs.read_port("upstream")
            env = child_env(work / "home")
            add = ("providers", "add", "openai", "--api-key-stdin", "--label", "main")
            tollkeeper_cli(env, *add, "--base-url", f"http://{HOST}:{up}/v1", stdin="sk-x-1234\n")
            limit = ("--rpm", "1000000") if args.limited else ()
            created = tollkeeper_cli(env, "keys", "create", "--project", "b", "--json", *limit)
            key = json.loads(created)["key"]
            add_keys(work / "home" / "tollkeeper.db", args.keys)
            port = free_port()
            tk = [str(BIN / "mitmdump"), "-q", "-s", str(ROOT / "addon" / "gateway.py")]
            tk += ["--mode", f"reverse:https://api.openai.com@{HOST}:{port}"]
            tk += ["--set", f"confdir={work / 'confdir'}"]
            procs.start("tollkeeper", tk, env)
            procs.wait_listening("tollkeeper", port)
            asyncio.run(phase(port, key, args.valid, 0, 2.0))  # warm-up
            alone = asyncio.run(phase(port, key, args.valid, 0, args.seconds))
            mixed = asyncio.run(phase(port, key, args.valid, args.flood, args.seconds))
        finally:
            procs.close()
    s = args.seconds
    kind = "limited" if args.limited else "unlimited"
    print(f"{args.keys} keys in the database; {args.valid} valid ({kind} key), {args.flood} flood")
    print(f"valid alone:       {alone['valid 200'] / s:7.1f} req/s   {dict(alone)}")
    print(
        f"valid with flood:  {mixed['valid 200'] / s:7.1f} req/s, "
        f"flood answered {sum(v for k, v in mixed.items() if k.startswith('flood')) / s:7.1f}"
        f" req/s   {dict(mixed)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
