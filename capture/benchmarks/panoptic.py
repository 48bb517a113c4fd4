"""``mvcap bench panoptic``: CMU Panoptic, VoxelPose protocol, MPJPE against 2D noise level.

Real 3D ground truth (``160906_band1`` and ``band2``, 20 frames each, 3 people) is projected into
the 5 real HD cameras VoxelPose uses (00_03, 00_06, 00_12, 00_13, 00_23) with the stated noise
model at several pixel-noise levels; our pipeline reconstructs and tracks; MPJPE over matched
people, AP at 25-150 mm and recall@500 mm are computed with VoxelPose's protocol. Semi-synthetic:
the 2D is not a detector's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from calibration.io import read_panoptic_json
from capture.benchmarks.common import load_bench_config, reconstruct_sequence, timing, write_result
from capture.benchmarks.datasets import coco17_to_panoptic15, read_panoptic_bodies
from capture.benchmarks.evaluate import mpjpe_voxelpose
from capture.benchmarks.noise import NoiseModel, panoptic19_to_coco17, synthesize_detections

__all__ = ["VOXELPOSE_CAMERAS", "run_panoptic"]

VOXELPOSE_CAMERAS = ("00_03", "00_06", "00_12", "00_13", "00_23")
SEQUENCES = ("160906_band1", "160906_band2")
HD_FPS = 29.97


def run_panoptic(
    data: Path, out_dir: Path, sigmas_px: tuple[float, ...] = (0.0, 3.0, 5.0, 10.0), seed: int = 0
) -> dict:
    """Noise sweep on both sequences; writes ``panoptic.json`` and ``panoptic.md``."""
    cfg, cfg_name = load_bench_config("panoptic")
    rows = []
    for sigma in sigmas_px:
        rng = np.random.default_rng(seed)
        model = NoiseModel.zero() if sigma == 0 else dataclasses.replace(NoiseModel(), sigma_px=sigma)
        gt_all, pred_all, cpu_all = {}, {}, []
        for k, seq in enumerate(SEQUENCES):
            folder = data / "panoptic" / seq
            rig = read_panoptic_json(folder / f"calibration_{seq}.json", names=VOXELPOSE_CAMERAS)
            bodies = read_panoptic_bodies(folder / "hdPose3d_stage1_coco19")
            frames = []
            for f in sorted(bodies):
                conv = [panoptic19_to_coco17(b) for b in bodies[f]]
                people, valid = [p for p, _ in conv], [v for _, v in conv]
                stamp = int(f / HD_FPS * 1e9)
                frames.append(synthesize_detections(rig, people, rng, model, frame_idx=f, stamp_ns=stamp, valid=valid))
            run = reconstruct_sequence(rig, frames, cfg)
            poses, cpu = run.poses, run.cpu_ms
            cpu_all += cpu
            key = 1_000_000 * k  # keep the two sequences' frames apart
            for f, b in bodies.items():
                gt_all[key + f] = b
                p = poses.get(f, np.zeros((0, 17, 4)))
                pred_all[key + f] = coco17_to_panoptic15(p) if len(p) else np.zeros((0, 15, 4))
        scores = {f: p[..., 3].mean(axis=1) if len(p) else np.zeros(0) for f, p in pred_all.items()}
        res = mpjpe_voxelpose(gt_all, pred_all, scores)
        rows.append({
            "sigma_px": sigma,
            "noise_model": dataclasses.asdict(model),
            "mpjpe_mm": round(res.mpjpe_mm, 2),
            "ap": {str(int(t)): round(100 * float(a), 2) for t, a in zip(res.thresholds_mm, res.ap, strict=True)},
            "recall_500": round(100 * res.recall_500, 2),
            "n_gt": res.n_gt,
            "node_cpu_ms_per_frame": timing(cpu_all),
        })  # fmt: skip
    result = {
        "benchmark": "panoptic",
        "label": "SEMI-SYNTHETIC: real 3D ground truth projected into 5 real HD cameras with the stated noise",
        "protocol": "VoxelPose: first 15 COCO-19 joints, MPJPE over greedy matches < 500 mm, AP 25-150 mm",
        "sequences": list(SEQUENCES),
        "cameras": list(VOXELPOSE_CAMERAS),
        "config": cfg_name,
        "rows": rows,
    }
    md = [
        "### CMU Panoptic (semi-synthetic: real 3D ground truth, real HD cameras, stated 2D noise)",
        "",
        "| 2D noise (px) | MPJPE (mm) | AP25 | AP50 | AP100 | AP150 | recall@500 | node ms/frame |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['sigma_px']:g}{' (no drops/misses/flips)' if r['sigma_px'] == 0 else ''} | {r['mpjpe_mm']:.1f} | "
            f"{r['ap']['25']:.1f} | {r['ap']['50']:.1f} | {r['ap']['100']:.1f} | {r['ap']['150']:.1f} | "
            f"{r['recall_500']:.1f} | {r['node_cpu_ms_per_frame']['median']:.2f} |"
            for r in rows
        ],
        "",
        "Noise levels above 0 also drop 5% of joints, miss 5% of people per view, add 0.1 false "
        "detections per view and flip left/right in 2% of person-views. For orientation, trained "
        "methods on real images report 15.8 mm (MvP) and 17.7 mm (VoxelPose); the training-free "
        "RapidPoseTriangulation reports 30.5 mm.",
    ]
    write_result(out_dir, "panoptic", result, "\n".join(md))
    return result
