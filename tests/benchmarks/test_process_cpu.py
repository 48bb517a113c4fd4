"""The front-end benchmark's CPU sampler: children found by role, CPU time read from /proc."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from capture.benchmarks.process_cpu import ProcessMonitor

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(1.5)\n"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_monitor_finds_workers_and_node_and_reads_their_cpu(tmp_path: Path) -> None:
    (tmp_path / "ready_camX").touch()  # camX's model is loaded before the first sample
    monitor = ProcessMonitor(tmp_path)
    monitor.start()
    cmds = {
        "worker": [sys.executable, "-c", BURN, "capture.service.worker", "--camera", "camX"],
        "node": [sys.executable, "-c", BURN, "capture.service.node"],
        "other": [sys.executable, "-c", BURN, "something.else"],
    }
    procs = {role: subprocess.Popen(cmd) for role, cmd in cmds.items()}
    try:
        for p in procs.values():
            p.wait(timeout=60)
    finally:
        monitor.stop()
    seen = {monitor.procs[p.pid]["role"]: monitor.procs[p.pid] for p in procs.values() if p.pid in monitor.procs}
    assert set(seen) == {"worker", "node"}  # a child that is neither is not counted
    assert seen["worker"]["camera"] == "camX" and seen["node"]["camera"] is None
    for rec in seen.values():  # 0.3 s of CPU burnt, then 1.5 s asleep: the last samples hold it all
        assert 0.25 <= rec["cpu_s"] < 5.0
    assert seen["worker"]["cpu_ready_s"] is not None and seen["worker"]["t_ready"] <= time.time()
    assert seen["node"]["t_ready"] is None  # only workers report ready
