"""CPU time of the run's worker and node processes, sampled from ``/proc`` while they run (Linux).

``mvcap bench frontend`` reports each worker's CPU time per frame after its model is loaded: on a
shared machine this is robust where wall-clock time is not. Processes are found as this process's
children and told apart by their command lines (``capture.service.worker --camera NAME``,
``capture.service.node``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

__all__ = ["SAMPLE_S", "ProcessMonitor"]

SAMPLE_S = 0.05
"""Period of the sampling, seconds (the CPU after a worker's last sample is not counted)."""


class ProcessMonitor(threading.Thread):
    """Samples the CPU time of this process's worker and node children from ``/proc`` (Linux).

    Per process: CPU seconds (user + system) when its ready file appeared, at its last sample, and
    the wall-clock times of both. A process reaped between two samples loses at most ``SAMPLE_S``
    of CPU time.

    Args:
        logs: the run's log folder, where each worker writes ``ready_<camera>`` once its model is loaded.

    Example:
        >>> monitor = ProcessMonitor(Path("runs/demo/logs"))  # then start(), run the take, stop()
        >>> monitor.procs  # pid -> role, camera, cpu_ready_s, t_ready, cpu_s, t_last: filled while it runs
        {}
    """

    def __init__(self, logs: Path):
        super().__init__(daemon=True)
        self.logs = logs
        self.procs: dict[int, dict] = {}
        self._halt = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def _children(self) -> set[int]:
        pids: set[int] = set()
        me = os.getpid()
        try:
            for task in os.listdir(f"/proc/{me}/task"):
                text = Path(f"/proc/{me}/task/{task}/children").read_text()
                pids |= {int(p) for p in text.split()}
        except OSError:
            pass
        return pids

    def _cpu_s(self, pid: int) -> float | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        rest = stat[stat.rindex(")") + 2 :].split()
        return (int(rest[11]) + int(rest[12])) / self._tick

    def _identify(self, pid: int) -> dict | None:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            return None
        if "capture.service.worker" in args and "--camera" in args:
            return {"role": "worker", "camera": args[args.index("--camera") + 1]}
        if "capture.service.node" in args:
            return {"role": "node", "camera": None}
        return None

    def sample(self) -> None:
        now = time.time()
        for pid in self._children() - set(self.procs):
            who = self._identify(pid)
            if who is not None:
                self.procs[pid] = who | {"cpu_ready_s": None, "t_ready": None, "cpu_s": 0.0, "t_last": now}
        for pid, p in self.procs.items():
            cpu = self._cpu_s(pid)
            if cpu is None:
                continue
            p["cpu_s"], p["t_last"] = cpu, now
            if p["role"] == "worker" and p["t_ready"] is None:
                ready = self.logs / f"ready_{p['camera']}"
                if ready.exists():
                    p["cpu_ready_s"], p["t_ready"] = cpu, ready.stat().st_mtime

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(SAMPLE_S)
