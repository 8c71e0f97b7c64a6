"""Benchmark: what tollkeeper adds over a bare mitmdump, against the fake upstream on loopback.

One process tree on 127.0.0.1: the fake upstream (tests/fakes/upstream.py); a bare `mitmdump -q`
reverse proxy to it; its twin with `stream_large_bodies=1` (a bare mitmdump buffers SSE, so this
is the fair baseline for streams); and `mitmdump -s addon/gateway.py` with a temporary home
(SQLite recording on). Round by round, each target going first in turn so that drift hits all
alike, it sends small non-streamed chat completions over keep-alive connections at each
concurrency, then streamed ones (time to the first body chunk). It prints a table and the ratios
the project's targets are stated in, stops tollkeeper gracefully (SIGINT) and checks that every
request it served was recorded.

Timings never fail the run (2 shared cores: expect about +-30% noise); a metering mismatch or a
failed start exits 1. Every run stops after --requests (--stream-requests) or --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_more

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
TARGETS = {  # name -> label; "bare_sse" is bare mitmdump with stream_large_bodies=1
    "direct": "direct fake",
    "bare": "bare mitmdump",
    "bare_sse": "bare, streaming",
    "tollkeeper": "tollkeeper",
    "before": "tollkeeper --before",  # the same gateway from another checkout (--before)
    "litellm": "LiteLLM proxy",  # --litellm VENV
}
GATEWAYS = ("tollkeeper", "before")
CHAT_TARGETS = ("direct", "bare", "tollkeeper", "before", "litellm")
STREAM_TARGETS = ("direct", "bare_sse", "tollkeeper", "before", "litellm")  # bare buffers SSE
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi."}]}
REQUEST_TIMEOUT_S = 30.0
START_TIMEOUT_S = 30.0


class BenchError(Exception):
    """A set-up step failed; the message says which and shows the log."""


# --- processes --------------------------------------------------------------------------------


def child_env(home: Path | None = None) -> dict[str, str]:
    """os.environ without proxy variables, and never the user's tollkeeper database or keys."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    for name in ("TOLLKEEPER_HOME", "TOLLKEEPER_DB", "TOLLKEEPER_MASTER_KEY"):
        env.pop(name, None)
    if home is not None:
        env["TOLLKEEPER_HOME"] = str(home)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Procs:
    """The children of the bench, each logging to WORKDIR/NAME.log; close() stops them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str], **kw: Any) -> Any:
        with (self.workdir / f"{name}.log").open("wb") as log:
            kw.setdefault("stdout", log)
            proc = subprocess.Popen(args, stderr=log, env=env, cwd=self.workdir, **kw)
        self.running[name] = proc
        return proc

    def stop(self, name: str, timeout_s: float = 30.0) -> int:
        """SIGINT (mitmdump shuts down cleanly, the writer flushes), SIGKILL after timeout_s."""
        proc = self.running.pop(name)
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            print(f"bench: {name} did not stop in {timeout_s:.0f} s; killed", file=sys.stderr)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return proc.returncode

    def close(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name, timeout_s=10.0)

    def failed(self, name: str, what: str) -> BenchError:
        log = (self.workdir / f"{name}.log").read_text(errors="replace")
        tail = "\n".join(log.splitlines()[-30:])
        return BenchError(f"{name}: {what}\n--- {name}.log (tail) ---\n{tail}")

    def wait_listening(self, name: str, port: int, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.running[name].poll() is not None:
                raise self.failed(name, f"exited with {self.running[name].returncode}")
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise self.failed(name, f"not listening on {port} after {timeout_s:.0f} s")

    def read_port(self, name: str) -> int:
        """The port from the fake's first line, "listening on PORT"."""
        proc = self.running[name]
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        line = proc.stdout.readline().decode() if ready else ""
        if not line.startswith("listening on "):
            raise self.failed(name, f"did not say it was listening (got {line!r})")
        return int(line.split()[-1])


def tollkeeper_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    argv = [str(BIN / "tollkeeper"), *args]
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)
    if done.returncode != 0:
        raise BenchError(f"tollkeeper {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Stack:
    ports: dict[str, int]  # target -> listening port
    key: str  # the virtual key (the direct and bare targets accept any key)
    env: dict[str, str]  # for the tollkeeper CLI
    pids: dict[str, int] = field(default_factory=dict)  # target -> process (not "direct")
    keys: dict[str, str] = field(default_factory=dict)  # target -> its own virtual key
    envs: dict[str, dict[str, str]] = field(default_factory=dict)  # gateway -> CLI env

    def key_for(self, target: str) -> str:
        return self.keys.get(target, self.key)


def start_gateway(
    procs: Procs, workdir: Path, name: str, up: int, port: int, tree: Path | None
) -> tuple[str, dict[str, str]]:
    """A tollkeeper gateway of this checkout (tree None) or another one, with its own home
    (SQLite), real key and virtual key."""
    env = child_env(workdir / f"home-{name}")
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    cli = bench_more.checkout_cli(tree)

    def run(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*cli, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
        )
        if done.returncode != 0:
            raise BenchError(f"{name}: tollkeeper {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    add = ("providers", "add", "openai", "--api-key-stdin", "--label", "main", "--base-url")
    run(*add, f"http://{HOST}:{up}/v1", stdin="sk-bench-fake-upstream\n")
    key = json.loads(run("keys", "create", "--project", "bench", "--json"))["key"]
    gateway = (tree or ROOT) / "addon" / "gateway.py"
    mode = f"reverse:https://api.openai.com@{HOST}:{port}"
    args = [str(BIN / "mitmdump"), "-q", "--set", "connection_strategy=lazy", "-s", str(gateway)]
    args += ["--mode", mode, "--set", f"confdir={workdir / name}-confdir"]
    procs.start(name, args, env)
    return key, env


def start_stack(procs: Procs, workdir: Path, opts: argparse.Namespace | None = None) -> Stack:
    fake = ROOT / "tests" / "fakes" / "upstream.py"
    cmd = [sys.executable, str(fake), "--host", HOST, "--port", "0"]
    procs.start("upstream", cmd, child_env(), stdout=subprocess.PIPE)
    up = procs.read_port("upstream")
    ports = {"direct": up, **{name: free_port() for name in ("bare", "bare_sse", "tollkeeper")}}
    mitmdump = [str(BIN / "mitmdump"), "-q", "--set", "connection_strategy=lazy"]
    for name, extra in (("bare", []), ("bare_sse", ["--set", "stream_large_bodies=1"])):
        mode = f"reverse:http://{HOST}:{up}@{HOST}:{ports[name]}"
        args = [*mitmdump, "--mode", mode, "--set", f"confdir={workdir / name}-confdir", *extra]
        procs.start(name, args, child_env())

    env = child_env(workdir / "home")
    base_url = f"http://{HOST}:{up}/v1"
    add = ("providers", "add", "openai", "--api-key-stdin", "--label", "main", "--base-url")
    tollkeeper_cli(env, *add, base_url, stdin="sk-bench-fake-upstream\n")
    key = json.loads(tollkeeper_cli(env, "keys", "create", "--project", "bench", "--json"))["key"]
    tk_mode = f"reverse:https://api.openai.com@{HOST}:{ports['tollkeeper']}"
    tk_args = ["-s", str(ROOT / "addon" / "gateway.py"), "--mode", tk_mode]
    tk_args += ["--set", f"confdir={workdir / 'tollkeeper-confdir'}"]
    procs.start("tollkeeper", [*mitmdump, *tk_args], env)
    stack = Stack(ports, key, env, envs={"tollkeeper": env})
    if opts is not None and opts.before is not None:
        ports["before"] = free_port()
        stack.keys["before"], stack.envs["before"] = start_gateway(
            procs, workdir, "before", up, ports["before"], opts.before.resolve()
        )
    if opts is not None and opts.litellm is not None:
        ports["litellm"] = free_port()
        config = bench_more.litellm_config(workdir / "litellm.yaml", up, CHAT["model"])
        argv = bench_more.litellm_argv(opts.litellm, config, ports["litellm"])
        procs.start("litellm", argv, child_env())
    for name in ports:
        if name != "direct":
            procs.wait_listening(name, ports[name], 180.0 if name == "litellm" else START_TIMEOUT_S)
            stack.pids[name] = procs.running[name].pid
    return stack


# --- a minimal HTTP/1.1 keep-alive client -----------------------------------------------------


def build_request(port: int, key: str, *, stream: bool, event_delay_s: float) -> bytes:
    doc: dict[str, Any] = dict(CHAT)
    head = ["POST /v1/chat/completions HTTP/1.1", f"Host: {HOST}:{port}"]
    if stream:  # usage asked for on every target, so the fake sends the same events to all
        doc.update(stream=True, stream_options={"include_usage": True})
        head.append(f"x-fake-scenario: ok; delay={event_delay_s}")
    body = json.dumps(doc).encode()
    head += [f"Authorization: Bearer {key}", "Content-Type: application/json"]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Conn:
    """One keep-alive connection; exchange() gives (status, s to first body chunk, s in all)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(HOST, self.port)
        return self.streams

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None

    async def exchange(self, request: bytes) -> tuple[int, float, float]:
        reader, writer = await self.open()
        start = time.perf_counter()
        writer.write(request)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            k.strip().lower(): v.strip().lower()
            for k, _, v in (x.partition(":") for x in lines[1:])
        }
        if "chunked" in headers.get("transfer-encoding", ""):
            first = await self._read_chunked(reader)
        elif "content-length" in headers:
            await reader.readexactly(int(headers["content-length"]))
            first = time.perf_counter()
        else:
            await reader.read()
            first = time.perf_counter()
            headers["connection"] = "close"
        end = time.perf_counter()
        if "close" in headers.get("connection", ""):
            self.close()
        return status, first - start, end - start

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> float:
        first = None
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
            first = first or time.perf_counter()
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
            pass
        return first or time.perf_counter()


@dataclass
class Run:
    target: str
    kind: str  # "chat", "stream" or "warmup"
    concurrency: int
    latencies_s: list[float] = field(default_factory=list)  # successful requests only
    ttfbs_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 502", "TimeoutError", ...
    elapsed_s: float = 0.0
    cpu_s: float | None = None  # CPU the target's process used during the run


async def load(run: Run, port: int, request: bytes, max_requests: int, max_s: float) -> Run:
    """Up to max_requests over run.concurrency connections, no new request after max_s."""
    conns = [Conn(port) for _ in range(run.concurrency)]
    await asyncio.gather(*(c.open() for c in conns), return_exceptions=True)
    left = max_requests
    start = time.perf_counter()
    deadline = start + max_s

    async def worker(conn: Conn) -> None:
        nonlocal left
        while left > 0 and time.perf_counter() < deadline:
            left -= 1
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, ttfb, total = await conn.exchange(request)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as e:
                run.errors[type(e).__name__] += 1
                conn.close()
                continue
            if status == 200:
                run.latencies_s.append(total)
                run.ttfbs_s.append(ttfb)
            else:
                run.errors[f"HTTP {status}"] += 1

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        run.elapsed_s = time.perf_counter() - start
        for c in conns:
            c.close()
    return run


async def measure(stack: Stack, args: argparse.Namespace) -> list[Run]:
    """Warm-up, then args.rounds rounds; within a round each target goes first in turn."""
    chat, sse = {}, {}
    for target, port in stack.ports.items():
        key = stack.key_for(target)
        chat[target] = build_request(port, key, stream=False, event_delay_s=0)
        sse[target] = build_request(port, key, stream=True, event_delay_s=args.event_delay)
    runs = [
        await load(Run(t, "warmup", 4), p, chat[t], args.warmup, 10) for t, p in stack.ports.items()
    ]
    plan = [("chat", c, chat, args.requests, args.seconds, CHAT_TARGETS) for c in args.concurrency]
    plan += [
        ("stream", c, sse, -(-args.stream_requests // c) * c, args.stream_seconds, STREAM_TARGETS)
        for c in args.stream_concurrency
    ]
    for r in range(args.rounds):
        for kind, conc, requests, count, seconds, all_targets in plan:
            targets = [t for t in all_targets if t in stack.ports]
            for target in targets[r % len(targets) :] + targets[: r % len(targets)]:
                run = Run(target, kind, conc)
                pid = stack.pids.get(target)
                cpu_before = bench_more.cpu_s(pid) if pid else None
                await load(run, stack.ports[target], requests[target], count, seconds)
                if pid and cpu_before is not None:
                    run.cpu_s = bench_more.cpu_s(pid) - cpu_before
                runs.append(run)
                rate = len(run.latencies_s) / max(run.elapsed_s, 1e-9)
                errors = f"  errors {dict(run.errors)}" if run.errors else ""
                where = f"round {r + 1}/{args.rounds} {kind:6} c={conc:<3} {target:10}"
                print(f"{where} {rate:8.1f} req/s{errors}", file=sys.stderr)
    return runs


# --- results ----------------------------------------------------------------------------------


def pct_ms(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of seconds, in ms."""
    if not values:
        return None
    ordered = sorted(values)
    return 1000 * ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(runs: list[Run], kind: str, target: str, concurrency: int) -> dict[str, Any]:
    """One table row: all rounds of (kind, target, concurrency) pooled."""
    mine = [r for r in runs if (r.kind, r.target, r.concurrency) == (kind, target, concurrency)]
    lat = [x for r in mine for x in r.latencies_s]
    ttfb = [x for r in mine for x in r.ttfbs_s]
    elapsed = sum(r.elapsed_s for r in mine)
    row: dict[str, Any] = {"kind": kind, "target": target, "concurrency": concurrency}
    row.update(ok=len(lat), errors=dict(sum((r.errors for r in mine), Counter())))
    row["rps"] = len(lat) / elapsed if elapsed else 0.0
    row["rps_per_round"] = [round(len(r.latencies_s) / max(r.elapsed_s, 1e-9), 1) for r in mine]
    row.update({f"p{q}_ms": pct_ms(lat, q) for q in (50, 95, 99)})
    cpus = [r.cpu_s for r in mine if r.cpu_s is not None]
    row["cpu_ms_per_req"] = 1000 * sum(cpus) / len(lat) if cpus and lat else None
    if kind == "stream":
        row.update({f"ttfb_p{q}_ms": pct_ms(ttfb, q) for q in (50, 95)})
    return row


def ratios(
    rows: dict[tuple[str, str, int], dict[str, Any]], extra: dict[str, Any]
) -> list[dict[str, Any]]:
    """The figures issue #11 states its targets in, for each gateway measured (tollkeeper,
    and the --before checkout), against bare mitmdump (streams: its streaming twin)."""
    out = []

    def add(gw: str, name: str, value: float | None, unit: str, op: str, limit: float) -> None:
        met = value is not None and (value >= limit if op == ">=" else value <= limit)
        shown = "-" if value is None else f"{value:+.2f} ms" if unit == " ms" else f"{value:.3f}"
        if value is not None and unit in (" MiB", " s"):
            shown = f"{value:.{1 if unit == ' MiB' else 3}f}{unit}"
        target = f"{op} {limit:g}{unit}" if op else "(information)"
        label = f"{TARGETS[gw]}: {name}"
        out.append({"name": label, "value": value, "shown": shown, "target": target, "met": met})

    def get(kind: str, target: str, c: int, field_: str) -> float | None:
        row = rows.get((kind, target, c))
        return None if row is None else row.get(field_)

    chat_cs = sorted({c for k, _, c in rows if k == "chat"})
    stream_cs = sorted({c for k, _, c in rows if k == "stream"})
    for gw in GATEWAYS:
        if not any(t == gw for _, t, _ in rows):
            continue
        for c in chat_cs:
            rps = quotient(get("chat", gw, c, "rps"), get("chat", "bare", c, "rps"))
            add(gw, f"RPS / bare, non-streamed, c={c}", rps, "", ">=", 0.90)
        for c in chat_cs:
            cpu = quotient(
                get("chat", gw, c, "cpu_ms_per_req"), get("chat", "bare", c, "cpu_ms_per_req")
            )
            add(gw, f"CPU per request / bare's, c={c}", cpu, "", "", 0)
        for c in stream_cs[-1:]:
            rps = quotient(get("stream", gw, c, "rps"), get("stream", "bare_sse", c, "rps"))
            add(gw, f"RPS / bare, metered streams, c={c}", rps, "", ">=", 0.85)
            cpu = quotient(
                get("stream", gw, c, "cpu_ms_per_req"),
                get("stream", "bare_sse", c, "cpu_ms_per_req"),
            )
            add(gw, f"CPU per stream / bare's, c={c}", cpu, "", "", 0)
        if 1 in chat_cs:
            p50 = diff(get("chat", gw, 1, "p50_ms"), get("chat", "bare", 1, "p50_ms"))
            add(gw, "added p50, c=1", p50, " ms", "<=", 0.5)
            p99 = quotient(get("chat", gw, 1, "p99_ms"), get("chat", "bare", 1, "p99_ms"))
            add(gw, "p99 / bare p99, c=1", p99, "", "<=", 1.5)
        streams = extra.get("open_streams", {}).get(gw)
        if streams:
            n = streams["open"]
            add(gw, f"RSS with {n} open slow streams", streams["rss_mib"], " MiB", "<=", 150)
        cli = extra.get("keys_list", {}).get(gw, {})
        add(gw, "`keys list`, empty database, wall", cli.get("wall_s"), " s", "<=", 0.3)
        add(gw, "`keys list`, empty database, CPU", cli.get("cpu_s"), " s", "", 0)
    return out


def quotient(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


async def measure_more(stack: Stack, args: argparse.Namespace, runs: list[Run]) -> dict[str, Any]:
    """RSS of each proxy with many slow streams open at once; the CLI's start-up."""
    extra: dict[str, Any] = {"open_streams": {}, "keys_list": {}}
    for target in ("bare_sse", *GATEWAYS):
        if target not in stack.ports or args.open_streams < 1:
            continue
        port = stack.ports[target]
        request = build_request(
            port, stack.key_for(target), stream=True, event_delay_s=args.slow_delay
        )
        found = await bench_more.open_streams(port, request, args.open_streams, stack.pids[target])
        extra["open_streams"][target] = found
        run = Run(target, "open", args.open_streams)
        run.latencies_s = [0.0] * found["ok"]  # counted by check_metering, not in any table
        runs.append(run)
        print(f"open streams {target:10} {found}", file=sys.stderr)
    for gw in GATEWAYS:
        if gw not in stack.envs:
            continue
        tree = args.before.resolve() if gw == "before" else None
        env = {
            **stack.envs[gw],
            "TOLLKEEPER_HOME": str(Path(stack.envs[gw]["TOLLKEEPER_HOME"]) / "empty"),
        }
        argv = [*bench_more.checkout_cli(tree), "keys", "list"]
        extra["keys_list"][gw] = bench_more.time_cli(argv, env, args.cli_runs)
        print(f"keys list  {gw:10} {extra['keys_list'][gw]}", file=sys.stderr)
    return extra


def check_metering(stack: Stack, runs: list[Run]) -> dict[str, Any]:
    """Tollkeeper's 200 answers (warm-up included) against its usage records."""
    mine = [r for r in runs if r.target == "tollkeeper"]
    served_ok = sum(len(r.latencies_s) for r in mine)
    usage = json.loads(tollkeeper_cli(stack.env, "usage", "--by", "project", "--format", "json"))
    recorded = sum(int(row["requests"]) for row in usage)
    recorded_errors = sum(int(row["error_requests"]) for row in usage)
    return {
        "served_ok": served_ok,
        "errors_seen_by_client": dict(sum((r.errors for r in mine), Counter())),
        "recorded": recorded,
        "recorded_errors": recorded_errors,
        "match": recorded - recorded_errors == served_ok,
    }


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    """First column left-aligned, the others right-aligned."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for row in cells:
        line = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(line))


def result_rows(report: dict[str, Any], kind: str) -> list[list[Any]]:
    out = []
    for r in (r for r in report["results"] if r["kind"] == kind):
        row = [TARGETS[r["target"]], r["concurrency"], r["ok"], sum(r["errors"].values())]
        if kind == "chat":
            row += [f"{r['rps']:.1f}", "/".join(f"{x:.0f}" for x in r["rps_per_round"])]
            row += [ms(r[f"p{q}_ms"]) for q in (50, 95, 99)]
        else:
            row += [f"{r['rps']:.1f}"]
            row += [ms(r[k]) for k in ("ttfb_p50_ms", "ttfb_p95_ms", "p50_ms", "p95_ms")]
        row.append(ms(r["cpu_ms_per_req"]))
        out.append(row)
    return out


def print_report(report: dict[str, Any]) -> None:
    a, head = report["args"], ["target", "conc", "ok", "errors"]
    runs = f"{a['rounds']} rounds, each run <= {a['requests']} requests or {a['seconds']:g} s"
    title = f"non-streamed POST /v1/chat/completions, keep-alive ({runs})"
    columns = ["req/s", "req/s per round", "p50 ms", "p95 ms", "p99 ms", "CPU ms/req"]
    print_table(title, [*head, *columns], result_rows(report, "chat"))
    title = f"streamed, events {1000 * a['event_delay']:g} ms apart (TTFB: first body chunk, ms)"
    columns = ["req/s", "TTFB p50", "TTFB p95", "total p50", "total p95", "CPU ms/req"]
    print_table(title, [*head, *columns], result_rows(report, "stream"))
    direct = [r for r in report["results"] if (r["kind"], r["target"]) == ("stream", "direct")]
    if any(r["p50_ms"] is not None and r["p50_ms"] < 1000 * a["event_delay"] for r in direct):
        print("WARNING: the fake sent its events without the delay; stream numbers are not valid")
    for r in (r for r in report["results"] if r["errors"]):
        print(f"errors: {TARGETS[r['target']]} {r['kind']} c={r['concurrency']}: {r['errors']}")
    verdicts = [[x["name"], x["shown"], x["target"]] for x in report["ratios"]]
    for row, x in zip(verdicts, report["ratios"], strict=True):
        info = x["target"] == "(information)"
        row.append("" if info else "target met" if x["met"] else "target missed")
    print_table("targets (timings are never enforced)", ["ratio", "value", "target", ""], verdicts)
    for target, found in report["extra"]["open_streams"].items():
        print(f"open slow streams, {TARGETS[target]}: {found}")
    if report.get("report_bench"):
        rb = report["report_bench"]
        print(f"\nscripts/bench_report.py (exit {rb['exit']}):\n{rb['stdout']}{rb['stderr']}")
    m = report["metering"]
    verdict = "match" if m["match"] else "MISMATCH"
    others = m["errors_seen_by_client"] or "none"
    print(f"\nmetering: tollkeeper answered 200 to {m['served_ok']} requests (others: {others})")
    print(f"          usage records: {m['recorded']} ({m['recorded_errors']} errors) -> {verdict}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arg = p.add_argument
    arg("--requests", type=int, default=2000, help="requests per non-streamed run (2000)")
    arg("--seconds", type=float, default=4.0, help="no new request after this, per run (4)")
    arg("--rounds", type=int, default=3, help="each round runs every case on every target (3)")
    arg("--concurrency", type=ints, default=[1, 32], help="connections, non-streamed (1,32)")
    arg("--stream-requests", type=int, default=64, help="streams per run (64; rounded up)")
    arg("--stream-seconds", type=float, default=10.0, help="no new stream after this (10)")
    arg("--stream-concurrency", type=ints, default=[1, 32], help="connections, streamed (1,32)")
    arg("--event-delay", type=float, default=0.05, help="seconds between SSE events (0.05)")
    arg("--warmup", type=int, default=200, help="unmeasured requests per target first (200)")
    arg("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    arg("--open-streams", type=int, default=256, help="slow streams open at once for RSS (256)")
    arg("--slow-delay", type=float, default=0.5, help="seconds between their events (0.5)")
    arg("--cli-runs", type=int, default=5, help="timed runs of `keys list` (5)")
    arg("--before", type=Path, metavar="CHECKOUT", help="also bench the gateway of this checkout")
    arg("--litellm", type=Path, metavar="VENV", help="also bench LiteLLM's proxy from this venv")
    arg("--report-args", default="", help="arguments for scripts/bench_report.py, if it exists")
    arg("--no-report", action="store_true", help="skip scripts/bench_report.py")
    arg("--tiny", action="store_true", help="a few requests of each kind: checks the bench runs")
    args = p.parse_args(argv)
    if args.tiny:
        args.requests, args.seconds, args.rounds, args.warmup = 20, 1.0, 1, 5
        args.concurrency, args.stream_concurrency, args.stream_requests = [1, 4], [4], 4
        args.event_delay, args.open_streams, args.slow_delay, args.cli_runs = 0.01, 8, 0.05, 1
        args.no_report = args.no_report or not args.report_args
    counts = [args.requests, args.rounds, args.stream_requests, args.warmup]
    if min(counts + args.concurrency + args.stream_concurrency) < 1 or args.seconds <= 0:
        p.error("counts, concurrencies and --seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="tollkeeper-bench-") as tmp:
            procs = Procs(Path(tmp))
            try:
                stack = start_stack(procs, Path(tmp), args)
                runs = asyncio.run(measure(stack, args))
                extra = asyncio.run(measure_more(stack, args, runs))
                procs.stop("tollkeeper")  # SIGINT: the writer flushes before we count
                metering = check_metering(stack, runs)
            finally:
                procs.close()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    kinds = (
        ("chat", args.concurrency, CHAT_TARGETS),
        ("stream", args.stream_concurrency, STREAM_TARGETS),
    )
    keys = [(k, t, c) for k, cs, ts in kinds for c in cs for t in ts if t in stack.ports]
    rows = {key: summarize(runs, *key) for key in keys}
    shown_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    report = {"args": shown_args, "results": list(rows.values()), "extra": extra}
    report.update(ratios=ratios(rows, extra), metering=metering, cpus=os.cpu_count())
    if not args.no_report:
        report["report_bench"] = bench_more.run_report_bench(ROOT, args.report_args.split())
    report["wall_s"] = round(time.monotonic() - started, 1)
    print_report(report)
    print(f"\nwall time {report['wall_s']} s on {report['cpus']} CPUs; shared cores, noisy timings")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if metering["match"] else 1


if __name__ == "__main__":
    sys.exit(main())
