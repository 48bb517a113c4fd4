"""What a take's 3D output reveals about its quality when there is no ground truth.

Without 3D ground truth (the demo, ``pizza_5views``, a studio's own take) the output still shows
its errors: triangulated joints that reproject far from the 2D detections, limbs whose length
varies over the take (a person's bones do not change), joints that jump between consecutive frames,
and identities that split (more ids than people). These are the figures the ablation and front-end
benchmarks print next to node time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.skeleton import COCO17, Skeleton

__all__ = ["LIMBS_MEASURED", "take_quality"]

LIMBS_MEASURED: tuple[tuple[str, str, str], ...] = (
    ("left forearm", "left_elbow", "left_wrist"),
    ("right forearm", "right_elbow", "right_wrist"),
    ("left shin", "left_knee", "left_ankle"),
    ("right shin", "right_knee", "right_ankle"),
)
"""The limbs whose length standard deviation is reported: the ones 2D detectors get most wrong."""


def take_quality(
    track_ids: Sequence[np.ndarray],
    poses: Sequence[np.ndarray],
    reproj_px: Sequence[np.ndarray],
    skeleton: Skeleton = COCO17,
    jump_m: float = 0.1,
    min_frames: int = 10,
) -> dict:
    """Quality figures of one take's output.

    Args:
        track_ids: per frame, (P,) the published ids.
        poses: per frame, (P, J, 4) [x, y, z, conf] poses, metres (conf 0: missing joint).
        reproj_px: per frame, (M,) reprojection errors of the joint observations used, pixels.
        skeleton: joint names of the poses (must have the joints of :data:`LIMBS_MEASURED`).
        jump_m: a joint of one track moving further than this between consecutive frames (metres)
            is a jump.
        min_frames: a track's limb is measured when seen in at least this many frames.

    Returns:
        ``ids`` (distinct ids), ``people_per_frame`` (mean), ``reprojection_px`` (median, p90),
        ``jumps`` (joint-frames), ``limb_std_cm`` (per limb of :data:`LIMBS_MEASURED`, the largest
        standard deviation of its length over the tracks, centimetres) and ``limb_std_cm_max``.

    Raises:
        ValueError: the three sequences differ in length.
    """
    if not len(track_ids) == len(poses) == len(reproj_px):
        raise ValueError(f"one entry per frame expected; got {len(track_ids)}, {len(poses)}, {len(reproj_px)}")
    jumps, last = 0, {}
    lengths: dict[tuple[int, str], list[float]] = {}
    limbs = [(name, skeleton.index(a), skeleton.index(b)) for name, a, b in LIMBS_MEASURED]
    for ids, frame in zip(track_ids, poses, strict=True):
        for tid, pose in zip(np.asarray(ids).tolist(), frame, strict=True):
            if tid in last:
                both = (pose[:, 3] > 0) & (last[tid][:, 3] > 0)
                jumps += int((np.linalg.norm(pose[both, :3] - last[tid][both, :3], axis=1) > jump_m).sum())
            last[tid] = pose
            for name, a, b in limbs:
                if pose[a, 3] > 0 and pose[b, 3] > 0:
                    lengths.setdefault((tid, name), []).append(float(np.linalg.norm(pose[a, :3] - pose[b, :3])))
    std = {name: 0.0 for name, _, _ in limbs}
    for (_, name), values in lengths.items():
        if len(values) >= min_frames:
            std[name] = max(std[name], 100.0 * float(np.std(values)))
    err = np.concatenate([np.asarray(r, float).ravel() for r in reproj_px]) if reproj_px else np.zeros(0)
    return {
        "ids": len({int(t) for ids in track_ids for t in np.asarray(ids).tolist()}),
        "people_per_frame": round(float(np.mean([len(ids) for ids in track_ids])) if track_ids else 0.0, 2),
        "reprojection_px": {
            "median": round(float(np.median(err)), 2) if err.size else None,
            "p90": round(float(np.percentile(err, 90)), 2) if err.size else None,
        },
        "jumps": jumps,
        "limb_std_cm": {k: round(v, 2) for k, v in std.items()},
        "limb_std_cm_max": round(max(std.values(), default=0.0), 2),
    }
