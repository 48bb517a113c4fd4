"""Helpers for tests that run the service's processes: start one, wait for a line in its log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def py(*args: str, log: Path) -> subprocess.Popen:
    """``python -m ARGS`` with stdout and stderr appended to ``log`` (one thread of BLAS)."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log.open("a"), stderr=subprocess.STDOUT, env=env)


def wait_for_text(path: Path, text: str, timeout_s: float = 60.0) -> bool:
    """Wait until ``text`` appears in a file (a loaded machine starts Python processes slowly)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.05)
    return False


def live_config(folder: Path, calib: Path) -> tuple[Path, str, str]:
    """A live node config on two free loopback ports: (config path, input endpoint, output endpoint)."""
    from capture.service.launcher import free_tcp_endpoint

    node_in, node_out = free_tcp_endpoint(), free_tcp_endpoint()
    cfg = folder / "live.toml"
    cfg.write_text(
        f'calibration = "{calib}"\n[node]\ninput_endpoint = "{node_in}"\noutput_endpoint = "{node_out}"\n'
        "frame_timeout_s = 1.0\nheartbeat_timeout_s = 3.0\n"
    )
    return cfg, node_in, node_out


def inproc_config(cfg=None):  # noqa: ANN001, ANN201 - core.config.Config
    """``cfg`` (default: the defaults) with the node on fresh inproc endpoints."""
    import dataclasses
    import uuid

    from core.config import Config

    cfg = cfg or Config()
    tag = uuid.uuid4().hex
    node = dataclasses.replace(cfg.node, input_endpoint=f"inproc://in-{tag}", output_endpoint=f"inproc://out-{tag}")
    return dataclasses.replace(cfg, node=node)


def run_node_with_workers(node, workers, ctx, timeout_s: float = 60.0) -> dict:  # noqa: ANN001
    """Run ``node`` and the ``workers`` in threads of this process on ``ctx``; the node's summary.

    The node must end by itself (every worker ends); the context is terminated afterwards.
    """
    import threading

    result: dict = {}
    t_node = threading.Thread(target=lambda: result.update(node.run(ctx)))
    t_node.start()
    threads = [threading.Thread(target=w.run, args=(ctx,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s)
    t_node.join(timeout_s)
    assert not t_node.is_alive(), "node did not finish"
    ctx.term()
    return result
