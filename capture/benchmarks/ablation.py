"""``mvcap bench ablation``: what each matching and reconstruction method buys, on real data.

One table, one command: for each combination of cross-view matching (epipolar only, + re-ID
appearance, + multi-way SVT matching) and 3D reconstruction (weighted DLT with view rejection, or
3D pictorial structures), the node's per-frame (live) Shelf PCP on the real OpenPose detections of
4D Association, and on the demo (4 cameras, YOLO11n-pose detections, no ground truth) the identity
count, reprojection median, worst forearm/shin length standard deviation and joint jumps
(:func:`capture.benchmarks.take_quality.take_quality`), each with the node's CPU time per frame.

Appearance needs images: the demo's descriptors are computed from its videos for the recorded
detections (:func:`capture.detect.reid.part_histograms`, as the workers do live); Shelf's released
detections come without images, so its appearance rows equal the geometry-only ones there.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

from calibration.camera import CameraRig
from calibration.io import read_calibration
from capture.benchmarks.common import load_bench_config, pcp_coco17, reconstruct_sequence, write_result
from capture.benchmarks.take_quality import take_quality
from capture.pipeline import FrameReconstructor
from core.config import Config
from core.skeleton import COCO17
from core.types import Detections2D

__all__ = ["VARIANTS", "demo_frames", "run_ablation"]

VARIANTS: tuple[tuple[str, dict, str], ...] = (
    ("epipolar only", {"method": "epipolar", "appearance_weight": 0.0}, "dlt"),
    ("+ appearance (pairwise)", {"method": "pairwise", "appearance_weight": 0.5}, "dlt"),
    ("+ multi-way matching (SVT)", {"method": "multiway", "appearance_weight": 0.5}, "dlt"),
    ("multi-way, no appearance", {"method": "multiway", "appearance_weight": 0.0}, "dlt"),
    ("epipolar only, 3DPS", {"method": "epipolar", "appearance_weight": 0.0}, "pictorial"),
    ("multi-way + appearance, 3DPS", {"method": "multiway", "appearance_weight": 0.5}, "pictorial"),
)
"""(label, ``[matching]`` changes, ``[triangulation] method``) of each row."""


def _variant(cfg: Config, matching: dict, method: str) -> Config:
    return dataclasses.replace(
        cfg,
        matching=dataclasses.replace(cfg.matching, **matching),
        triangulation=dataclasses.replace(cfg.triangulation, method=method),
    )


def demo_frames(detections: Path, videos: Path, rig: CameraRig) -> list[list[Detections2D]]:
    """The demo's recorded detections, per frame and camera, with re-ID descriptors computed from the
    videos' frames (:func:`capture.detect.reid.part_histograms`, on the detector's own pixels).

    Raises:
        InputError: a video or detections file cannot be read.
    """
    from capture.detect.reid import part_histograms
    from capture.sources.detection_files import read_detections_json
    from capture.sources.frames import open_source

    per_cam = []
    for name in rig.names:
        dets = read_detections_json(detections / f"{name}.json.gz")
        with open_source(str(videos / f"{name}.mp4")) as src:
            images = {i: img for i, _, img in src}
        per_cam.append(
            [
                dataclasses.replace(d, embeddings=part_histograms(images[d.frame_idx], d.poses, d.boxes))
                if d.frame_idx in images
                else d
                for d in dets
            ]
        )
    n = min(len(v) for v in per_cam)
    return [[v[f] for v in per_cam] for f in range(n)]


def _demo_row(rig: CameraRig, frames: list[list[Detections2D]], cfg: Config) -> dict:
    rec = FrameReconstructor(rig, COCO17, cfg.matching, cfg.triangulation, cfg.fusion)
    ids, poses, reproj, cpu = [], [], [], []
    for views in frames:
        c0 = time.thread_time()
        res = rec.process(views, views[0].stamp_ns)
        cpu.append((time.thread_time() - c0) * 1e3)
        ids.append(res.track_ids)
        poses.append(res.poses)
        reproj.append(res.reproj_px)
    return take_quality(ids, poses, reproj) | {"node_ms_per_frame": round(statistics.median(cpu), 3)}


def _shelf_row(data: Path, cfg: Config) -> dict:
    from calibration.io import read_4da_json
    from capture.benchmarks.body25 import shelf_detections
    from capture.benchmarks.datasets import HeadConvention, read_shelf_gt
    from capture.benchmarks.evaluate import SHELF_FRAMES

    shelf = data / "shelf"
    rig = read_4da_json(shelf / "4d_association" / "calibration.json")
    dets = shelf_detections(shelf / "4d_association" / "detection", rig.names)
    gt = read_shelf_gt(shelf / "original" / "actorsGT.mat")
    n = min(len(v) for v in dets.values())
    cfg = dataclasses.replace(cfg, smoothing=dataclasses.replace(cfg.smoothing, enabled=False))
    run = reconstruct_sequence(rig, [[dets[c][k] for c in rig.names] for k in range(n)], cfg)
    pcp = pcp_coco17(gt, run.frame_poses, SHELF_FRAMES, HeadConvention.VOXELPOSE_SHELF)
    return {"pcp_per_frame": round(100 * pcp.average, 2), "node_ms_per_frame": round(statistics.median(run.cpu_ms), 3)}


def _pizza(data: Path | None):
    """A function (matching changes, triangulation method) -> "k/4" people of ``pizza_5views`` matched in
    every view where the node keeps them (:mod:`capture.benchmarks.pizza`), or None without the data."""
    folder = None if data is None else data / "panoptic" / "pizza_5views"
    if folder is None or not folder.is_dir():
        return None
    from capture.benchmarks.pizza import PEOPLE, run_pizza

    def score(matching: dict, method: str) -> str:  # the grouping does not depend on ``method``
        res = run_pizza(folder, (("variant", matching),))["variants"]["variant"]["check"]
        whole = sum(n == kept for n, kept in res["matched_views"].values())
        mixed = any("mixes" in p for p in res["problems"])
        return f"{whole}/{len(PEOPLE)}" + (" (a group mixes people)" if mixed else "")

    return score


def _default_for(matching: dict, method: str) -> str:
    """Which runs take this variant by default ("video", "stills", both joined, or "")."""
    cfg = Config()
    if method != cfg.triangulation.method or matching.get("appearance_weight") != cfg.matching.appearance_weight:
        return ""
    kinds = [
        kind
        for kind, stills in (("video", False), ("stills", True))
        if cfg.matching.resolved(stills).method == matching["method"]
    ]
    return " and ".join(kinds)


def run_ablation(data: Path | None, out_dir: Path, calibration: Path, detections: Path, videos: Path) -> dict:
    """Run every :data:`VARIANTS` row; writes ``ablation.json`` and ``ablation.md`` into ``out_dir``.

    Args:
        data: folder holding ``shelf/`` (None or absent: the Shelf column is left empty).
        out_dir: where the results go.
        calibration: the demo's calibration file.
        detections: folder of the demo's ``<camera>.json.gz`` detections.
        videos: folder of the demo's ``<camera>.mp4`` videos (for the appearance descriptors).

    Returns:
        ``{"rows": [...], "text": markdown}``.
    """
    rig = read_calibration(calibration)
    frames = demo_frames(detections, videos, rig)
    shelf_cfg, _ = load_bench_config("shelf")
    demo_cfg, _ = load_bench_config("demo")
    have_shelf = data is not None and (data / "shelf").is_dir()
    pizza = _pizza(data)
    rows = []
    for label, matching, method in VARIANTS:
        row = {
            "variant": label,
            "matching": matching,
            "triangulation": method,
            "default": _default_for(matching, method),
        }
        row["demo"] = _demo_row(rig, frames, _variant(demo_cfg, matching, method))
        row["shelf"] = _shelf_row(data, _variant(shelf_cfg, matching, method)) if have_shelf else None
        row["pizza"] = pizza(matching, method) if pizza else None
        rows.append(row)
    lines = [
        "### Ablation: matching and reconstruction methods (`mvcap bench ablation`)",
        "",
        "| variant | Shelf PCP per frame | Shelf node ms | demo ids | demo reproj. median px | "
        "demo forearm/shin std cm (worst) | demo jumps > 10 cm | demo node ms | pizza_5views: people matched "
        "in all their views |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, d = r["shelf"], r["demo"]
        name = f"**{r['variant']}** (default for {r['default']})" if r["default"] else r["variant"]
        shelf = f"{s['pcp_per_frame']:.2f} | {s['node_ms_per_frame']:.2f}" if s else "n/a | n/a"
        pz = r["pizza"] or "n/a"
        lines.append(
            f"| {name} | {shelf} | {d['ids']} | {d['reprojection_px']['median']} | {d['limb_std_cm_max']:.1f} | "
            f"{d['jumps']} | {d['node_ms_per_frame']:.2f} | {pz} |"
        )
    lines += [
        "",
        "Shelf: frames 300-600, real OpenPose detections of 4D Association, VoxelPose PCP (average of actors "
        "1-3), the live node's per-frame output (no offline smoothing); no images, so no appearance there. "
        "Demo: 100 frames of 4 cameras, YOLO11n-pose detections, descriptors from the videos, "
        "`configs/demo.toml`; node ms: CPU time per frame, median, one thread (one pass each: noisy on a busy "
        "machine). pizza_5views: one still, 4 people close together in 5 landscape views "
        "(`mvcap bench pizza`: who is who marked by eye).",
    ]
    text = "\n".join(lines)
    result = {"benchmark": "ablation", "rows": rows, "text": text}
    write_result(out_dir, "ablation", {k: v for k, v in result.items() if k != "text"}, text)
    return result


def main(argv: list[str] | None = None) -> int:
    """``mvcap bench ablation [--data DIR] [--out DIR]``: print the ablation table."""
    import argparse
    import sys

    from capture.assets import demo_data_dir
    from capture.benchmarks.common import default_data_dir
    from core.errors import CaptureError

    repo = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser(prog="mvcap bench ablation", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(default_data_dir()), help="folder holding shelf/ (optional)")
    p.add_argument("--out", default="runs/bench", help="folder for ablation.json and ablation.md")
    p.add_argument("--detections", default=str(repo / "tests/data/demo_yolo11n"), help="the demo's detections")
    args = p.parse_args(argv)
    try:
        demo = demo_data_dir()
        res = run_ablation(
            Path(args.data), Path(args.out), demo / "calibration" / "Calib.qca.txt", Path(args.detections),
            demo / "videos",
        )  # fmt: skip
    except CaptureError as exc:
        print(f"mvcap bench ablation: error: {exc}", file=sys.stderr)
        return 2
    print(res["text"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
