"""The end-to-end harness itself: what its gateways rely on."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from integration.harness import GatewayProcess, free_port


def test_free_port_never_hands_out_a_port_twice() -> None:
    """500 draws from ~28 000 ephemeral ports repeat one ~99 % of the time when nothing
    prevents it; one mitmdump given the same port twice refuses to start."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_a_failure_report_names_the_gateways_that_ran_during_the_test(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path, tmp_path)
    assert not gw.ran_since(0)  # never started
    gw.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    assert gw.ran_since(time.time())  # running
    before = time.time()
    gw.stop()
    assert gw.ran_since(before) and not gw.ran_since(time.time() + 1)
    gw.proc.wait()
    gw.stop()  # a second stop keeps the first stop's time
    assert gw.ran_since(before)
