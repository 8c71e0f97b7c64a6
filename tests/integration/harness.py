"""A real ``mitmdump -s addon/gateway.py`` in a subprocess, and the ``tollkeeper`` CLI.

Everything lives in a temporary directory: TOLLKEEPER_HOME, the mitmproxy confdir (and so
its CA), the log file and any ``-w`` flow file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cli.main import cli as tollkeeper

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADDON = ROOT / "addon" / "gateway.py"
# Generous: on a loaded machine (xdist workers, other test runs) mitmdump and the addon's
# imports alone can take half a minute; a gateway that starts sooner is used at once.
START_TIMEOUT_S = 90.0


_HANDED_OUT: set[int] = set()
STARTED: list[GatewayProcess] = []  # every gateway this process started, for failure reports


def free_port() -> int:
    """A port free now that this process has not been given before: the kernel may hand
    the same port out again once its socket is closed, and two listeners of one mitmdump
    on one address make it refuse to start ("Cannot spawn multiple servers")."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def base_env(home: Path, db_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env["TOLLKEEPER_HOME"] = str(home)
    env.pop("TOLLKEEPER_MASTER_KEY", None)
    if db_url:
        env["TOLLKEEPER_DB"] = db_url
    else:
        env.pop("TOLLKEEPER_DB", None)
    return env


class Cli:
    """Runs ``tollkeeper`` commands against one home/database, as the installed command would.

    A command runs in this process through click's ``CliRunner``, with the environment the
    command's own process would get (``base_env`` as it was when this Cli was made: no proxy
    variables, this home and database); it talks to the gateway through the database only, so
    a process of its own adds nothing but an interpreter start (the console script as a
    process is tested by tests/cli/test_cli_main.py). ``serve`` without ``--dry-run`` execs
    mitmproxy, so that one runs as a process."""

    def __init__(self, home: Path, db_url: str | None = None) -> None:
        self.env = base_env(home, db_url)

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        wanted = {**self.env, **(env or {})}
        if args[:1] == ("serve",) and "--dry-run" not in args:
            proc = self._run_process(args, stdin, wanted)
        else:
            proc = self._run_here(args, stdin, wanted)
        if check and proc.returncode != 0:
            raise AssertionError(f"tollkeeper {' '.join(args)} failed: {proc.stderr}")
        return proc

    @staticmethod
    def _run_process(
        args: Sequence[str], stdin: str | None, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "tollkeeper"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    @staticmethod
    def _run_here(
        args: Sequence[str], stdin: str | None, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        # exactly ``env`` while the command runs: what differs is set, what is extra unset
        changes: dict[str, str | None] = {k: None for k in os.environ if k not in env}
        changes.update({k: v for k, v in env.items() if os.environ.get(k) != v})
        result = CliRunner().invoke(tollkeeper, list(args), input=stdin, env=changes)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a bug: the real command would say "internal error"
        return subprocess.CompletedProcess(
            ["tollkeeper", *args], result.exit_code, result.stdout, result.stderr
        )

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.run(*args, **kw).stdout)

    def new_key(self, project: str, *extra: str) -> dict[str, Any]:
        return dict(self.json("keys", "create", "--project", project, "--json", *extra))

    def add_provider(self, name: str, secret: str, base_url: str, label: str = "main") -> None:
        self.run(
            "providers",
            "add",
            name,
            "--api-key-stdin",
            "--label",
            label,
            "--base-url",
            base_url,
            stdin=secret + "\n",
        )

    def usage(self, by: str = "project") -> list[dict[str, Any]]:
        return list(self.json("usage", "--by", by, "--format", "json"))


class GatewayProcess:
    def __init__(
        self,
        workdir: Path,
        home: Path,
        *,
        db_url: str | None = None,
        reverse: Sequence[str] = ("openai", "anthropic"),
        extra_args: Sequence[str] = (),
        program: str = "mitmdump",
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir, self.home, self.db_url = workdir, home, db_url
        self.env = dict(env or {})
        self.program = program
        self.confdir = workdir / "mitmproxy"
        self.log_path = workdir / "mitmdump.log"
        self.reverse = tuple(reverse)
        self._pick_ports()
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped_at: float | None = None  # time.time() of the last stop

    def _pick_ports(self) -> None:
        targets = {
            "openai": "https://api.openai.com",
            "anthropic": "https://api.anthropic.com",
            "gemini": "https://generativelanguage.googleapis.com",
        }
        ports: set[int] = set()
        while len(ports) < 2 + len(self.reverse):
            ports.add(free_port())
        self.port, self.admin_port, *others = sorted(ports)
        self.reverse_ports = dict(zip(self.reverse, others, strict=True))
        self.modes = [f"regular@127.0.0.1:{self.port}"] + [
            f"reverse:{targets[n]}@127.0.0.1:{p}" for n, p in self.reverse_ports.items()
        ]

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_cert(self) -> str:
        return str(self.confdir / "mitmproxy-ca-cert.pem")

    @property
    def _own_admin(self) -> bool:
        """The test sets the admin listener itself."""
        return any("tollkeeper_admin=" in a for a in self.extra_args)

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def reverse_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.reverse_ports[name]}"

    def admin_get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.admin_url + path, timeout=20, trust_env=False, **kw)

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of the first sample of ``/metrics`` named ``name`` with these labels."""
        for sample in self._samples(name):
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
        return None

    def real_key_state(self, provider: str, label: str) -> str | None:
        """The gateway's own view of a real key: healthy, cooling, half_open or disabled;
        None while its key snapshot does not have the key yet. Tests wait on this instead of
        sleeping for a refresh interval."""
        for sample in self._samples("tollkeeper_real_key_healthy"):
            if (sample.labels["provider"], sample.labels["label"]) == (provider, label):
                return str(sample.labels["state"])
        return None

    def _samples(self, name: str) -> list[Sample]:
        text = self.admin_get("/metrics").text
        families = text_string_to_metric_families(text)
        return [s for family in families for s in family.samples if s.name == name]

    def start(self) -> GatewayProcess:
        """Start mitmdump; when another process took one of its ports between ``free_port``
        and the bind (other test runs share the machine), try again with new ports. The ports
        of one gateway are distinct by construction (``free_port`` may return a port twice)."""
        for _attempt in range(3):
            try:
                return self._start()
            except PortTaken:
                self._pick_ports()
        return self._start()

    def _start(self) -> GatewayProcess:
        args = [
            str(BIN / self.program),
            "-s",
            str(ADDON),
            "--set",
            f"confdir={self.confdir}",
            "--set",
            "tollkeeper_refresh_ms=200",
            "--set",
            "tollkeeper_flush_ms=20",  # a record is in the database soon after its response
        ]
        if not self._own_admin:  # mitmdump breaks on a deferred option given twice
            args += ["--set", f"tollkeeper_admin=127.0.0.1:{self.admin_port}"]
        for m in self.modes:
            args += ["--mode", m]
        args += self.extra_args
        self.stopped_at = None
        if self not in STARTED:
            STARTED.append(self)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**base_env(self.home, self.db_url), **self.env},
                cwd=self.workdir,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        admin = [] if self._own_admin else [self.admin_port]
        waiting = {self.port, *admin, *self.reverse_ports.values()}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log()
                if "address already in use" in log.lower():
                    self.log_path.unlink()
                    raise PortTaken(log)
                raise RuntimeError(f"mitmdump exited {self.proc.returncode}:\n{log}")
            # a listener that accepted once is not probed again: each probe is a connection
            # the starting mitmdump has to serve and log
            waiting = {p for p in waiting if not _accepts(p)}
            if not waiting and Path(self.ca_cert).exists():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mitmdump did not start:\n{self.log()}")

    def stop(self) -> int | None:
        try:
            return self._stop()
        finally:
            self.stopped_at = self.stopped_at or time.time()

    def _stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def ran_since(self, moment: float) -> bool:
        """Started and not stopped before ``moment`` (a ``time.time()`` reading)."""
        return self.proc is not None and (self.stopped_at is None or self.stopped_at >= moment)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PortTaken(RuntimeError):
    """mitmdump could not bind a port that was free a moment before."""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
