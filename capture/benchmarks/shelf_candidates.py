"""Shelf's several OpenPose candidates per joint as extra 2D evidence for 3D pictorial structures.

4D Association's detection files hold, per view and BODY25 joint, every peak OpenPose found (all
people's), of which the greedy part-affinity parsing (:mod:`capture.benchmarks.body25`) keeps one per
assembled person. 3D pictorial structures take several 2D candidates per view and joint as unary
evidence (Belagiannis et al., "3D Pictorial Structures for Multiple Human Pose Estimation", CVPR 2014
§3; Dong et al., "Fast and Robust Multi-Person 3D Pose Estimation from Multiple Views", CVPR 2019
§3.3; :func:`triangulation.pictorial.triangulate_pictorial`). Here, for every person the node
reconstructed in a frame, each view contributes the joint's assembled 2D observation plus the
nearest other OpenPose peak of that joint within ``radius_px`` of the person's projected 3D joint,
and 3DPS picks among their triangulations jointly over the kinematic tree
(:func:`pictorial_with_candidates`).

For the offline smoother (:func:`fusion.smoothing.smooth_sequence`), :func:`reselect_observations`
gives each person, per view and joint, the OpenPose peak nearest to the projection of a reference
pose (e.g. the 3DPS one), each peak going to the nearest person only.

This sits in the benchmark because only Shelf's input carries the candidates; the node's
``Detections2D`` holds one pose per person.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from calibration.camera import Camera
from capture.benchmarks.body25 import BODY25_TO_COCO17, Body25Frame
from core.errors import ShapeError
from fusion.smoothing import SequenceFrame
from triangulation.pictorial import triangulate_pictorial

__all__ = ["coco17_candidates", "pictorial_with_candidates", "reselect_observations"]


def coco17_candidates(
    frames: Sequence[Body25Frame], camera: Camera, image_size: tuple[int, int], max_candidates: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Every OpenPose peak of each COCO-17 joint in one camera's frames, undistorted pixels.

    Args:
        frames: T raw frames of one camera (:func:`~capture.benchmarks.body25.read_4da_detections`).
        camera: that camera (its distortion is removed from the peaks).
        image_size: (width, height) pixels; file coordinates are normalised (pixels = x (W - 1)).
        max_candidates: M, the largest number of peaks kept per joint (the file's first M).

    Returns:
        ``(cand_px, cand_conf)``: (T, 17, M, 2) undistorted pixels and (T, 17, M) scores clipped to
        [0, 1]; padding has score 0.
    """
    w, h = image_size
    T, J = len(frames), len(BODY25_TO_COCO17)
    cand_px, cand_conf = np.zeros((T, J, max_candidates, 2)), np.zeros((T, J, max_candidates))
    for t, frame in enumerate(frames):
        for j, b in enumerate(BODY25_TO_COCO17):
            c = frame.candidates[b][:max_candidates]
            if len(c):
                cand_px[t, j, : len(c)] = camera.undistort_px(c[:, :2] * [w - 1, h - 1])
                cand_conf[t, j, : len(c)] = np.clip(c[:, 2], 0.0, 1.0)
    return cand_px, cand_conf


def _project(P: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, G, J, 2) pixels and (C, G, J) depths of (G, J, 3) points through (C, 3, 4) projections."""
    q = np.einsum("cij,gkj->cgki", P[:, :, :3], X) + P[:, None, None, :, 3]
    z = q[..., 2]
    return q[..., :2] / np.where(np.abs(z) > 1e-12, z, 1e-12)[..., None], z


def _check(P: np.ndarray, poses: np.ndarray, cand_px: np.ndarray, cand_conf: np.ndarray) -> None:
    C, J = P.shape[0], poses.shape[1] if poses.ndim == 3 else -1
    if (
        P.shape != (C, 3, 4)
        or poses.ndim != 3
        or poses.shape[2] != 4
        or cand_px.ndim != 4
        or cand_px.shape[:2] != (C, J)
        or cand_px.shape[3] != 2
        or cand_conf.shape != cand_px.shape[:3]
    ):
        raise ShapeError(
            "need P (C, 3, 4), poses (G, J, 4), cand_px (C, J, M, 2), cand_conf (C, J, M); got "
            f"{P.shape}, {poses.shape}, {cand_px.shape}, {cand_conf.shape}"
        )


def pictorial_with_candidates(
    P: np.ndarray,
    poses: np.ndarray,
    obs_px: np.ndarray,
    obs_conf: np.ndarray,
    cand_px: np.ndarray,
    cand_conf: np.ndarray,
    *,
    radius_px: float = 20.0,
    min_conf: float = 0.2,
    max_reproj_px: float = 20.0,
    min_views: int = 2,
) -> np.ndarray:
    """Re-estimate G reconstructed persons of one frame by 3DPS with two 2D candidates per view and joint.

    Per view and joint the candidates are the person's own 2D observation and the nearest other
    OpenPose peak of that joint (farther than 1 px from it) within ``radius_px`` of the projection
    of the person's 3D joint (in front of the camera); 3DPS
    (:func:`triangulation.pictorial.triangulate_pictorial`, population bone priors) chooses among
    their triangulations. Joints 3DPS leaves missing keep the input.

    Args:
        P: (C, 3, 4) projection matrices, world metres to undistorted pixels.
        poses: (G, J, 4) the frame's reconstructed persons [x, y, z, conf], metres; conf 0 = missing.
        obs_px: (G, C, J, 2) their 2D joints per view, undistorted pixels.
        obs_conf: (G, C, J) their confidences (0 = not seen).
        cand_px: (C, J, M, 2) the frame's OpenPose peaks per view and joint (:func:`coco17_candidates`).
        cand_conf: (C, J, M) their scores; 0 = padding.
        radius_px: gate around the projected joint for the extra candidate, pixels.
        min_conf: smallest 2D score used.
        max_reproj_px: a view supports the chosen point within this, pixels.
        min_views: smallest number of supporting views of a joint.

    Returns:
        (G, J, 4) [x, y, z, conf] poses, metres.

    Raises:
        ShapeError: inconsistent shapes.
    """
    _check(P, poses, cand_px, cand_conf)
    G, J = poses.shape[:2]
    C = P.shape[0]
    if obs_px.shape != (G, C, J, 2) or obs_conf.shape != (G, C, J):
        raise ShapeError(
            f"obs_px must be ({G}, {C}, {J}, 2) and obs_conf ({G}, {C}, {J}); got {obs_px.shape}, {obs_conf.shape}"
        )
    if G == 0:
        return np.array(poses, dtype=np.float64, copy=True)
    uv, z = _project(P, poses[..., :3])  # (C, G, J)
    obs = obs_px.transpose(1, 0, 2, 3)  # (C, G, J, 2)
    cands = np.broadcast_to(cand_px[:, None], (C, G, *cand_px.shape[1:]))  # (C, G, J, M, 2)
    d = np.linalg.norm(uv[:, :, :, None] - cands, axis=-1)
    other = np.linalg.norm(cands - obs[:, :, :, None], axis=-1) > 1.0
    usable = (cand_conf[:, None] >= min_conf) & (z[..., None] > 0) & (poses[None, :, :, 3, None] > 0) & other
    d = np.where(usable & (d <= radius_px), d, np.inf)
    m = np.argmin(d, axis=3)
    found = np.isfinite(np.take_along_axis(d, m[..., None], 3)[..., 0])
    extra = np.take_along_axis(cands, m[..., None, None].repeat(2, axis=-1), 3)[:, :, :, 0]
    extra_conf = np.where(found, np.take_along_axis(cand_conf[:, None].repeat(G, 1), m[..., None], 3)[..., 0], 0.0)
    pts = np.stack([obs, extra], axis=3).reshape(C, G * J, 2, 2)
    conf = np.stack([obs_conf.transpose(1, 0, 2), extra_conf], axis=3).reshape(C, G * J, 2)
    res = triangulate_pictorial(P, pts, conf, min_conf, max_reproj_px, min_views)
    out = np.concatenate([res.points, res.conf[:, None]], axis=1).reshape(G, J, 4)
    return np.where(out[..., 3:] > 0, out, poses)


def reselect_observations(
    frame: SequenceFrame,
    reference: np.ndarray,
    P: np.ndarray,
    cand_px: np.ndarray,
    cand_conf: np.ndarray,
    gate_px: float = 20.0,
    min_conf: float = 0.2,
) -> SequenceFrame:
    """A frame whose 2D observations are the OpenPose peaks nearest to a reference pose's projection.

    Per view and joint, each person gets the peak nearest to the projection of its reference joint
    if within ``gate_px``; a peak nearer to another person's projection goes to that person only.
    Joints without such a peak, or missing in the reference, get confidence 0. ``poses`` becomes
    ``reference`` (the smoother's gating reference and starting point).

    Args:
        frame: the node's frame (:class:`fusion.smoothing.SequenceFrame`) with P persons.
        reference: (P, J, 4) the persons' reference poses, metres, rows as in ``frame``.
        P: (C, 3, 4) projection matrices, world metres to undistorted pixels.
        cand_px: (C, J, M, 2) the frame's OpenPose peaks, undistorted pixels.
        cand_conf: (C, J, M) their scores; 0 = padding.
        gate_px: largest distance of a peak from the projected joint, pixels.
        min_conf: smallest score used.

    Returns:
        The new :class:`~fusion.smoothing.SequenceFrame`.

    Raises:
        ShapeError: inconsistent shapes.
    """
    _check(P, reference, cand_px, cand_conf)
    G = len(frame.track_ids)
    if reference.shape[0] != G:
        raise ShapeError(f"reference has {reference.shape[0]} persons; the frame has {G}")
    if G == 0:
        return frame
    uv, z = _project(P, reference[..., :3])  # (C, G, J, 2)
    d = np.linalg.norm(uv[:, :, :, None] - cand_px[:, None], axis=-1)  # (C, G, J, M)
    d = np.where((cand_conf[:, None] >= min_conf) & (z[..., None] > 0), d, np.inf)
    own = np.argmin(d, axis=1)[:, None] == np.arange(G)[None, :, None, None]  # the peak's nearest person
    d = np.where(own, d, np.inf)
    m = np.argmin(d, axis=3)
    ok = (np.take_along_axis(d, m[..., None], 3)[..., 0] <= gate_px) & (reference[None, :, :, 3] > 0)
    C, J, M = cand_conf.shape
    px = np.take_along_axis(np.broadcast_to(cand_px[:, None], (C, G, J, M, 2)), m[..., None, None].repeat(2, -1), 3)[
        :, :, :, 0
    ]
    conf = np.take_along_axis(np.broadcast_to(cand_conf[:, None], (C, G, J, M)), m[..., None], 3)[..., 0]
    return SequenceFrame(
        frame.stamp_ns,
        frame.track_ids,
        np.array(reference, dtype=np.float64, copy=True),
        np.where(ok[..., None], px, 0.0).transpose(1, 0, 2, 3),
        np.where(ok, conf, 0.0).transpose(1, 0, 2),
    )
