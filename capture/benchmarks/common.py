"""Shared pieces of the dataset benchmarks: running the reconstruction, writing results."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.camera import CameraRig
from capture.benchmarks.datasets import HeadConvention, coco17_to_shelf14
from capture.benchmarks.evaluate import PCPResult, pcp_voxelpose
from capture.pipeline import FrameReconstructor
from core.config import Config, load_config
from core.skeleton import COCO17
from core.types import Detections2D
from fusion.smoothing import SequenceFrame, smooth_sequence

__all__ = [
    "REPO",
    "SequenceRun",
    "default_data_dir",
    "load_bench_config",
    "pcp_coco17",
    "reconstruct_sequence",
    "timing",
    "write_result",
]

REPO = Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """``../shared/data`` beside the checkout (where the project's real datasets live)."""
    return REPO.parent / "shared" / "data"


def load_bench_config(name: str) -> tuple[Config, str]:
    """The dataset's config ``configs/<name>.toml`` (defaults if absent) and its path."""
    path = REPO / "configs" / f"{name}.toml"
    return (load_config(path), str(path.relative_to(REPO))) if path.is_file() else (Config(), "defaults")


@dataclass(frozen=True, slots=True)
class SequenceRun:
    """The reconstruction of a sequence (:func:`reconstruct_sequence`).

    Attributes:
        poses: ``{frame_idx: (P, 17, 4)}`` COCO-17 poses, metres: smoothed over time when the
            config's ``[smoothing]`` is enabled, else the per-frame ones.
        frame_poses: ``{frame_idx: (P, 17, 4)}`` the per-frame (live node) reconstructions.
        ids: ``{frame_idx: (P,)}`` track ids, rows as in both pose dicts.
        cpu_ms: per-frame CPU time of the node's reconstruction, milliseconds.
        smoothing_cpu_ms: CPU time of the smoothing pass divided by the number of frames,
            milliseconds (None when smoothing is off).
        sequence: the per-frame results as :func:`fusion.smoothing.smooth_sequence` takes them (to
            smooth again with other settings).
    """

    poses: dict[int, np.ndarray]
    frame_poses: dict[int, np.ndarray]
    ids: dict[int, np.ndarray]
    cpu_ms: list[float]
    smoothing_cpu_ms: float | None
    sequence: list[SequenceFrame]


def reconstruct_sequence(rig: CameraRig, frames: Sequence[Sequence[Detections2D | None]], cfg: Config) -> SequenceRun:
    """Run the node's per-frame reconstruction over a sequence in one thread, then smooth it.

    The smoothing pass (:func:`fusion.smoothing.smooth_sequence`, the UKF on each track's 2D
    observations with the RTS smoother) runs when ``cfg.smoothing.enabled``.

    Args:
        rig: cameras, in the order of each frame's views.
        frames: per frame, one Detections2D (or None) per camera; frame index and time are read
            from the first present view.
        cfg: run configuration (matching, triangulation, fusion, smoothing sections).

    Returns:
        A :class:`SequenceRun`.
    """
    rec = FrameReconstructor(rig, COCO17, cfg.matching, cfg.triangulation, cfg.fusion)
    poses, ids, cpu_ms, seq = {}, {}, [], []
    for views in frames:
        first = next(v for v in views if v is not None)
        c0 = time.thread_time()
        res = rec.process(list(views), first.stamp_ns)
        cpu_ms.append((time.thread_time() - c0) * 1e3)
        poses[first.frame_idx] = res.poses
        ids[first.frame_idx] = res.track_ids
        seq.append(SequenceFrame(first.stamp_ns, res.track_ids, res.poses, res.obs_px, res.obs_conf))
    if not cfg.smoothing.enabled:
        return SequenceRun(poses, poses, ids, cpu_ms, None, seq)
    c0 = time.thread_time()
    smoothed = smooth_sequence(seq, rig.projections(), cfg.smoothing, cfg.triangulation.min_joint_conf)
    per_frame = (time.thread_time() - c0) * 1e3 / max(len(seq), 1)
    return SequenceRun(dict(zip(poses, smoothed, strict=True)), poses, ids, cpu_ms, per_frame, seq)


def pcp_coco17(
    gt: dict[int, dict[int, np.ndarray]], poses: dict[int, np.ndarray], frames: Sequence[int], head: HeadConvention
) -> PCPResult:
    """VoxelPose PCP (:func:`pcp_voxelpose`, average of actors 1-3) of COCO-17 output poses.

    Args:
        gt: ``{actor: {frame: (14, 3)}}`` Shelf-14 ground truth, metres.
        poses: ``{frame_idx: (P, 17, 4)}`` COCO-17 poses, metres (as :class:`SequenceRun` holds them).
        frames: frame indices to evaluate.
        head: head-joint convention of the Shelf-14 mapping (:func:`coco17_to_shelf14`).
    """
    pred = {f: coco17_to_shelf14(p, head=head) if len(p) else np.zeros((0, 14, 4)) for f, p in poses.items()}
    return pcp_voxelpose(gt, pred, frames, n_actors=3)


def timing(cpu_ms: list[float]) -> dict[str, float]:
    """Median and 90th percentile of per-frame CPU times, milliseconds."""
    return {"median": round(statistics.median(cpu_ms), 3), "p90": round(float(np.percentile(cpu_ms, 90)), 3)}


def write_result(out_dir: Path, name: str, result: dict, markdown: str) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / f"{name}.json", out_dir / f"{name}.md"
    js.write_text(json.dumps(result, indent=2) + "\n")
    md.write_text(markdown.rstrip() + "\n")
    return js, md
