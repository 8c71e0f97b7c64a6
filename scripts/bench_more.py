"""What scripts/bench.py measures beside requests: process CPU and memory, many open slow
streams, the CLI's start-up, the optional targets (an earlier checkout, LiteLLM) and the
report benchmark (scripts/bench_report.py, when it exists)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of every thread of a process so far (from /proc)."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:  # a thread ended while we read; the process's own total is close enough
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total / CLK_TCK


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def checkout_cli(tree: Path | None) -> list[str]:
    """argv of the tollkeeper CLI of this checkout, or of another one (its modules first)."""
    if tree is None:
        return [str(Path(sys.executable).parent / "tollkeeper")]
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); from cli.main import main; main()"
    return [sys.executable, "-c", code]


def time_cli(argv: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    """Median wall and CPU seconds of ``argv`` (one unmeasured run first: it migrates)."""
    walls, cpus = [], []
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, timeout=120)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            return {"error": done.stderr.decode(errors="replace").strip()[-300:]}
        if i:
            walls.append(wall)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus), "runs": runs}


async def open_streams(port: int, request: bytes, count: int, pid: int) -> dict[str, Any]:
    """``count`` slow streams at once; the process's RSS once every one has its first body
    chunk (or after 60 s); then every stream is read to its end."""
    from bench import Conn

    conns = [Conn(port) for _ in range(count)]
    started = 0
    all_started = asyncio.Event()

    async def one(conn: Conn) -> tuple[int, float, float] | BaseException:
        nonlocal started
        reader, writer = await conn.open()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        started += 1
        if started == count:
            all_started.set()
        status = int(head.split(b" ", 2)[1])
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
        return status, 0.0, 0.0

    tasks = [asyncio.ensure_future(asyncio.wait_for(one(c), 120)) for c in conns]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_started.wait(), 60)
    rss = rss_mib(pid)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for c in conns:
        c.close()
    ok = sum(1 for r in results if isinstance(r, tuple) and r[0] == 200)
    return {"open": started, "rss_mib": round(rss, 1), "ok": ok, "failed": count - ok}


def litellm_config(path: Path, upstream_port: int, model: str) -> Path:
    path.write_text(
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        f"      model: openai/{model}\n"
        f"      api_base: http://{HOST}:{upstream_port}/v1\n"
        "      api_key: sk-bench-fake-upstream\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
    )
    return path


def litellm_argv(venv: Path, config: Path, port: int) -> list[str]:
    exe = venv / "bin" / "litellm"
    return [str(exe), "--config", str(config), "--host", HOST, "--port", str(port)]


def run_report_bench(root: Path, args: list[str]) -> dict[str, Any] | None:
    """scripts/bench_report.py (the usage report over a generated 1 M-record database), when
    the checkout has it: its output, shown as it is."""
    script = root / "scripts" / "bench_report.py"
    if not script.exists():
        return None
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=3600
    )
    return {"exit": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-2000:]}
