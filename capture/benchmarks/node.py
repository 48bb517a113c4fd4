"""``mvcap bench node``: the node's reconstruction time per frame, against baselines measured in the same run.

Replays the demo's real YOLO11n-pose detections (``tests/data/demo_yolo11n``, or ``--detections``)
through the node's reconstruction (matching -> triangulation -> tracking) on one thread and prints
CPU time per frame, median and 90th percentile, with the live UKF and without a filter, next to a
baseline measured in the same run: per-frame epipolar grouping of all detections (no track-driven
association), the usual design of per-frame systems. With ``--peer`` (default) Pose2Sim 0.10.49
(Pagnon et al., "Pose2Sim", JOSS 2022) runs its association and triangulation on the same input,
alternating with the node (:mod:`capture.benchmarks.peer_pose2sim`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from calibration.io import read_calibration
from capture.kernel_warmup import warm_up
from capture.pipeline import FrameReconstructor
from capture.sources.detection_files import read_detections_json
from core.config import Config
from core.errors import CaptureError
from core.skeleton import COCO17
from fusion.tracking import Tracker
from matching.epipolar import EpipolarMatcher
from triangulation.dlt import triangulate_robust

__all__ = ["bench_node", "main"]

REPO = Path(__file__).resolve().parents[2]


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
        tracker.update(np.concatenate([tri.points, tri.conf[:, None]], 1).reshape(len(groups), J, 4), views[0].stamp_ns)
        out.append((time.thread_time() - c0) * 1e3)
    return out


def bench_node(calibration: Path, detections: Path, repeats: int) -> dict:
    """Time the node's per-frame reconstruction on recorded detections; returns the figures."""
    rig = read_calibration(calibration)
    per_cam = {n: read_detections_json(detections / f"{n}.json.gz") for n in rig.names}
    n_frames = min(len(v) for v in per_cam.values())
    frames = [[per_cam[n][f] for n in rig.names] for f in range(n_frames)]
    cfg = Config()
    no_filter = dataclasses.replace(cfg.fusion, filter="none")
    for fusion in (cfg.fusion, no_filter):  # compiled kernels: compile or load them before timing
        warm_up(rig, COCO17, cfg.matching, cfg.triangulation, fusion)
    ours, unfiltered, base, tracks = [], [], [], set()
    for _ in range(repeats):  # the configurations alternate, so that machine load hits them alike
        for fusion, times in ((cfg.fusion, ours), (no_filter, unfiltered)):
            rec = FrameReconstructor(rig, COCO17, cfg.matching, cfg.triangulation, fusion)
            for views in frames:
                c0 = time.thread_time()
                res = rec.process(views, views[0].stamp_ns)
                times.append((time.thread_time() - c0) * 1e3)
                if fusion is cfg.fusion:
                    tracks |= set(res.track_ids.tolist())
        base += _baseline(rig, cfg, frames)
    med, med_b, med_u = statistics.median(ours), statistics.median(base), statistics.median(unfiltered)
    return {
        "benchmark": "node reconstruction (matching + triangulation + tracking), CPU time, one thread",
        "frames": n_frames * repeats,
        "cameras": len(rig),
        "filter": cfg.fusion.filter,
        "ms_per_frame": {"median": round(med, 3), "p90": round(float(np.percentile(ours, 90)), 3)},
        "no_filter_ms_per_frame": {"median": round(med_u, 3), "p90": round(float(np.percentile(unfiltered, 90)), 3)},
        "ratio_to_no_filter": round(med / med_u, 2),
        "baseline_epipolar_only_ms_per_frame": {
            "median": round(med_b, 3),
            "p90": round(float(np.percentile(base, 90)), 3),
        },
        "ratio_to_baseline": round(med / med_b, 2),
        "frames_per_s_one_core": round(1000.0 / med, 1),
        "tracks": len(tracks),
    }


def _peer_ratios(peer: dict) -> dict:
    """What the node-vs-Pose2Sim ratios are computed on, and the ratio without the temporal filter.

    Pose2Sim's timed steps (association + triangulation) include no temporal filter, so the
    like-for-like figure is the node with ``[fusion] filter = "none"`` (association + triangulation +
    identity tracking); the ratio with the default filter (the live UKF) is given beside it.
    ``compare_node_peer``'s own ratios are medians over rounds against the default configuration;
    the one without the filter is Pose2Sim's median compute over the node's median per-pass mean.
    """
    default = peer["node_default_filter"]
    compute = peer["pose2sim"]["compute_ms_per_frame"]
    node = peer["node"]
    out = {"ratio_basis": "Pose2Sim 0.10.49 compute (association + triangulation, its file I/O excluded) "
                          "over node CPU ms per frame (mean over the frames), same 2D input, same run"}  # fmt: skip
    lines = [f"peer ratio basis: {out['ratio_basis']}"]
    lines.append(
        f"node with filter {default!r} (default, includes the live temporal filter): "
        f"{node[default]['mean_ms_per_frame']:.3f} ms/frame, Pose2Sim {compute:.3f} ms/frame: "
        f"{peer['ratio_pose2sim_compute_to_node']:.1f}x"
    )
    if "none" in node and default != "none":
        ratio = round(compute / node["none"]["mean_ms_per_frame"], 1)
        out["ratio_pose2sim_compute_to_node_no_filter"] = ratio
        lines.append(
            f"node with filter 'none' (like-for-like: no temporal filter, as Pose2Sim's steps): "
            f"{node['none']['mean_ms_per_frame']:.3f} ms/frame: {ratio:.1f}x"
        )
    out["ratio_lines"] = lines
    return out


def main(argv: list[str] | None = None) -> int:
    """``mvcap bench node [--calibration FILE] [--detections DIR] [--repeats N] [--no-peer]``: print
    node timing figures as JSON, then the Pose2Sim ratio lines; exit 2 with one line on bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="mvcap bench node", description=__doc__.splitlines()[0])
    p.add_argument("--calibration", default=None, help="calibration (default: the demo's, fetched and cached)")
    p.add_argument("--detections", default=str(REPO / "tests/data/demo_yolo11n"), help="folder of <camera>.json.gz")
    p.add_argument("--repeats", type=int, default=3, help="passes over the frames")
    p.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time Pose2Sim 0.10.49 on the same input, alternating with the node (its venv is built once)",
    )
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
        print(f"mvcap bench node: error: {exc}", file=sys.stderr)
        return 2
    if args.peer:  # the peer on the same input, alternating with the node (issue 10's 50x target)
        from capture.benchmarks.peer_pose2sim import compare_node_peer, peer_env

        try:
            figures["peer_pose2sim"] = compare_node_peer(peer_env(), calib, Path(args.detections), args.repeats)
        except CaptureError as exc:
            print(f"mvcap bench node: peer skipped: {exc}", file=sys.stderr)
            figures["peer_pose2sim"] = {"skipped": str(exc)}
        else:
            figures["peer_pose2sim"].update(_peer_ratios(figures["peer_pose2sim"]))
    lines = figures.get("peer_pose2sim", {}).pop("ratio_lines", [])
    print(json.dumps(figures, indent=2))
    for line in lines:
        print(line)
    return 0
