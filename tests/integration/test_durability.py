"""Faults a real gateway must survive without losing a usage record: SIGKILL and SIGTERM
under load, a refusing and a hanging database, a full disk.

Each request carries a model name of its own, which the fake provider reports back, so a
record can be matched to the request the client saw complete. "Complete" means the SDK
returned (for a stream: iterated to its end, which openai-python reaches only after the
end of the body). The figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from fakes.db_relay import DbRelay
from fakes.upstream import FakeUpstream
from integration.conftest import ANTHROPIC_REAL, OPENAI_REAL, _no_proxy_env
from integration.harness import Cli, GatewayProcess, wait_for
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

MESSAGES = [{"role": "user", "content": "hi"}]
# A bound on SIGTERM to exit, well inside an orchestrator's stop timeout (Kubernetes gives
# 30 s by default): generous for a loaded machine, not a measure of speed. A hanging
# database once made the exit take 14 s (threads joined one after another on hung calls).
PROMPT_EXIT_S = 10.0


class Load:
    """Client threads sending chat requests (every other one streamed) until stopped."""

    def __init__(self, base_url: str, key: str, threads: int = 4) -> None:
        self.base_url, self.key = base_url, key
        self.prefix = f"dur-{secrets.token_hex(3)}"  # model names unique across loads
        self.completed: set[str] = set()
        self.not_recording = 0  # 503 answers of a gateway that cannot record
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> set[str]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        with self._cond:
            return set(self.completed)

    def wait(self, *, completed: int = 0, not_recording: int = 0, timeout: float = 60) -> None:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len(self.completed) >= completed and self.not_recording >= not_recording,
                timeout=timeout,
            )
        assert ok, f"load stalled: {len(self.completed)} done, {self.not_recording} refused"

    def _run(self, tid: int) -> None:
        client = openai.OpenAI(api_key=self.key, base_url=self.base_url, max_retries=0, timeout=30)
        with client:
            n = 0
            while not self._stop.is_set():
                n += 1
                model = f"{self.prefix}-{tid}-{n}"
                try:
                    if n % 2:
                        client.chat.completions.create(model=model, messages=MESSAGES)
                    else:
                        stream = client.chat.completions.create(
                            model=model, messages=MESSAGES, stream=True
                        )
                        for _ in stream:
                            pass
                except openai.APIStatusError as e:
                    if e.response.headers.get("x-tollkeeper-error") == "not_recording":
                        with self._cond:
                            self.not_recording += 1
                            self._cond.notify_all()
                    self._stop.wait(0.2)
                    continue
                except openai.APIConnectionError:
                    self._stop.wait(0.05)  # the gateway is gone (killed) or restarting
                    continue
                with self._cond:
                    self.completed.add(model)
                    self._cond.notify_all()


@dataclass
class Rig:
    upstream: FakeUpstream
    workdir: Path
    home: Path
    db_url: str | None
    key: str
    gateways: list[GatewayProcess]

    def start_gateway(self) -> GatewayProcess:
        gw = GatewayProcess(self.workdir, self.home, db_url=self.db_url, reverse=("openai",))
        self.gateways.append(gw)
        return gw.start()

    def load(self, gw: GatewayProcess) -> Load:
        return Load(gw.reverse_url("openai") + "/v1", self.key)

    def recorded_models(self, db_url: str | None = None) -> set[str]:
        url = db_url or self.db_url
        if url is None:
            with contextlib.closing(sqlite3.connect(self.home / "tollkeeper.db")) as conn:
                return {m for (m,) in conn.execute("SELECT model FROM usage_records")}
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return {m for (m,) in conn.execute(text("SELECT model FROM usage_records"))}
        finally:
            engine.dispose()

    def wait_recorded(self, models: set[str], db_url: str | None = None) -> set[str]:
        """The models of ``models`` still without a record once they stop arriving."""
        deadline = time.monotonic() + 60
        missing = models - self.recorded_models(db_url)
        while missing and time.monotonic() < deadline:
            time.sleep(0.2)
            missing = models - self.recorded_models(db_url)
        return missing

    def log(self) -> str:
        return self.gateways[-1].log()[-4000:] if self.gateways else ""


@contextlib.contextmanager
def rig(
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    db_url: str | None = None,
    home: Path | None = None,
) -> Iterator[Rig]:
    _no_proxy_env(monkeypatch)
    home = home or tmp / "home"
    home.mkdir(exist_ok=True)
    with FakeUpstream() as up:
        cli = Cli(home, db_url)
        cli.add_provider("openai", OPENAI_REAL, up.base_url + "/v1")
        cli.add_provider("anthropic", ANTHROPIC_REAL, up.base_url)
        key = cli.new_key("durability")["key"]
        r = Rig(up, tmp, home, db_url, key, [])
        try:
            yield r
        finally:
            for gw in r.gateways:
                if gw.proc is not None and gw.proc.poll() is None:
                    gw.proc.kill()
                    gw.proc.wait()


def _signal_and_wait(gw: GatewayProcess, sig: signal.Signals) -> float:
    assert gw.proc is not None
    started = time.monotonic()
    gw.proc.send_signal(sig)
    try:
        gw.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"gateway still running 90 s after {sig.name}") from None
    return time.monotonic() - started


def test_sigkill_under_load_loses_no_completed_response(tmp_path, monkeypatch):
    lost_per_kill = []
    with rig(tmp_path, monkeypatch) as r:
        completed: set[str] = set()
        for _ in range(3):
            gw = r.start_gateway()
            with r.load(gw) as load:
                load.wait(completed=150)
                _signal_and_wait(gw, signal.SIGKILL)
                done = load.stop()
            completed |= done
            r.start_gateway()  # replays the journal of the killed process
            missing = r.wait_recorded(done)
            lost_per_kill.append(len(missing))
            _signal_and_wait(r.gateways[-1], signal.SIGTERM)
        print(f"\nSIGKILL: {len(completed)} completed, lost per kill {lost_per_kill}")
        assert lost_per_kill == [0, 0, 0], r.log()


def test_sigterm_under_load_loses_nothing_and_exits_promptly(tmp_path, monkeypatch):
    with rig(tmp_path, monkeypatch) as r:
        gw = r.start_gateway()
        with r.load(gw) as load:
            load.wait(completed=200)
            exit_s = _signal_and_wait(gw, signal.SIGTERM)
            assert exit_s < PROMPT_EXIT_S, r.log()
            done = load.stop()
        missing = done - r.recorded_models()  # no restart: the stop itself wrote them
        print(f"\nSIGTERM: {len(done)} completed, {len(missing)} lost, exit {exit_s:.1f} s")
        assert not missing, r.log()
        assert not list((r.home / "journal").glob("*.jsonl"))  # a clean stop leaves none


@pytest.fixture
def relayed_pg(postgres_url: str) -> Iterator[tuple[DbRelay, str]]:
    url = make_url(postgres_url)
    relay = DbRelay((url.host or "127.0.0.1", url.port or 5432))
    relay.up()
    try:
        yield relay, url.set(host="127.0.0.1", port=relay.port).render_as_string(False)
    finally:
        relay.down()


@pytest.mark.postgres
def test_a_refusing_database_loses_nothing(relayed_pg, postgres_url, tmp_path, monkeypatch):
    relay, url = relayed_pg
    with rig(tmp_path, monkeypatch, db_url=url) as r:
        gw = r.start_gateway()
        with r.load(gw) as load:
            load.wait(completed=30)
            relay.down()  # the port refuses; open connections are cut
            load.wait(completed=len(load.completed) + 150)
            relay.up()
            load.wait(completed=len(load.completed) + 30)
            done = load.stop()
        missing = r.wait_recorded(done, postgres_url)
        print(f"\nrefused database: {len(done)} completed, {len(missing)} lost")
        assert not missing, r.log()


@pytest.mark.postgres
def test_a_hanging_database_loses_nothing_and_sigterm_stays_prompt(
    relayed_pg, postgres_url, tmp_path, monkeypatch
):
    relay, url = relayed_pg
    with rig(tmp_path, monkeypatch, db_url=url) as r:
        gw = r.start_gateway()
        with r.load(gw) as load:
            load.wait(completed=30)
            relay.freeze()  # accepts, answers nothing: a hung server
            frozen_at = time.monotonic()
            load.wait(completed=len(load.completed) + 300)
            assert wait_for(lambda: "spooling" in gw.log(), timeout=60), r.log()  # deadline hit
            # the hang goes on: the writer's retries meet it too, and traffic keeps spooling
            assert wait_for(lambda: "spool replay failed" in gw.log(), timeout=60), r.log()
            load.wait(completed=len(load.completed) + 300)
            exit_s = _signal_and_wait(gw, signal.SIGTERM)
            assert exit_s < PROMPT_EXIT_S, r.log()
            frozen_s = time.monotonic() - frozen_at
            done = load.stop()
        relay.thaw()
        r.start_gateway()  # writes what the stopped one spooled
        missing = r.wait_recorded(done, postgres_url)
        print(
            f"\nhanging database: {len(done)} completed, {len(missing)} lost, "
            f"SIGTERM {frozen_s - exit_s:.0f} s into the freeze, exit {exit_s:.1f} s"
        )
        assert not missing, r.log()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    return filler


@pytest.mark.postgres
def test_a_full_disk_while_the_database_is_away_stops_traffic_then_recovers(
    relayed_pg, postgres_url, tiny_disk, tmp_path, monkeypatch
):
    relay, url = relayed_pg
    with rig(tmp_path, monkeypatch, db_url=url, home=tiny_disk / "home") as r:
        gw = r.start_gateway()
        with r.load(gw) as load:
            load.wait(completed=20)
            relay.down()  # records go to the spool, on the tiny disk
            filler = _fill(tiny_disk)  # ... which is now full
            load.wait(not_recording=20)  # the gateway refuses rather than lose records
            filler.unlink()
            refused = load.not_recording
            load.wait(completed=len(load.completed) + 30)  # forwarding again
            relay.up()
            load.wait(completed=len(load.completed) + 30)
            done = load.stop()
        missing = r.wait_recorded(done, postgres_url)
        print(
            f"\nfull disk: {len(done)} completed, {refused} refused with 503, {len(missing)} lost"
        )
        assert not missing, r.log()
        full_log = gw.log()
        assert "NOT READY" in full_log and "READY again" in full_log
