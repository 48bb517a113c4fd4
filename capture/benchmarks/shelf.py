"""``mvcap bench shelf``: Shelf PCP on the real OpenPose detections released with 4D Association.

Per view, person skeletons are assembled from the BODY25 joint candidates and part-affinity
scores (Cao et al. 2017 greedy parsing, :mod:`capture.benchmarks.body25`), mapped to COCO-17,
reconstructed and tracked by the node's pipeline, mapped to the Shelf-14 evaluation skeleton
(VoxelPose's Shelf head convention) and scored against ``actorsGT.mat`` with the VoxelPose PCP
protocol (frames 300-600). 4D Association's own output on the same detections (``skel.txt``) is
scored by the same evaluator beside ours. The live node runs twice, with the UKF tracker
(``[fusion] filter = "ukf"``) and without (``"none"``), and each run's identities (MOTA, IDF1, ID
switches, ids per actor) and jitter are reported beside its per-frame PCP. Offline, the UKF + RTS
smoother (:mod:`fusion.smoothing`) runs over the per-frame triangulations of the node without a live
filter. 3D pictorial structures with Shelf's several OpenPose candidates per joint
(:mod:`capture.benchmarks.shelf_candidates`) are scored per frame and offline beside them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from calibration.camera import CameraRig
from calibration.io import read_4da_json
from capture.benchmarks.body25 import (
    BODY25_JOINTS,
    SHELF_FIRST_FRAME,
    SHELF_FPS,
    SHELF_IMAGE_SIZE,
    read_4da_detections,
    shelf_detections,
)
from capture.benchmarks.common import (
    SequenceRun,
    load_bench_config,
    pcp_coco17,
    reconstruct_sequence,
    timing,
    write_result,
)
from capture.benchmarks.datasets import (
    SHELF14,
    HeadConvention,
    read_4da_skel,
    read_shelf_gt,
    skel19_to_shelf14,
)
from capture.benchmarks.evaluate import (
    PART_NAMES,
    SHELF_FRAMES,
    PCPResult,
    pcp_voxelpose,
)
from capture.benchmarks.shelf_candidates import coco17_candidates, pictorial_with_candidates, reselect_observations
from capture.benchmarks.tracking_eval import tracking_metrics, tracking_table
from core.config import Config
from fusion.smoothing import smooth_sequence
from triangulation.dlt import triangulate_dlt

__all__ = [
    "CANDIDATE_RADIUS_PX",
    "CEILING_GATE_PX",
    "LIVE_LABELS",
    "PUBLISHED_SHELF",
    "SWEEP_ACCEL_MPS2",
    "SWEEP_PIXEL_PX",
    "candidate_ceiling",
    "candidate_pictorial",
    "live_filter_variant",
    "run_shelf",
    "shelf_candidates",
]

SWEEP_ACCEL_MPS2: tuple[float, ...] = (2.0, 5.0, 10.0)
"""Acceleration noise values of the sensitivity sweep, m/s^2."""
SWEEP_PIXEL_PX: tuple[float, ...] = (5.0, 8.0, 12.0)
"""2D noise values of the sensitivity sweep, pixels."""

PUBLISHED_SHELF: tuple[tuple[str, float, str], ...] = (
    ("mvpose (Dong et al. CVPR 2019)", 96.9, "published average"),
    ("Chen et al. cross-view tracking (CVPR 2020)", 96.8, "published average"),
    (
        "4D Association (Zhang et al. CVPR 2020)",
        97.6,
        "published; its own evaluator (one-to-one matching, own head)",
    ),
    ("VoxelPose (Tu et al. ECCV 2020), trained", 97.0, "published average"),
    ("Faster VoxelPose (Ye et al. ECCV 2022), trained", 97.6, "published average"),
    ("MvP (Wang et al. NeurIPS 2021), trained", 97.4, "published average"),
    ("PlaneSweepPose (Lin & Lee CVPR 2021), trained", 97.9, "published average"),
    ("QuickPose (Zhou et al. SIGGRAPH 2022)", 98.1, "published average"),
)


def _pcp_dict(res: PCPResult) -> dict:
    return {
        "per_actor": {str(a): round(100 * float(v), 2) for a, v in zip(res.actor_ids, res.actor_pcp, strict=True)},
        "average_actors_1_3": round(100 * res.average, 2),
        "per_part": {
            str(a): {p: round(100 * float(v), 2) for p, v in zip(PART_NAMES, row, strict=True)}
            for a, row in zip(res.actor_ids, res.part_pcp, strict=True)
        },
        "actor_frames": {str(a): int(n) for a, n in zip(res.actor_ids, res.n_evaluated, strict=True)},
    }


def _sweep(run: SequenceRun, rig: CameraRig, cfg: Config, score: Callable[[dict], PCPResult]) -> list[dict]:
    """Offline PCP over a grid of the filter's acceleration and 2D noise (same per-frame input)."""
    out, projections = [], rig.projections()
    for accel in SWEEP_ACCEL_MPS2:
        for pixel in SWEEP_PIXEL_PX:
            sm = dataclasses.replace(cfg.smoothing, accel_noise_mps2=accel, pixel_noise_px=pixel)
            poses = smooth_sequence(run.sequence, projections, sm, cfg.triangulation.min_joint_conf)
            r = score(dict(zip(run.frame_poses, poses, strict=True)))
            out.append({
                "accel_noise_mps2": accel,
                "pixel_noise_px": pixel,
                "per_actor": [round(100 * float(v), 2) for v in r.actor_pcp[:3]],
                "average": round(100 * r.average, 2),
            })  # fmt: skip
    return out


CEILING_GATE_PX: float = 40.0
"""Largest distance from the projected ground truth of a candidate the ceiling diagnostic may pick, pixels."""


def _body25_index(shelf_name: str) -> int:
    side, part = shelf_name.split("_")
    return BODY25_JOINTS.index(side[0].upper() + part.capitalize())


def candidate_ceiling(data: Path, gate_px: float = CEILING_GATE_PX) -> PCPResult:
    """DIAGNOSTIC, not a result: Shelf PCP if every 2D candidate were chosen with the ground truth.

    For every ground-truth actor and frame, each of the 12 limb joints is triangulated (weighted
    DLT, candidate scores as weights) from, per view, the OpenPose candidate of that joint nearest
    to the projected ground truth if it lies within ``gate_px``; the two head joints are copied
    from the ground truth (perfect). A joint with fewer than 2 such views counts as wrong. It
    bounds what any per-frame association and triangulation can reach on these detections: the
    candidates themselves lie this far from the annotation.

    Args:
        data: the folder holding ``shelf/``.
        gate_px: candidate gate around the projected ground truth, pixels.

    Returns:
        The PCP of these oracle poses under :func:`pcp_voxelpose`.

    Raises:
        InputError: missing or malformed files.
    """
    shelf = data / "shelf"
    rig = read_4da_json(shelf / "4d_association" / "calibration.json")
    raw = [read_4da_detections(shelf / "4d_association" / "detection" / f"{i}.txt") for i in range(len(rig))]
    gt = read_shelf_gt(shelf / "original" / "actorsGT.mat")
    P = rig.projections()
    w, h = SHELF_IMAGE_SIZE
    limbs = [_body25_index(n) for n in SHELF14[:12]]
    parts = []
    for actor in sorted(gt):
        pred = {}
        for f, g in gt[actor].items():
            if f not in SHELF_FRAMES or f - SHELF_FIRST_FRAME >= len(raw[0]):
                continue
            pts, wts = np.zeros((len(rig), 12, 2)), np.zeros((len(rig), 12))
            for c, cam in enumerate(rig):
                uv = cam.project(g[:12])
                for k, j in enumerate(limbs):
                    cand = raw[c][f - SHELF_FIRST_FRAME].candidates[j]
                    if len(cand) == 0:
                        continue
                    d = np.linalg.norm(cand[:, :2] * [w - 1, h - 1] - uv[k], axis=1)
                    best = int(np.argmin(d))
                    if d[best] <= gate_px:
                        pts[c, k], wts[c, k] = cand[best, :2] * [w - 1, h - 1], cand[best, 2]
            est = g.copy()
            est[:12] = triangulate_dlt(P, pts, wts)
            lost = (wts > 0).sum(axis=0) < 2
            est[:12][lost] = g[:12][lost] + 10.0  # not reconstructible: 10 m off, wrong by construction
            pred[f] = est[None]
        # Each actor alone, so that the scored pose is that actor's own oracle pose.
        parts.append(pcp_voxelpose({actor: gt[actor]}, pred, SHELF_FRAMES, n_actors=1))
    return PCPResult(
        protocol="voxelpose",
        actor_ids=tuple(sorted(gt)),
        correct=np.concatenate([r.correct for r in parts]),
        n_evaluated=np.concatenate([r.n_evaluated for r in parts]),
        averaged_actors=tuple(sorted(gt))[:3],
        n_frames=len(SHELF_FRAMES),
        recall_500=None,  # meaningless here: lost joints are placed 10 m off on purpose
    )


CANDIDATE_RADIUS_PX: float = 20.0
"""Gate around a person's projected joint for its extra OpenPose candidate in 3DPS, pixels (20 and 40
were tried on frames 300-600: 97.20 and 97.19 per frame)."""


def shelf_candidates(data: Path, rig: CameraRig) -> tuple[np.ndarray, np.ndarray]:
    """Every OpenPose peak of each COCO-17 joint in every Shelf view (:func:`coco17_candidates`).

    Args:
        data: the folder holding ``shelf/``.
        rig: Shelf's cameras (4D Association's calibration), in file order.

    Returns:
        (T, C, 17, M, 2) undistorted pixels and (T, C, 17, M) scores (0 = padding).

    Raises:
        InputError: missing or malformed detection files.
    """
    folder = data / "shelf" / "4d_association" / "detection"
    cands = [
        coco17_candidates(read_4da_detections(folder / f"{i}.txt"), cam, SHELF_IMAGE_SIZE) for i, cam in enumerate(rig)
    ]
    return np.stack([c[0] for c in cands], axis=1), np.stack([c[1] for c in cands], axis=1)


def candidate_pictorial(
    rig: CameraRig, run: SequenceRun, candidates: tuple[np.ndarray, np.ndarray], cfg: Config, smooth: bool
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray] | None, float]:
    """3DPS with Shelf's several OpenPose candidates per joint, per frame and (smoothed) offline.

    Per frame, each person the node reconstructed is re-estimated by
    :func:`~capture.benchmarks.shelf_candidates.pictorial_with_candidates` (its own 2D joints plus
    the nearest other OpenPose peak within :data:`CANDIDATE_RADIUS_PX` of its projection). With
    ``smooth`` the UKF + RTS smoother (``cfg.smoothing``) then runs on observations re-selected
    around those poses (:func:`~capture.benchmarks.shelf_candidates.reselect_observations`, gate
    ``smoothing.gate_px``).

    Args:
        rig: Shelf's cameras (4D Association's calibration), in file order.
        run: the node's reconstruction of the sequence (:func:`reconstruct_sequence`), T frames.
        candidates: the OpenPose peaks of those frames (:func:`shelf_candidates`).
        cfg: the benchmark's configuration.
        smooth: also smooth offline.

    Returns:
        ``(per_frame, offline, ms)``: ``{frame: (P, 17, 4)}`` COCO-17 poses per frame, the smoothed
        ones (None without ``smooth``) and the 3DPS CPU time per frame, median, milliseconds.
    """
    cand_px, cand_conf = candidates
    P, t = rig.projections(), cfg.triangulation
    per_frame, ms = {}, []
    for k, (f, frame) in enumerate(zip(run.frame_poses, run.sequence, strict=True)):
        c0 = time.thread_time()
        per_frame[f] = pictorial_with_candidates(
            P, frame.poses, frame.obs_px, frame.obs_conf, cand_px[k], cand_conf[k], radius_px=CANDIDATE_RADIUS_PX,
            min_conf=t.min_joint_conf, max_reproj_px=t.max_reproj_px, min_views=t.min_views,
        )  # fmt: skip
        ms.append((time.thread_time() - c0) * 1e3)
    if not smooth:
        return per_frame, None, float(np.median(ms))
    seq = [
        reselect_observations(frame, per_frame[f], P, cand_px[k], cand_conf[k], cfg.smoothing.gate_px, t.min_joint_conf)
        for k, (f, frame) in enumerate(zip(run.frame_poses, run.sequence, strict=True))
    ]
    smoothed = smooth_sequence(seq, P, cfg.smoothing, t.min_joint_conf)
    return per_frame, dict(zip(run.frame_poses, smoothed, strict=True)), float(np.median(ms))


LIVE_LABELS: dict[str, str] = {"ukf": "UKF tracker (`ukf`)", "none": "constant velocity, raw poses (`none`)"}
"""Row labels of the live tracking table, per ``[fusion] filter``."""


def live_filter_variant(cfg: Config) -> Config:
    """``cfg`` with the other live filter (``ukf`` <-> ``none``) and no offline smoothing."""
    other = "none" if cfg.fusion.filter == "ukf" else "ukf"
    return dataclasses.replace(
        cfg,
        fusion=dataclasses.replace(cfg.fusion, filter=other),
        smoothing=dataclasses.replace(cfg.smoothing, enabled=False),
    )


def _live_lines(live: dict, offline_jitter: dict | None) -> list[str]:
    rows = [(LIVE_LABELS[k], v["pcp_per_frame"]["average_actors_1_3"], v, v["node_cpu_ms_per_frame"]["median"])
            for k, v in live.items()]  # fmt: skip
    ukf = live.get("ukf", next(iter(live.values())))
    ign = ", ".join(f"{k} {v['identity']['ignored_predictions']}" for k, v in live.items())
    off = f", offline (UKF + RTS) {offline_jitter['mean_mps2']:.1f}" if offline_jitter else ""
    return [
        "Live tracking, both filters in the same run (identities by py-motmetrics: a prediction matches an "
        "actor when the mean distance of its 12 limb joints is at most 0.5 m; ids per actor: actors 1-4):",
        "",
        *tracking_table(rows),
        "",
        "Shelf's ground truth leaves visible people unannotated (4D Association reconstructs up to 5 people "
        "where at most 3 are annotated), so predictions farther than 0.5 m from every annotated actor are "
        f"not scored ({ign}): false positives are duplicates only. Jitter = mean joint acceleration "
        f"(m/s^2, second differences at {SHELF_FPS:g} fps, every published track); ground truth's own "
        f"{ukf['ground_truth_jitter']['mean_mps2']:.1f}{off}.",
    ]


def run_shelf(data: Path, out_dir: Path, sweep: bool = False, ceiling: bool = False) -> dict:
    """Run and score the Shelf benchmark; writes ``shelf.json`` and ``shelf.md`` into ``out_dir``.

    With ``sweep`` (and smoothing enabled in ``configs/shelf.toml``) the offline result is also
    computed over :data:`SWEEP_ACCEL_MPS2` x :data:`SWEEP_PIXEL_PX` filter settings, to show how
    much the figure depends on them. With ``ceiling`` the :func:`candidate_ceiling` diagnostic is
    added, labelled as such. The live node also runs with the other ``[fusion] filter``
    (:func:`live_filter_variant`); ``result["live"]`` holds, per filter, the per-frame PCP, the
    identity metrics and jitter (:func:`~capture.benchmarks.evaluate.tracking_metrics`; predictions far
    from every annotated actor are not scored, as Shelf leaves visible people unannotated) and the
    node's CPU time.
    """
    shelf = data / "shelf"
    rig = read_4da_json(shelf / "4d_association" / "calibration.json")
    dets = shelf_detections(shelf / "4d_association" / "detection", rig.names)
    gt = read_shelf_gt(shelf / "original" / "actorsGT.mat")
    cfg, cfg_name = load_bench_config("shelf")
    n = min(len(v) for v in dets.values())
    frames = [[dets[c][k] for c in rig.names] for k in range(n)]
    sm = cfg.smoothing
    run = reconstruct_sequence(rig, frames, dataclasses.replace(cfg, smoothing=dataclasses.replace(sm, enabled=False)))
    other = live_filter_variant(cfg)
    runs = {cfg.fusion.filter: run, other.fusion.filter: reconstruct_sequence(rig, frames, other)}
    # The offline smoother takes measurements: the per-frame triangulations (its gating reference and
    # start) of the node without a live filter, not the live UKF's estimates (a second filter over the
    # first's output would count the same 2D evidence twice).
    raw = runs["none"]
    head = HeadConvention.VOXELPOSE_SHELF

    def score(poses: dict[int, np.ndarray]) -> PCPResult:
        return pcp_coco17(gt, poses, SHELF_FRAMES, head)

    offline, smoothing_ms = raw.frame_poses, None
    if sm.enabled:
        c0 = time.thread_time()
        smoothed = smooth_sequence(raw.sequence, rig.projections(), sm, cfg.triangulation.min_joint_conf)
        smoothing_ms = (time.thread_time() - c0) * 1e3 / max(len(smoothed), 1)
        offline = dict(zip(raw.frame_poses, smoothed, strict=True))
    ours, per_frame = score(offline if sm.enabled else run.frame_poses), score(run.frame_poses)
    cands = shelf_candidates(data, rig)
    dps_frames, _, dps_ms = candidate_pictorial(rig, run, cands, cfg, smooth=False)
    dps_per_frame = score(dps_frames)
    dps_smoothed = score(candidate_pictorial(rig, raw, cands, cfg, smooth=True)[1]) if sm.enabled else None
    peer_raw = read_4da_skel(shelf / "4d_association" / "skel.txt", 19)
    peer = {
        f + 300: skel19_to_shelf14(np.stack(list(p.values()))) if p else np.zeros((0, 14, 4))
        for f, p in peer_raw.items()
    }
    theirs = pcp_voxelpose(gt, peer, SHELF_FRAMES, n_actors=3)
    # Shelf's ground truth leaves visible people unannotated, and its gaps are unannotated frames.
    live = {
        name: {
            "pcp_per_frame": _pcp_dict(score(r.frame_poses)),
            **tracking_metrics(gt, r.frame_poses, r.ids, SHELF_FRAMES, SHELF_FPS, ignore_unmatched=True),
            "node_cpu_ms_per_frame": timing(r.cpu_ms),
        }
        for name, r in sorted(runs.items(), key=lambda kv: kv[0] != "ukf")
    }
    result = {
        "benchmark": "shelf",
        "protocol": "VoxelPose PCP (closest prediction per GT actor, alpha 0.5, torso mid-hip to "
        "bottom-head), frames 300-600, average of actors 1-3",
        "input": "real OpenPose BODY25 detections released with 4D Association (shelf/4d_association/detection)",
        "head_convention": str(head),
        "config": cfg_name,
        "frames": len(frames),
        "pipeline": "UKF + RTS smoother over each track of the per-frame triangulations (offline)"
        if sm.enabled
        else "per-frame (live node)",
        "ours": _pcp_dict(ours),
        "ours_per_frame": _pcp_dict(per_frame),
        "pictorial_candidates": {
            "label": "3DPS with the OpenPose candidates (each person's own 2D joints plus the nearest other "
            f"peak within {CANDIDATE_RADIUS_PX:g} px of its projection), on the node's per-frame persons",
            "per_frame": _pcp_dict(dps_per_frame),
            "offline": None if dps_smoothed is None else _pcp_dict(dps_smoothed),
            "cpu_ms_per_frame": round(dps_ms, 3),
        },
        "4d_association_same_detections": _pcp_dict(theirs),
        "node_cpu_ms_per_frame": timing(run.cpu_ms),
        "smoothing_cpu_ms_per_frame": None if smoothing_ms is None else round(smoothing_ms, 3),
        "live": live,
        "offline_jitter": tracking_metrics(gt, offline, raw.ids, SHELF_FRAMES, SHELF_FPS)["jitter"]
        if sm.enabled
        else None,
        "published": [{"method": m, "pcp": v, "source": s} for m, v, s in PUBLISHED_SHELF],
    }
    if sweep and sm.enabled:
        result["smoothing_sweep"] = _sweep(raw, rig, cfg, score)
    if ceiling:
        oracle = candidate_ceiling(data)
        result["diagnostic_candidate_ceiling"] = {
            "label": "DIAGNOSTIC, not a result: 2D candidates chosen with the ground truth "
            f"(nearest within {CEILING_GATE_PX:g} px), perfect head joints, per-frame weighted DLT",
            **_pcp_dict(oracle),
        }
    lines = [
        "### Shelf (real OpenPose detections of 4D Association, VoxelPose PCP protocol, frames 300-600)",
        "",
        "| | actor 1 | actor 2 | actor 3 | average |",
        "|---|---|---|---|---|",
    ]
    rows = [("4D Association's output on the same detections, same evaluator", theirs)]
    if sm.enabled:
        rows = [
            ("**mvcap**, offline: UKF on 2D joints + RTS smoother", ours),
            ("mvcap, per frame (live node output)", per_frame),
            ("mvcap, offline, 3DPS with the OpenPose candidates then UKF + RTS", dps_smoothed),
            ("mvcap, per frame, 3DPS with the OpenPose candidates", dps_per_frame),
            *rows,
        ]
    else:
        rows = [("**mvcap** (ours)", ours), ("mvcap, 3DPS with the OpenPose candidates", dps_per_frame), *rows]
    for label, r in rows:
        a = [100 * float(v) for v in r.actor_pcp[:3]]
        lines.append(f"| {label} | {a[0]:.2f} | {a[1]:.2f} | {a[2]:.2f} | {100 * r.average:.2f} |")
    smooth_note = (
        f" Smoothing: accel. noise {sm.accel_noise_mps2:g} m/s^2, 2D noise {sm.pixel_noise_px:g} px, "
        f"{smoothing_ms:.1f} ms/frame CPU (filterpy, offline), over the per-frame triangulations of the node "
        'without a live filter (`filter = "none"`).'
        if sm.enabled
        else ""
    )
    lines += [
        "",
        f"Head joints: VoxelPose's Shelf convention from COCO-17. Config `{cfg_name}` (chosen on Shelf, "
        "one setting for the whole dataset). "
        f"Node CPU time {result['node_cpu_ms_per_frame']['median']:.2f} ms/frame median "
        f"(5 views, one thread).{smooth_note}",
        "",
        "3DPS with the OpenPose candidates (not in the live node, whose detections carry one pose per person): "
        "each person the node reconstructed is re-estimated by 3D pictorial structures from, per view and joint, "
        f"its own 2D joint and the nearest other OpenPose peak within {CANDIDATE_RADIUS_PX:g} px of its projection "
        f"({dps_ms:.1f} ms/frame CPU); offline, the smoother then takes per view the peak nearest to that pose.",
    ]
    lines += ["", *_live_lines(live, result["offline_jitter"])]
    if ceiling:
        c = result["diagnostic_candidate_ceiling"]
        lines += [
            "",
            "Diagnostic ceiling (not a result): choosing every joint's OpenPose candidates with the ground "
            f"truth (nearest within {CEILING_GATE_PX:g} px of its projection) and copying the head joints from "
            "it, per-frame triangulation reaches "
            + " / ".join(f"{c['per_actor'][str(a)]:.2f}" for a in range(3))
            + f", average {c['average_actors_1_3']:.2f}: the candidates themselves lie that far from the annotation.",
        ]
    if "smoothing_sweep" in result:
        accels = sorted({r["accel_noise_mps2"] for r in result["smoothing_sweep"]})
        pixels = sorted({r["pixel_noise_px"] for r in result["smoothing_sweep"]})
        grid = {(r["accel_noise_mps2"], r["pixel_noise_px"]): r["average"] for r in result["smoothing_sweep"]}
        lines += [
            "",
            "Sensitivity of the offline average to the two filter settings:",
            "",
            "| accel. noise (m/s^2) \\ 2D noise (px) | " + " | ".join(f"{p:g}" for p in pixels) + " |",
            "|---|" + "---|" * len(pixels),
            *[f"| {a:g} | " + " | ".join(f"{grid[a, p]:.2f}" for p in pixels) + " |" for a in accels],
        ]
    lines += [
        "",
        "Published averages (anchors collected in ../shared/FINDINGS.md), each with its own evaluator "
        "and 2D detector, for orientation only:",
        "",
        "| method | PCP | source |",
        "|---|---|---|",
        *[f"| {m} | {v} | {s} |" for m, v, s in PUBLISHED_SHELF],
    ]
    write_result(out_dir, "shelf", result, "\n".join(lines))
    result["text"] = ours.summary()
    return result
