"""Local launcher: one node process and one worker process per camera, on loopback.

Used by ``mvcap demo`` and ``mvcap run``. Every part is a separate OS process started with
``python -m``; the node receives detections over ZeroMQ only. On Ctrl-C (SIGINT reaches the whole
process group) or SIGTERM every child is stopped, waited for and, if needed, killed, so no orphan is
left; the node flushes ``poses3d.jsonl`` and writes ``summary.json`` before it exits.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from calibration.camera import CameraRig
from capture.outputs import read_poses_jsonl, render_overlay
from capture.service.worker import is_detection_file
from core.config import CameraSource, Config
from core.skeleton import COCO17

__all__ = ["dump_config", "free_tcp_endpoint", "launch"]

log = logging.getLogger(__name__)

OFFLINE_FRAME_TIMEOUT_S = 120.0
REALTIME_START_DELAY_S = 3.0
_SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def free_tcp_endpoint() -> str:
    """A ``tcp://127.0.0.1:PORT`` endpoint on a port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _toml_value(v: object) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def dump_config(cfg: Config) -> str:
    """Serialise a :class:`Config` to TOML (flat sections; round-trips through ``load_config``)."""
    lines = [f"calibration = {_toml_value(cfg.calibration)}", ""]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(f"[{f.name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in dataclasses.asdict(value).items()]
            lines.append("")
    for cam in cfg.cameras:
        lines += ["[[cameras]]", f"name = {_toml_value(cam.name)}", f"source = {_toml_value(cam.source)}", ""]
    return "\n".join(lines)


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen:
    env = os.environ | _SINGLE_THREAD_ENV
    fh = log_path.open("w")
    return subprocess.Popen([sys.executable, "-m", *args], stdout=fh, stderr=subprocess.STDOUT, env=env)


def _stop(procs: list[subprocess.Popen], timeout_s: float, grace_s: float = 0.0) -> None:
    """Let processes exit by themselves for ``grace_s``, then SIGTERM, then SIGKILL after ``timeout_s``."""
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(
    cfg: Config,
    rig: CameraRig,
    out_dir: Path,
    model_path: str | None,
    max_frames: int | None = None,
    overlays: bool = True,
    realtime: bool = False,
) -> tuple[int, dict]:
    """Run node + workers locally until the sources end, then render the overlay videos.

    Args:
        cfg: resolved configuration (calibration path and cameras set; endpoints are replaced by
            free loopback ports).
        rig: the cameras of ``cfg.cameras``, in that order.
        out_dir: run folder (created).
        model_path: detector ONNX model for the workers (None when all sources are detection files).
        max_frames: stop each worker after this many frames.
        overlays: render ``overlay_<camera>.mp4`` for video sources.
        realtime: workers pace file sources at their frame rate.

    Returns:
        (exit code, summary). Exit code 0 ok, 1 a process failed, 130 interrupted.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    logs = out_dir / "logs"
    logs.mkdir(exist_ok=True)
    node_cfg = dataclasses.replace(cfg.node, input_endpoint=free_tcp_endpoint(), output_endpoint=free_tcp_endpoint())
    if not realtime and not any(c.source.isdigit() for c in cfg.cameras):
        # Offline sources have no real-time deadline: workers sharing few cores drift seconds apart,
        # so the node waits for every live camera instead of timing frames out.
        node_cfg = dataclasses.replace(node_cfg, frame_timeout_s=max(node_cfg.frame_timeout_s, OFFLINE_FRAME_TIMEOUT_S))
    cfg = dataclasses.replace(cfg, node=node_cfg)
    # Paths become absolute: the written config is read from the run folder, not from here.
    cameras = tuple(
        CameraSource(c.name, c.source if c.source.isdigit() else str(Path(c.source).resolve())) for c in cfg.cameras
    )
    cfg = dataclasses.replace(cfg, calibration=str(Path(cfg.calibration).resolve()), cameras=cameras)
    cfg_path = out_dir / "config.toml"
    cfg_path.write_text(dump_config(cfg))
    # Realtime replays start a few seconds ahead, so that no frame is overdue while processes start.
    epoch_ns = time.time_ns() + (int(REALTIME_START_DELAY_S * 1e9) if realtime else 0)
    t_start = time.perf_counter()
    procs: list[subprocess.Popen] = []
    interrupted = False
    try:
        node = _spawn(["capture.service.node", "--config", str(cfg_path), "--out", str(out_dir)], logs / "node.log")
        procs.append(node)
        workers = []
        for cam in cfg.cameras:
            args = ["capture.service.worker", "--camera", cam.name, "--source", cam.source, "--config", str(cfg_path),
                    "--endpoint", node_cfg.input_endpoint, "--epoch-ns", str(epoch_ns)]  # fmt: skip
            if model_path and not is_detection_file(cam.source):
                args += ["--model", model_path]
            if max_frames is not None:
                args += ["--max-frames", str(max_frames)]
            if realtime:
                args.append("--realtime")
            workers.append(_spawn(args, logs / f"worker_{cam.name}.log"))
        procs += workers
        log.info("started node (pid %d) and %d workers; logs in %s", node.pid, len(workers), logs)
        while any(w.poll() is None for w in workers) and node.poll() is None:
            time.sleep(0.2)
        # Workers are done (or the node died): give the node time to drain, then stop it.
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.warning("node still running 30 s after the workers ended; stopping it")
            _stop([node], 10)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted; waiting for node and workers to flush their outputs")
        _stop(procs, 15, grace_s=10)
    finally:
        _stop(procs, 15)
    # A process stopped by us (SIGTERM: -15) or by Ctrl-C (130) did not fail.
    failed = {" ".join(p.args[2:5]): p.returncode for p in procs if p.returncode not in (0, None, -15, 130)}
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary["wall_s"] = round(time.perf_counter() - t_start, 2)
    if overlays and not interrupted and (out_dir / "poses3d.jsonl").exists():
        _, frames = read_poses_jsonl(out_dir / "poses3d.jsonl")
        rendered = []
        for cam in cfg.cameras:
            if Path(cam.source).is_file() and not is_detection_file(cam.source):
                out = out_dir / f"overlay_{cam.name}.mp4"
                render_overlay(cam.source, rig[cam.name], frames, COCO17, out)
                rendered.append(out.name)
        summary.setdefault("outputs", {})["overlays"] = rendered
    summary["interrupted"] = interrupted or summary.get("interrupted", False)
    summary["failed_processes"] = failed
    if summary_path.exists() or summary:
        tmp = out_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(summary_path)
    if interrupted:
        return 130, summary
    return (1 if failed else 0), summary
