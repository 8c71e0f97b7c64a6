"""One process that runs ``tollkeeper`` commands one after another, as a shell loop would.

Used by test_cli_concurrency.py: two of these run against one database at the same time. Each
command goes through the console entry point ``cli.main:main`` with its own argv, its own App
and so its own engine (opened, migrated and disposed per command, as in a fresh process), so
the processes contend in the database exactly as separate invocations do, without paying an
interpreter start per command.

Protocol: prints ``ready`` once imported, waits for a line on stdin (the start signal), then
prints one JSON line per command: ``{"op", "code", "stdout", "stderr"}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from cli.main import main


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["tollkeeper", *args]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def report(op: str, result: tuple[int, str, str]) -> None:
    code, stdout, stderr = result
    print(json.dumps({"op": op, "code": code, "stdout": stdout, "stderr": stderr}), flush=True)


def create_and_revoke(name: str, rounds: int) -> None:
    for _ in range(rounds):
        created = run("--actor", name, "keys", "create", "--project", name, "--json")
        report("create", created)
        if created[0] != 0:
            continue
        key_id = json.loads(created[1])["id"]
        report("revoke", run("--actor", name, "keys", "revoke", key_id))


if __name__ == "__main__":
    print("ready", flush=True)
    sys.stdin.readline()
    create_and_revoke(sys.argv[1], int(sys.argv[2]))
