"""RuntimeHost and Shutdown alone: options declared, the runtime started, reloaded,
refused and stopped."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addon.hooks.lifecycle import SWITCH_INTERVAL_S, RuntimeHost, Shutdown, freeze_startup_heap
from addon.hooks.shared import Shared

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/none"  # nothing listens on port 1


@pytest.fixture
def host(tmp_path: Path, tk_home: Path) -> Iterator[tuple[RuntimeHost, taddons.context]]:
    shared = Shared()
    host = RuntimeHost(shared)
    with taddons.context(host) as tctx:
        yield host, tctx
        Shutdown(shared).done()


def _good(tmp_path: Path, tk_home: Path, name: str = "gw.db") -> dict[str, object]:
    return {
        "tollkeeper_db": f"sqlite:///{tmp_path / name}",
        "tollkeeper_home": str(tk_home),
        "tollkeeper_probe_upstream": False,
    }


def test_configure_starts_a_runtime_and_running_sets_the_loop(host, tmp_path, tk_home):
    host_, tctx = host
    tctx.configure(host_, **_good(tmp_path, tk_home))
    assert host_.shared.runtime is not None
    before = sys.getswitchinterval()
    freeze_startup_heap.cache_clear()  # as in a fresh process
    try:
        host_.running()
        assert host_.shared.loop is not None
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        assert freeze_startup_heap.cache_info().currsize == 1  # the start-up heap frozen
    finally:
        sys.setswitchinterval(before)


def test_the_startup_heap_is_frozen_once_per_process():
    code = (
        "import gc\n"
        "from addon.hooks.lifecycle import freeze_startup_heap\n"
        "before = gc.get_freeze_count()\n"
        "freeze_startup_heap()\n"
        "frozen = gc.get_freeze_count()\n"
        "later = [[] for _ in range(1000)]\n"
        "freeze_startup_heap()\n"
        "print(frozen > before + 10_000, gc.get_freeze_count() == frozen)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_a_bad_option_value_is_refused_and_the_runtime_kept(host, tmp_path, tk_home):
    host_, tctx = host
    tctx.configure(host_, **_good(tmp_path, tk_home))
    serving = host_.shared.runtime
    with pytest.raises(exceptions.OptionsError, match="must not be negative"):
        tctx.configure(host_, tollkeeper_upstream_timeout=-1)
    assert host_.shared.runtime is serving


def test_a_start_that_fails_is_one_error_line_and_not_retried(host, tk_home, caplog):
    host_, tctx = host
    caplog.set_level(logging.ERROR)
    tctx.configure(host_, tollkeeper_db=UNREACHABLE, tollkeeper_home=str(tk_home))
    assert host_.shared.runtime is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "tollkeeper:" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()
    tctx.configure(host_, tollkeeper_home=str(tk_home))  # the same config: reported once
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


def test_a_reload_builds_a_new_runtime_and_stops_the_old_one(host, tmp_path, tk_home):
    host_, tctx = host
    tctx.configure(host_, **_good(tmp_path, tk_home))
    first = host_.shared.runtime
    tctx.configure(host_, tollkeeper_admin="off")  # not a runtime option: kept
    assert host_.shared.runtime is first
    tctx.configure(host_, tollkeeper_upstream_timeout=7)
    second = host_.shared.runtime
    assert second is not first and second.config.upstream_timeout_s == 7
    assert not first.writer._thread.is_alive()


def test_a_reload_that_cannot_start_is_refused_and_the_old_runtime_serves_on(
    host, tmp_path, tk_home
):
    host_, tctx = host
    tctx.configure(host_, **_good(tmp_path, tk_home))
    serving = host_.shared.runtime
    with pytest.raises(exceptions.OptionsError, match="tollkeeper"):
        tctx.configure(host_, tollkeeper_db=UNREACHABLE)
    assert host_.shared.runtime is serving


def test_shutdown_stops_the_runtime(host, tmp_path, tk_home):
    host_, tctx = host
    tctx.configure(host_, **_good(tmp_path, tk_home))
    runtime = host_.shared.runtime
    Shutdown(host_.shared).done()
    assert host_.shared.runtime is None and not runtime.writer._thread.is_alive()
    Shutdown(host_.shared).done()  # nothing left to stop
