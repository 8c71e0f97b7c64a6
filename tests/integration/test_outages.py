"""Revocations that always arrive, database outages and hangs, a killed gateway, and
start-up failures, through a real mitmdump and the official SDKs."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from pathlib import Path

import openai
import pytest
from cryptography.fernet import Fernet
from integration.conftest import Stack, build_stack
from integration.harness import ADDON, BIN, base_env, free_port, wait_for
from integration.relay import Relay
from sqlalchemy.engine import make_url

MESSAGES = [{"role": "user", "content": "hi"}]


def _status(client: openai.OpenAI) -> int | str:
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return 200
    except openai.APIStatusError as e:
        return e.status_code
    except openai.APIConnectionError as e:
        return type(e).__name__


def _db(stack: Stack) -> sqlite3.Connection:
    return sqlite3.connect(stack.gateway.home / "tollkeeper.db", isolation_level=None, timeout=30)


def test_a_revocation_arrives_although_rows_cannot_be_read(fresh_stack: Stack, monkeypatch):
    """Rows written by a newer release (here: unparsable JSON) are skipped, not the reload."""
    stack = fresh_stack
    key = stack.cli.new_key("victim")
    other = stack.cli.new_key("other")
    client = stack.openai_reverse(key["key"], monkeypatch)
    assert _status(client) == 200
    db = _db(stack)
    db.execute(
        "INSERT INTO price_overrides (model, prices_json, updated_at)"
        " VALUES ('future-model', '{\"input\": {\"tiered\"', CURRENT_TIMESTAMP)"
    )
    db.execute("UPDATE virtual_keys SET metadata_json = '{oops' WHERE id = ?", (other["id"],))
    for action, target in (("price.set", "future-model"), ("key.updated", other["id"])):
        db.execute(
            "INSERT INTO audit_events (at, actor, action, target, details_json)"
            " VALUES (CURRENT_TIMESTAMP, 'newer', ?, ?, '{}')",
            (action, target),
        )
    db.close()
    stack.cli.run("keys", "revoke", key["id"])
    assert wait_for(lambda: _status(client) == 401, timeout=1.0, interval=0.05)
    assert "cannot be read" in stack.gateway.log()


def test_a_failed_reload_is_retried_and_the_revocation_arrives(fresh_stack: Stack, monkeypatch):
    stack = fresh_stack
    key = stack.cli.new_key("victim")
    client = stack.openai_reverse(key["key"], monkeypatch)
    assert _status(client) == 200
    db = _db(stack)
    db.execute("ALTER TABLE custom_providers RENAME TO custom_providers_away")  # reads fail
    try:
        stack.cli.run("keys", "revoke", key["id"])
        stack.cli.run("prices", "set", "some-model", "--input", "1", "--output", "2")
        assert wait_for(lambda: "key cache refresh failed" in stack.gateway.log(), timeout=10)
    finally:
        db.execute("ALTER TABLE custom_providers_away RENAME TO custom_providers")
        db.close()
    assert wait_for(lambda: _status(client) == 401, timeout=1.0, interval=0.05)


def test_limited_keys_answer_503_with_retry_after_while_the_database_hangs(
    fresh_stack: Stack, monkeypatch
):
    stack = fresh_stack
    limited_key = stack.cli.new_key("lim", "--max-parallel", "1")["key"]
    limited = stack.openai_reverse(limited_key, monkeypatch)
    free = stack.openai_reverse(stack.cli.new_key("free")["key"], monkeypatch)
    assert _status(limited) == 200
    db = _db(stack)
    db.execute("BEGIN IMMEDIATE")  # every write waits: a database that stopped answering
    try:
        with pytest.raises(openai.InternalServerError) as exc:
            limited.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert exc.value.status_code == 503
        headers = exc.value.response.headers
        assert headers["x-tollkeeper-error"] == "limits_unavailable"
        assert int(headers["retry-after"]) > 0
        assert exc.value.body["type"] == "server_error"  # OpenAI's error shape
        assert _status(free) == 200  # keys without limits do not need the database
    finally:
        db.execute("COMMIT")
        db.close()
    # the admission that timed out commits now and is released: the key is not blocked
    assert wait_for(lambda: _status(limited) == 200, timeout=10, interval=0.2)


def _inflight(stack: Stack) -> int:
    with _db(stack) as db:
        return int(db.execute("SELECT count(*) FROM inflight_requests").fetchone()[0])


def test_a_killed_gateway_leaves_no_reservation_that_blocks_a_key(fresh_stack: Stack, monkeypatch):
    stack = fresh_stack
    key = stack.cli.new_key("parallel", "--max-parallel", "1")
    client = stack.openai_reverse(key["key"], monkeypatch)
    stack.upstream.set_scenario("slow", seconds=30)
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(_status(client)), daemon=True)
    worker.start()
    assert wait_for(lambda: _inflight(stack) == 1, timeout=10)
    proc = stack.gateway.proc
    assert proc is not None
    proc.kill()  # SIGKILL: nothing of the gateway runs any more
    proc.wait()
    worker.join(timeout=30)
    assert outcome and outcome[0] != 200
    assert _inflight(stack) == 1  # what the killed process left behind
    stack.upstream.reset()
    stack.gateway.start()
    assert _status(client) == 200
    released = "released 1 reservations of stopped gateways"
    assert wait_for(lambda: released in stack.gateway.log(), timeout=5)


def _mitmdump(home: Path, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [str(BIN / "mitmdump"), "-s", str(ADDON), "--set", f"confdir={workdir / 'conf'}"]
    args += ["--mode", f"regular@127.0.0.1:{free_port()}"]
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        env={**base_env(home), **env},
        timeout=60,
        cwd=workdir,
    )


def _fatal_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    return [line for line in output.splitlines() if "tollkeeper: cannot start" in line]


def test_an_unreachable_database_at_start_is_one_line_and_exit_1(tmp_path: Path):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    result = _mitmdump(tmp_path / "home", tmp_path, {"TOLLKEEPER_DB": url})
    assert result.returncode == 1
    (line,) = _fatal_lines(result)
    assert "database unavailable" in line and "Connection refused" in line


def test_a_master_key_that_cannot_decrypt_stops_the_gateway_naming_the_keys(fresh_stack: Stack):
    stack = fresh_stack
    stack.gateway.stop()
    wrong = Fernet.generate_key().decode()
    result = _mitmdump(stack.gateway.home, stack.workdir, {"TOLLKEEPER_MASTER_KEY": wrong})
    assert result.returncode == 1
    (line,) = _fatal_lines(result)
    assert "openai/main" in line and "anthropic/main" in line and wrong not in line


@pytest.mark.postgres
def test_limited_keys_answer_503_while_postgresql_is_down(postgres_url, tmp_path, monkeypatch):
    url = make_url(postgres_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432).start()
    via_relay = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    gen = build_stack(tmp_path, db_url=via_relay)
    stack = next(gen)
    try:
        limited = stack.openai_reverse(stack.cli.new_key("lim", "--rpm", "100")["key"], monkeypatch)
        free = stack.openai_reverse(stack.cli.new_key("free")["key"], monkeypatch)
        assert _status(limited) == 200
        relay.cut()  # connections drop, new ones are refused
        with pytest.raises(openai.InternalServerError) as exc:
            limited.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        headers = exc.value.response.headers
        assert exc.value.status_code == 503 and int(headers["retry-after"]) > 0
        assert headers["x-tollkeeper-error"] == "limits_unavailable"
        assert _status(free) == 200
        relay.start()
        assert wait_for(lambda: _status(limited) == 200, timeout=10, interval=0.2)
    finally:
        relay.cut()
        relay.start()  # let the fixtures clean up through it
        stack.gateway.stop()
        next(gen, None)
        relay.cut()
