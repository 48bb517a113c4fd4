"""``mvcap bench``: benchmark scripts that print figures (never timed unit tests).

``mvcap bench node`` replays the demo's real YOLO11n-pose detections (``tests/data/demo_yolo11n``,
or ``--detections``) through the node's reconstruction (matching -> triangulation -> tracking) on one
thread and prints CPU time per frame, median and 90th percentile, next to a baseline measured in the
same run: per-frame epipolar grouping of all detections (no track-driven association), the usual
design of per-frame systems.
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
from capture.detection_files import read_detections_json
from capture.kernel_warmup import warm_up
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


DATASETS = ("shelf", "campus", "panoptic")
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def _dataset_main(name: str, argv: list[str]) -> int:
    """``mvcap bench shelf|campus|panoptic [--data DIR] [--out DIR]``."""
    from capture.benchmarks.common import default_data_dir

    p = argparse.ArgumentParser(prog=f"mvcap bench {name}", description=f"{name} benchmark with the field's protocol")
    p.add_argument("--data", default=str(default_data_dir()), help="folder holding shelf/, campus/, panoptic/")
    p.add_argument("--out", default="runs/bench", help="folder for <name>.json and <name>.md")
    if name == "shelf":
        p.add_argument("--sweep", action="store_true", help="also score a grid of smoothing settings (about 2 minutes)")
        p.add_argument(
            "--ceiling",
            action="store_true",
            help="also compute the diagnostic ceiling: 2D candidates chosen with the ground truth",
        )
    args = p.parse_args(argv)
    data = Path(args.data)
    if not (data / name).is_dir():
        print(
            f"mvcap bench {name}: error: {data / name}: dataset folder not found (see --data)",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        if name == "shelf":
            from capture.benchmarks.shelf import run_shelf

            res = run_shelf(data, Path(args.out), sweep=args.sweep, ceiling=args.ceiling)
            print(res.pop("text"))
            peer = res["4d_association_same_detections"]["average_actors_1_3"]
            print(f"4D Association's output, same detections and evaluator: {peer:.2f}")
            if res["smoothing_cpu_ms_per_frame"] is not None:
                live = res["ours_per_frame"]["average_actors_1_3"]
                print(f"per frame (live node), before smoothing: {live:.2f}")
            if "diagnostic_candidate_ceiling" in res:
                c = res["diagnostic_candidate_ceiling"]
                print(f"diagnostic ceiling ({c['label']}): {c['average_actors_1_3']:.2f}")
            for row in res.get("smoothing_sweep", []):
                a, px, avg = row["accel_noise_mps2"], row["pixel_noise_px"], row["average"]
                print(f"sweep: accel. noise {a:g} m/s^2, 2D noise {px:g} px: {avg:.2f}")
            for filt, row in res["live"].items():
                m = row["identity"]
                print(
                    f"live, filter {filt}: PCP per frame {row['pcp_per_frame']['average_actors_1_3']:.2f}, "
                    f"MOTA {m['mota']:.3f}, IDF1 {m['idf1']:.3f}, ID switches {m['id_switches']}, "
                    f"ids per actor {m['ids_per_actor']}, jitter {row['jitter']['mean_mps2']:.1f} m/s^2, "
                    f"node {row['node_cpu_ms_per_frame']['median']:.2f} ms/frame"
                )
        elif name == "campus":
            from capture.benchmarks.campus import run_campus

            res = run_campus(data, Path(args.out))
            print(json.dumps(res, indent=2))
        else:
            from capture.benchmarks.panoptic import run_panoptic

            res = run_panoptic(data, Path(args.out))
            print(json.dumps(res["rows"], indent=2))
    except CaptureError as exc:
        print(f"mvcap bench {name}: error: {exc}", file=sys.stderr)
        return 2
    print(f"results: {Path(args.out) / (name + '.json')}, {Path(args.out) / (name + '.md')}")
    return 0


def _report_main(argv: list[str]) -> int:
    """``mvcap bench report [--results DIR] [--readme README.md]``: README results from the .md files."""
    p = argparse.ArgumentParser(prog="mvcap bench report", description="Write the README results section.")
    p.add_argument("--results", default="runs/bench", help="folder of <benchmark>.md files")
    p.add_argument("--readme", default=str(REPO / "README.md"))
    args = p.parse_args(argv)
    parts = [(Path(args.results) / f"{n}.md") for n in DATASETS]
    missing = [str(x) for x in parts if not x.is_file()]
    if missing:
        print(f"mvcap bench report: error: missing {missing}; run 'mvcap bench <name>' first", file=sys.stderr)
        return 2
    readme = Path(args.readme)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        print(
            f"mvcap bench report: error: {readme} has no {README_START} ... {README_END} markers",
            file=sys.stderr,
        )
        return 2
    body = "\n\n".join(x.read_text().strip() for x in parts)
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{body}\n{README_END}{tail}")
    print(f"updated {readme}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``mvcap bench node [--calibration FILE] [--detections DIR]``: print node timing figures."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "live":
        from capture.benchmarks.live import main as live_main

        return live_main(argv[1:])
    if argv and argv[0] == "ablation":
        from capture.benchmarks.ablation import main as ablation_main

        return ablation_main(argv[1:])
    if argv and argv[0] == "pizza":
        from capture.benchmarks.pizza import main as pizza_main

        return pizza_main(argv[1:])
    if argv and argv[0] == "soak":
        from capture.benchmarks.soak import main as soak_main

        return soak_main(argv[1:])
    if argv and argv[0] == "frontend":
        from capture.benchmarks.frontend import main as frontend_main

        return frontend_main(argv[1:])
    if argv and argv[0] in DATASETS:
        return _dataset_main(argv[0], argv[1:])
    if argv and argv[0] == "report":
        return _report_main(argv[1:])
    p = argparse.ArgumentParser(prog="mvcap bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "target",
        choices=["node", "live", "soak", "ablation", "pizza", "frontend", *DATASETS, "report"],
        help="what to benchmark",
    )
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
        print(f"mvcap bench: error: {exc}", file=sys.stderr)
        return 2
    if args.peer:  # the peer on the same input, alternating with the node (issue 10's 50x target)
        from capture.benchmarks.peer_pose2sim import compare_node_peer, peer_env

        try:
            figures["peer_pose2sim"] = compare_node_peer(peer_env(), calib, Path(args.detections), args.repeats)
        except CaptureError as exc:
            print(f"mvcap bench: peer skipped: {exc}", file=sys.stderr)
            figures["peer_pose2sim"] = {"skipped": str(exc)}
        else:
            figures["peer_pose2sim"].update(_peer_ratios(figures["peer_pose2sim"]))
    lines = figures.get("peer_pose2sim", {}).pop("ratio_lines", [])
    print(json.dumps(figures, indent=2))
    for line in lines:
        print(line)
    return 0
