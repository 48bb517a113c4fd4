"""``mvcap bench shelf``: Shelf PCP on the real OpenPose detections released with 4D Association.

Per view, person skeletons are assembled from the BODY25 joint candidates and part-affinity
scores (Cao et al. 2017 greedy parsing, :mod:`capture.benchmarks.body25`), mapped to COCO-17,
reconstructed and tracked by the node's pipeline, mapped to the Shelf-14 evaluation skeleton
(VoxelPose's Shelf head convention) and scored against ``actorsGT.mat`` with the VoxelPose PCP
protocol (frames 300-600). 4D Association's own output on the same detections (``skel.txt``) is
scored by the same evaluator beside ours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibration.io import read_4da_json
from capture.benchmarks.body25 import shelf_detections
from capture.benchmarks.common import load_bench_config, reconstruct_sequence, timing, write_result
from capture.benchmarks.datasets import (
    HeadConvention,
    coco17_to_shelf14,
    read_4da_skel,
    read_shelf_gt,
    skel19_to_shelf14,
)
from capture.benchmarks.evaluate import PART_NAMES, SHELF_FRAMES, PCPResult, pcp_voxelpose

__all__ = ["PUBLISHED_SHELF", "run_shelf"]

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


def run_shelf(data: Path, out_dir: Path) -> dict:
    """Run and score the Shelf benchmark; writes ``shelf.json`` and ``shelf.md`` into ``out_dir``."""
    shelf = data / "shelf"
    rig = read_4da_json(shelf / "4d_association" / "calibration.json")
    dets = shelf_detections(shelf / "4d_association" / "detection", rig.names)
    gt = read_shelf_gt(shelf / "original" / "actorsGT.mat")
    cfg, cfg_name = load_bench_config("shelf")
    n = min(len(v) for v in dets.values())
    frames = [[dets[c][k] for c in rig.names] for k in range(n)]
    poses, _, cpu_ms = reconstruct_sequence(rig, frames, cfg)
    head = HeadConvention.VOXELPOSE_SHELF
    pred = {f: coco17_to_shelf14(p, head=head) if len(p) else np.zeros((0, 14, 4)) for f, p in poses.items()}
    ours = pcp_voxelpose(gt, pred, SHELF_FRAMES, n_actors=3)
    peer_raw = read_4da_skel(shelf / "4d_association" / "skel.txt", 19)
    peer = {
        f + 300: skel19_to_shelf14(np.stack(list(p.values()))) if p else np.zeros((0, 14, 4))
        for f, p in peer_raw.items()
    }
    theirs = pcp_voxelpose(gt, peer, SHELF_FRAMES, n_actors=3)
    result = {
        "benchmark": "shelf",
        "protocol": "VoxelPose PCP (closest prediction per GT actor, alpha 0.5, torso mid-hip to "
        "bottom-head), frames 300-600, average of actors 1-3",
        "input": "real OpenPose BODY25 detections released with 4D Association (shelf/4d_association/detection)",
        "head_convention": str(head),
        "config": cfg_name,
        "frames": len(frames),
        "ours": _pcp_dict(ours),
        "4d_association_same_detections": _pcp_dict(theirs),
        "node_cpu_ms_per_frame": timing(cpu_ms),
        "published": [{"method": m, "pcp": v, "source": s} for m, v, s in PUBLISHED_SHELF],
    }
    lines = [
        "### Shelf (real OpenPose detections of 4D Association, VoxelPose PCP protocol, frames 300-600)",
        "",
        "| | actor 1 | actor 2 | actor 3 | average |",
        "|---|---|---|---|---|",
    ]
    for label, r in (
        ("**mvcap** (ours)", ours),
        ("4D Association's output on the same detections, same evaluator", theirs),
    ):
        a = [100 * float(v) for v in r.actor_pcp[:3]]
        lines.append(f"| {label} | {a[0]:.2f} | {a[1]:.2f} | {a[2]:.2f} | {100 * r.average:.2f} |")
    lines += [
        "",
        f"Head joints: VoxelPose's Shelf convention from COCO-17. Config `{cfg_name}`. "
        f"Node CPU time {result['node_cpu_ms_per_frame']['median']:.2f} ms/frame median "
        "(5 views, one thread).",
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
