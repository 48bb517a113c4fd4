"""``mvcap bench``: benchmark scripts that print figures (never timed unit tests).

``mvcap bench node`` replays the demo's real YOLO11n-pose detections (``tests/data/demo_yolo11n``,
or ``--detections``) through the node's reconstruction (matching -> triangulation -> tracking) on one
thread and prints CPU time per frame, median and 90th percentile, next to a baseline measured in the
same run: per-frame epipolar grouping of all detections (no track-driven association), the usual
design of per-frame systems.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from calibration.io import read_calibration
from capture.detection_files import read_detections_json
from capture.reconstruct import FrameReconstructor
from core.config import Config
from core.errors import CaptureError
from core.skeleton import COCO17
from fusion.tracking import Tracker
from matching.epipolar import EpipolarMatcher
from triangulation.dlt import triangulate_robust

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]


def _baseline(rig, cfg: Config, frames: list[list]) -> list[float]:
    """Per-frame epipolar grouping + the same DLT + gated tracking; CPU ms per frame."""
    m, t = cfg.matching, cfg.triangulation
    matcher = EpipolarMatcher(rig, m.min_joint_conf, m.min_common_joints, m.max_epipolar_px)
    tracker = Tracker(cfg.fusion.gate_m, cfg.fusion.max_missed_s, cfg.fusion.min_joints)
    P = rig.projections()
    out = []
    for views in frames:
        c0 = time.thread_time()
        pts, conf = [], []
        for c, d in enumerate(views):
            keep = (d.boxes[:, 4] >= m.min_box_score) & (
                (d.poses[..., 2] >= m.min_joint_conf).sum(1) >= m.min_valid_joints
            )
            p = d.poses[keep, :, :2].astype(np.float64)
            pts.append(rig[c].undistort_px(p.reshape(-1, 2)).reshape(p.shape))
            conf.append(d.poses[keep, :, 2].astype(np.float64))
        groups = [g for g in matcher.match(pts, conf) if len(g) >= 2]
        J = COCO17.n_joints
        obs, w = np.zeros((len(rig), len(groups) * J, 2)), np.zeros((len(rig), len(groups) * J))
        for g, members in enumerate(groups):
            for c, i in members:
                obs[c, g * J : (g + 1) * J], w[c, g * J : (g + 1) * J] = pts[c][i], conf[c][i]
        tri = triangulate_robust(P, obs, w, t.min_joint_conf, t.max_reproj_px, t.min_views)
        tracker.update(
            np.concatenate([tri.points, tri.conf[:, None]], 1).reshape(len(groups), J, 4), views[0].stamp_ns
        )
        out.append((time.thread_time() - c0) * 1e3)
    return out


def bench_node(calibration: Path, detections: Path, repeats: int) -> dict:
    """Time the node's per-frame reconstruction on recorded detections; returns the figures."""
    rig = read_calibration(calibration)
    per_cam = {n: read_detections_json(detections / f"{n}.json.gz") for n in rig.names}
    n_frames = min(len(v) for v in per_cam.values())
    frames = [[per_cam[n][f] for n in rig.names] for f in range(n_frames)]
    cfg = Config()
    ours, base, tracks = [], [], set()
    for _ in range(repeats):
        rec = FrameReconstructor(rig, COCO17, cfg.matching, cfg.triangulation, cfg.fusion)
        for views in frames:
            c0 = time.thread_time()
            res = rec.process(views, views[0].stamp_ns)
            ours.append((time.thread_time() - c0) * 1e3)
            tracks |= set(res.track_ids.tolist())
        base += _baseline(rig, cfg, frames)
    med, med_b = statistics.median(ours), statistics.median(base)
    return {
        "benchmark": "node reconstruction (matching + triangulation + tracking), CPU time, one thread",
        "frames": n_frames * repeats,
        "cameras": len(rig),
        "ms_per_frame": {"median": round(med, 3), "p90": round(float(np.percentile(ours, 90)), 3)},
        "baseline_epipolar_only_ms_per_frame": {
            "median": round(med_b, 3),
            "p90": round(float(np.percentile(base, 90)), 3),
        },
        "ratio_to_baseline": round(med / med_b, 2),
        "frames_per_s_one_core": round(1000.0 / med, 1),
        "tracks": len(tracks),
    }


def main(argv: list[str] | None = None) -> int:
    """``mvcap bench node [--calibration FILE] [--detections DIR]``: print node timing figures."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "live":
        from capture.benchmarks.live import main as live_main

        return live_main(argv[1:])
    p = argparse.ArgumentParser(prog="mvcap bench", description=__doc__.splitlines()[0])
    p.add_argument("target", choices=["node", "live"], help="what to benchmark ('mvcap bench live --help')")
    p.add_argument(
        "--calibration", default=None, help="calibration (default: the demo's, fetched and cached)"
    )
    p.add_argument(
        "--detections", default=str(REPO / "tests/data/demo_yolo11n"), help="folder of <camera>.json.gz"
    )
    p.add_argument("--repeats", type=int, default=3, help="passes over the frames")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        if args.calibration:
            calib = Path(args.calibration)
        else:
            from capture.assets import demo_data_dir

            calib = demo_data_dir() / "calibration" / "Calib.qca.txt"
        figures = bench_node(calib, Path(args.detections), args.repeats)
    except CaptureError as exc:
        print(f"mvcap bench: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(figures, indent=2))
    return 0
