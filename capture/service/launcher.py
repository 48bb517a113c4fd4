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
from capture.outputs import count_frames, read_poses_jsonl, render_overlay
from capture.service.worker import is_detection_file
from capture.sources.image_map import camera_in_frame
from core.config import Config
from core.errors import CaptureError, InputError, OutputError
from core.skeleton import COCO17

__all__ = ["dump_config", "free_tcp_endpoint", "launch"]

log = logging.getLogger(__name__)

OFFLINE_HEARTBEAT_TIMEOUT_S = 10.0
"""Offline runs: a worker silent this long (seconds) is dead; its thread heartbeats every second."""
REALTIME_START_DELAY_S = 0.5
"""Realtime replays: frame 0 is due this long (seconds) after every worker reported ready."""
NODE_STALL_S = 120.0
"""A node whose outputs and log did not grow for this long after the workers ended is stopped."""
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
        lines += ["[[cameras]]", f"name = {_toml_value(cam.name)}", f"source = {_toml_value(cam.source)}"]
        if cam.image_size is not None:
            lines.append(f"image_size = [{int(cam.image_size[0])}, {int(cam.image_size[1])}]")
        if cam.depth:
            lines.append(f"depth = {_toml_value(cam.depth)}")
        if cam.image_map is not None:
            m = cam.image_map
            lines.append(f"image_map = {{scale_x = {m.scale_x!r}, scale_y = {m.scale_y!r}, "
                         f"pad_x = {m.pad_x!r}, pad_y = {m.pad_y!r}}}")  # fmt: skip
        if cam.stills:
            lines.append("stills = true")
        if cam.rotate:
            lines.append(f"rotate = {int(cam.rotate)}")
        lines.append("")
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
    model_path: str | dict[str, str] | None,
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
        model_path: detector ONNX model for the workers: one for all, or one per camera name
            (:func:`capture.service.run.models_for`: the input shape follows each camera's frames);
            None (or a camera left out) lets the worker choose its default.
        max_frames: stop each worker after this many frames.
        overlays: render ``overlay_<camera>.mp4`` for video sources.
        realtime: workers pace file sources at their frame rate.

    Returns:
        (exit code, summary). Exit code 0 complete, 1 a process failed or the output misses data it
        should have had (see :mod:`capture.service.report`), 130 interrupted.

    Raises:
        InputError: ``out_dir`` already holds a run.
        OutputError: ``out_dir`` cannot be created.
    """
    if (out_dir / "poses3d.jsonl").exists():
        raise InputError(f"{out_dir}: already holds a run (poses3d.jsonl); choose a new --out folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        logs = out_dir / "logs"
        logs.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create the run folder ({exc.strerror})") from None
    node_cfg = dataclasses.replace(
        cfg.node,
        input_endpoint=free_tcp_endpoint(),
        output_endpoint=free_tcp_endpoint(),
        feedback_endpoint=free_tcp_endpoint() if cfg.detector.rois else cfg.node.feedback_endpoint,
    )
    offline = not realtime and not any(c.source.isdigit() for c in cfg.cameras)
    if offline:
        # Every source is a file: lossless by construction. A frame waits for every camera that is
        # alive (heartbeating) however long detection takes; only a camera that ended or died is
        # not waited for. A worker heartbeats from a thread of its own, so a long silence means a
        # dead or hung process even on a loaded machine.
        node_cfg = dataclasses.replace(
            node_cfg, lossless=True, heartbeat_timeout_s=max(node_cfg.heartbeat_timeout_s, OFFLINE_HEARTBEAT_TIMEOUT_S)
        )
    cfg = dataclasses.replace(cfg, node=node_cfg)
    # Paths become absolute: the written config is read from the run folder, not from here.
    cameras = tuple(
        dataclasses.replace(c, source=c.source if c.source.isdigit() else str(Path(c.source).resolve()))
        for c in cfg.cameras
    )
    cfg = dataclasses.replace(cfg, calibration=str(Path(cfg.calibration).resolve()), cameras=cameras)
    cfg_path = out_dir / "config.toml"
    cfg_path.write_text(dump_config(cfg))
    t_start = time.perf_counter()
    procs: list[subprocess.Popen] = []
    interrupted = False
    epoch_file = logs / "epoch_ns"
    try:
        node = _spawn(["capture.service.node", "--config", str(cfg_path), "--out", str(out_dir)], logs / "node.log")
        procs.append(node)
        workers = []
        for cam in cfg.cameras:
            # Offline replays keep the files' own time (frame 0 at 0 ns): the same input gives the same
            # output. Realtime replays start once every worker is ready (epoch file, below).
            args = ["capture.service.worker", "--camera", cam.name, "--source", cam.source, "--config", str(cfg_path),
                    "--endpoint", node_cfg.input_endpoint, "--ready-file", str(logs / f"ready_{cam.name}")]  # fmt: skip
            if realtime:
                args += ["--realtime", "--epoch-file", str(epoch_file)]
            model = model_path.get(cam.name) if isinstance(model_path, dict) else model_path
            if model and not is_detection_file(cam.source):
                args += ["--model", model]
            if max_frames is not None:
                args += ["--max-frames", str(max_frames)]
            workers.append(_spawn(args, logs / f"worker_{cam.name}.log"))
        procs += workers
        log.info("started node (pid %d) and %d workers; logs in %s", node.pid, len(workers), logs)
        if realtime:
            _start_clock(cfg, workers, node, logs, epoch_file)
        while any(w.poll() is None for w in workers) and node.poll() is None:
            time.sleep(0.2)
        _wait_for_node(node, out_dir, logs / "node.log")
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted; waiting for node and workers to flush their outputs")
        _stop(procs, 60, grace_s=10)
    finally:
        _stop(procs, 60)
    # A process stopped by us (SIGTERM: -15) or by Ctrl-C (130) did not fail.
    failed = {" ".join(p.args[2:5]): p.returncode for p in procs if p.returncode not in (0, None, -15, 130)}
    summary_path = out_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    except (OSError, ValueError):
        summary = {}
    summary["wall_s"] = round(time.perf_counter() - t_start, 2)
    if overlays and not interrupted and (out_dir / "poses3d.jsonl").exists() and not summary.get("output_error"):
        try:
            _, frames = read_poses_jsonl(out_dir / "poses3d.jsonl")
            rendered = []
            for cam in cfg.cameras:
                if Path(cam.source).is_file() and not is_detection_file(cam.source):
                    out = out_dir / f"overlay_{cam.name}.mp4"
                    camera = rig[cam.name]
                    if cam.image_map is not None:  # draw in frame pixels
                        from capture.sources.frames import open_source

                        with open_source(cam.source) as src:
                            camera = camera_in_frame(camera, cam.image_map, src.size)
                    render_overlay(cam.source, camera, frames, COCO17, out)
                    rendered.append(out.name)
            summary.setdefault("outputs", {})["overlays"] = rendered
        except CaptureError as exc:
            log.error("overlays not rendered: %s", exc)
    summary["interrupted"] = interrupted or summary.get("interrupted", False)
    summary["failed_processes"] = failed
    if failed or not summary_path.exists():
        summary["complete"] = False
        why = summary.setdefault("incomplete_because", [])
        why += [f"'{p}' exited with {rc}" for p, rc in failed.items()]
        if not summary_path.exists():
            why.append("the node wrote no summary.json")
    try:
        tmp = out_dir / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(summary_path)
    except OSError as exc:
        log.error("%s: cannot write summary.json (%s)", out_dir, exc.strerror)
    if interrupted:
        return 130, summary
    return (0 if summary.get("complete") else 1), summary


def _start_clock(cfg: Config, workers: list, node: subprocess.Popen, logs: Path, epoch_file: Path) -> None:
    """Realtime replay: once every worker is ready (or the start timeout passed), write the epoch."""
    deadline = time.monotonic() + cfg.node.start_timeout_s
    names = [c.name for c in cfg.cameras]
    while time.monotonic() < deadline and node.poll() is None:
        if all((logs / f"ready_{n}").exists() or w.poll() is not None for n, w in zip(names, workers, strict=True)):
            break
        time.sleep(0.05)
    late = [n for n in names if not (logs / f"ready_{n}").exists()]
    if late:
        log.warning("starting the replay without camera(s) %s (not ready after %.0f s)", ", ".join(late),
                    cfg.node.start_timeout_s)  # fmt: skip
    tmp = epoch_file.with_suffix(".tmp")
    tmp.write_text(str(time.time_ns() + int(REALTIME_START_DELAY_S * 1e9)))
    tmp.replace(epoch_file)


def _wait_for_node(node: subprocess.Popen, out_dir: Path, node_log: Path) -> None:
    """Wait for the node's end-of-take work as long as it makes progress; never kill a writing node.

    Progress is any growth of the node's outputs or log. A node that shows none for
    ``NODE_STALL_S`` is asked to stop (SIGTERM: it finishes the frame at hand and writes its outputs).
    On a terminal, a progress bar counts the frames written.
    """
    watched = [out_dir / "poses3d.jsonl", out_dir / "poses3d_smoothed.jsonl", node_log]
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="node: end of take", unit=" frames", leave=False)
    last_sizes, last_change = None, time.monotonic()
    try:
        while node.poll() is None:
            sizes = [p.stat().st_size if p.exists() else 0 for p in watched]
            if sizes != last_sizes:
                last_sizes, last_change = sizes, time.monotonic()
                if bar is not None:
                    bar.n = count_frames(out_dir / "poses3d.jsonl")
                    bar.refresh()
            elif time.monotonic() - last_change > NODE_STALL_S:
                log.warning("node made no progress for %.0f s after the workers ended; asking it to stop", NODE_STALL_S)
                node.terminate()
                node.wait()
                return
            time.sleep(0.5)
    finally:
        if bar is not None:
            bar.close()
