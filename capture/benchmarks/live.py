"""``mvcap bench live``: node throughput and latency for 4 to 32 simulated cameras.

For each camera count, a synthetic ring rig (radius 5 m) watches several people walking; their
projections with 2 px noise are encoded once as real ``pose2d`` messages. The node runs in its own
process (one thread, as deployed) and receives them over loopback TCP from this process:

- throughput: all frames are sent as fast as possible; frames/s = frames published by the node
  divided by the time between its first and last published frame (subscribed here);
- latency: frames are sent at ``--rate-hz`` (below saturation); the node measures, per frame, the
  time from the arrival of the frame's last view to the publication of its 3D poses (median and
  99th percentile, from its ``summary.json``);
- node CPU time per frame (the ``node_ms`` of each published frame, from the saturated run): median,
  99th percentile (nearest rank) and maximum over all frames, start-up included, and that of the first
  frame (no tracks yet: the start-up association);
- tracks: the number of track ids the node gave over the run (the people simulated, when right).
Both are measured in the same run as a baseline: the same node with 4 cameras. ``--filter ukf,none``
runs each case with each ``[fusion] filter``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from calibration.io import write_json
from capture import wire
from capture.benchmarks.synthetic import ring_rig, walking_people
from capture.service.launcher import free_tcp_endpoint
from core.types import Detections2D

__all__ = ["camera_sockets", "main", "pose2d_messages", "run_case", "send_eos", "start_node"]


def pose2d_messages(rig, f: int, fps: float, n_people: int, rng: np.random.Generator) -> list[list[bytes]]:
    """Frame ``f`` of ``n_people`` walking people, one encoded ``pose2d`` message per camera.

    Projections with 2 px Gaussian noise, joint confidence and box score 0.9; stamps ``f / fps``
    seconds (from 0, as offline replays have).
    """
    people = walking_people(n_people, f / fps)
    out = []
    for cam in rig:
        uv = [cam.project(X) + rng.normal(scale=2.0, size=(17, 2)) for X in people]
        poses = np.concatenate([np.stack(uv), np.full((n_people, 17, 1), 0.9)], axis=2).astype(np.float32)
        boxes = np.tile(np.float32([0, 0, 1, 1, 0.9]), (n_people, 1))
        dets = Detections2D(cam.name, f, int(f / fps * 1e9), poses, boxes)
        out.append([bytes(b) for b in wire.encode_detections(dets)])
    return out


def start_node(rig, workdir: Path, tag: str, node_toml: str) -> tuple[subprocess.Popen, Path, str, str]:
    """A node process on two free loopback ports for ``rig`` (written to ``workdir``).

    Args:
        rig: the cameras.
        workdir: folder for the calibration, the config and the run folder ``tag``.
        tag: name of this case's files.
        node_toml: extra TOML lines of the ``[node]`` section (and sections after it).

    Returns:
        The process, its run folder, its input and output endpoints.
    """
    calib, cfg, out = workdir / f"{tag}.json", workdir / f"{tag}.toml", workdir / tag
    write_json(rig, calib)
    node_in, node_out = free_tcp_endpoint(), free_tcp_endpoint()
    cfg.write_text(
        f'calibration = "{calib}"\n[node]\ninput_endpoint = "{node_in}"\noutput_endpoint = "{node_out}"\n' + node_toml
    )
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "capture.service.node", "--config", str(cfg), "--out", str(out), "--log-level",
           "WARNING"]  # fmt: skip
    return subprocess.Popen(cmd, env=env), out, node_in, node_out


def camera_sockets(ctx: zmq.Context, rig, endpoint: str, sndhwm: int = 0, nodrop: bool = False) -> list:
    """One XPUB per simulated camera, as each worker has, connected and subscribed to by the node.

    Raises:
        RuntimeError: the node did not subscribe within 30 s.
    """
    pubs = []
    for cam in rig:
        pub = ctx.socket(zmq.XPUB)
        pub.setsockopt(zmq.SNDHWM, sndhwm)
        if nodrop:
            pub.setsockopt(zmq.XPUB_NODROP, 1)
        pub.connect(endpoint)
        pubs.append((cam.name, pub))
        if not pub.poll(30000, zmq.POLLIN):
            raise RuntimeError("node did not subscribe")
        pub.recv()
    return pubs


def send_eos(pubs: list, last_frame: int) -> None:
    """End-of-stream for every simulated camera."""
    for name, pub in pubs:
        pub.send_multipart(wire.encode(wire.Message("eos", name, last_frame, time.time_ns(), {}, {})))


def _nearest_rank(values: list[float], q: float) -> float:
    """The ``q`` percentile of ``values`` by nearest rank ``round(q / 100 (n - 1))``, as the node's."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def run_case(
    n_cams: int, n_people: int, n_frames: int, rate_hz: float | None, workdir: Path, filt: str = "ukf"
) -> dict:
    """One node process (``[fusion] filter = filt``) fed ``n_frames`` frames of ``n_cams`` cameras;
    returns its figures."""
    rng = np.random.default_rng(n_cams)
    rig = ring_rig(n_cams, radius=5.0)
    frames = [pose2d_messages(rig, f, 30.0, n_people, rng) for f in range(n_frames)]
    tag = f"{n_cams}cams_{filt}_{'sat' if rate_hz is None else int(rate_hz)}"
    toml = f'rcvhwm = 1000000\nstatus_every_s = 0.0\n[fusion]\nfilter = "{filt}"\n'
    node, out, node_in, node_out = start_node(rig, workdir, tag, toml)
    ctx = zmq.Context()
    pubs = []
    try:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, wire.TOPIC_POSE3D.encode())
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.connect(node_out)
        pubs = camera_sockets(ctx, rig, node_in)
        time.sleep(0.5)  # let the output subscription settle
        t0 = time.perf_counter()
        for f, per_cam in enumerate(frames):
            if rate_hz:
                wait = t0 + f / rate_hz - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            for (_, pub), msg in zip(pubs, per_cam, strict=True):
                pub.send_multipart(msg)
        send_eos(pubs, n_frames - 1)
        stamps, node_ms = [], []
        while len(stamps) < n_frames and sub.poll(30000, zmq.POLLIN):
            msg = wire.decode(sub.recv_multipart())
            stamps.append(time.perf_counter())
            node_ms.append((msg.frame_idx, float(msg.meta.get("node_ms", float("nan")))))
        node.wait(60)
    finally:
        for _, pub in pubs:
            pub.close(0)
        ctx.destroy(0)
        if node.poll() is None:
            node.kill()
    summary = json.loads((out / "summary.json").read_text())
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    ms = [v for _, v in sorted(node_ms)]
    return {
        "cameras": n_cams,
        "people": n_people,
        "filter": filt,
        "frames": summary["frames"],
        "frames_per_s": round((len(stamps) - 1) / span, 1) if rate_hz is None else None,
        "latency_ms": summary["latency_ms"] if rate_hz else None,
        "node_cpu_ms_per_frame_median": summary["node_ms_per_frame"]["total"]["median"],
        "node_cpu_ms_per_frame": {
            "median": round(float(np.median(ms)), 3) if ms else None,
            "p99": round(_nearest_rank(ms, 99.0), 3) if ms else None,
            "max": round(max(ms), 3) if ms else None,
            "first_frame": round(ms[0], 3) if ms else None,
        },
        "node_stage_ms_median": {
            k: v["median"]
            for k, v in summary["node_ms_per_frame"].items()
            if k in ("matching", "triangulation", "tracking")
        },
        "tracks": len(summary["tracks"]),
        "node_peak_rss_mb": summary["node_peak_rss_mb"],
    }


def main(argv: list[str] | None = None) -> int:
    """Print throughput and latency figures for each camera count as JSON."""
    p = argparse.ArgumentParser(prog="mvcap bench live", description=__doc__.splitlines()[0])
    p.add_argument("--cameras", default="4,8,16,32", help="comma-separated camera counts")
    p.add_argument("--people", type=int, default=4, help="simulated people")
    p.add_argument("--frames", type=int, default=300, help="frames per run")
    p.add_argument("--rate-hz", type=float, default=30.0, help="send rate of the latency runs, frames/s")
    p.add_argument("--filter", default="ukf", help='comma-separated [fusion] filters to run: "ukf", "none"')
    args = p.parse_args(argv)
    filters = [f.strip() for f in args.filter.split(",") if f.strip()]
    if not filters or set(filters) - {"ukf", "none"}:
        p.error(f"--filter: expected ukf and/or none; got {args.filter!r}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for filt in filters:
            for n in (int(c) for c in args.cameras.split(",")):
                sat = run_case(n, args.people, args.frames, None, Path(tmp), filt)
                lat = run_case(n, args.people, args.frames, args.rate_hz, Path(tmp), filt)
                results.append({**sat, "latency_ms": lat["latency_ms"], "latency_rate_hz": args.rate_hz})
                print(json.dumps(results[-1]), flush=True)
    for filt in filters:
        rows = [r for r in results if r["filter"] == filt]
        base = rows[0]["frames_per_s"] or float("nan")
        ratio = {r["cameras"]: round((r["frames_per_s"] or 0) / base, 2) for r in rows}
        print(json.dumps({"filter": filt, "throughput_ratio_to_first": ratio}))
    return 0
