"""Frozen data types exchanged between packages.

Convention: a missing joint has confidence 0; its coordinates are 0 and must not be read. No NaN is
allowed in these types (a NaN inside a function means a bug upstream).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import ShapeError

__all__ = ["Detections2D", "Poses3D", "RGBDDetections", "check_array"]


def check_array(name: str, array: object, shape: tuple[int | None, ...], dtype: type) -> np.ndarray:
    """Return ``array`` as a read-only C-contiguous array of ``dtype``, checking its shape.

    Args:
        name: argument name used in the error message.
        array: array-like input.
        shape: expected shape; ``None`` entries accept any length.
        dtype: target dtype (the input is cast).

    Returns:
        The checked array, read-only.

    Raises:
        ShapeError: wrong number of dimensions, wrong length, or non-finite values.

    Example:
        >>> check_array("boxes", [[0, 0, 1, 1, 0.9]], (None, 5), np.float32).shape
        (1, 5)
    """
    out = np.ascontiguousarray(array, dtype=dtype)
    expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if out.ndim != len(shape) or any(s is not None and s != o for s, o in zip(shape, out.shape, strict=True)):
        raise ShapeError(f"{name} must be {expected}; got {out.shape}")
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise ShapeError(f"{name} must be finite; got NaN or inf")
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True)
class Detections2D:
    """2D person detections of one camera frame.

    Attributes:
        camera: camera name, as in the calibration.
        frame_idx: frame index in the camera's stream (0-based).
        stamp_ns: capture time, nanoseconds (host clock of the capturing machine).
        poses: (P, J, 3) float32 [u_px, v_px, conf], distorted pixel coordinates; conf in [0, 1].
        boxes: (P, 5) float32 [x1, y1, x2, y2, score], pixels.
        embeddings: (P, D) float32 appearance descriptors (re-ID, e.g.
            :func:`capture.detect.reid.part_histograms`), one row per person, or None when the worker
            computes none. Keyword-only.

    Raises:
        ShapeError: an array of the wrong shape, or not finite.
    """

    camera: str
    frame_idx: int
    stamp_ns: int
    poses: np.ndarray
    boxes: np.ndarray
    embeddings: np.ndarray | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        poses = np.asarray(self.poses, dtype=np.float32)
        if poses.size == 0:
            poses = poses.reshape(0, poses.shape[1] if poses.ndim == 3 else 0, 3)
        object.__setattr__(self, "poses", check_array("poses", poses, (None, None, 3), np.float32))
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 5) if np.size(self.boxes) == 0 else self.boxes
        object.__setattr__(self, "boxes", check_array("boxes", boxes, (self.poses.shape[0], 5), np.float32))
        if self.embeddings is not None:
            emb = np.asarray(self.embeddings, dtype=np.float32)
            emb = emb.reshape(0, emb.shape[-1] if emb.ndim == 2 else 0) if emb.size == 0 else emb
            object.__setattr__(
                self, "embeddings", check_array("embeddings", emb, (self.poses.shape[0], None), np.float32)
            )
        object.__setattr__(self, "frame_idx", int(self.frame_idx))
        object.__setattr__(self, "stamp_ns", int(self.stamp_ns))

    @property
    def n_people(self) -> int:
        """Number of detected people P."""
        return int(self.poses.shape[0])


@dataclass(frozen=True, slots=True)
class Poses3D:
    """Tracked 3D poses of one output frame.

    Attributes:
        frame_idx: output frame index.
        stamp_ns: capture time of the frame, nanoseconds.
        track_ids: (P,) int64 track identities, stable across frames.
        poses: (P, J, 4) float64 [x, y, z, conf], world frame, metres.
    """

    frame_idx: int
    stamp_ns: int
    track_ids: np.ndarray
    poses: np.ndarray

    def __post_init__(self) -> None:
        ids = check_array("track_ids", np.asarray(self.track_ids).reshape(-1), (None,), np.int64)
        object.__setattr__(self, "track_ids", ids)
        poses = np.asarray(self.poses, dtype=np.float64)
        if poses.size == 0:
            poses = poses.reshape(0, poses.shape[1] if poses.ndim == 3 else 0, 4)
        object.__setattr__(self, "poses", check_array("poses", poses, (ids.shape[0], None, 4), np.float64))
        object.__setattr__(self, "frame_idx", int(self.frame_idx))
        object.__setattr__(self, "stamp_ns", int(self.stamp_ns))


@dataclass(frozen=True, slots=True)
class RGBDDetections(Detections2D):
    """2D detections of an RGB-D camera frame with their joints lifted to 3D (:mod:`fusion.rgbd`).

    Attributes (besides :class:`~core.types.Detections2D`'s):
        joints3d: (P, J, 4) float32 [x, y, z, conf] lifted joints, world frame, metres; conf 0 where
            the joint was not lifted (no 2D joint, a hole or an edge), its other entries 0.
        joints3d_cov: (P, J, 3, 3) float32 their covariances, world frame, metres^2 (0 where conf
            is 0).

    Raises:
        ShapeError: an array of the wrong shape, or not finite.
    """

    joints3d: np.ndarray
    joints3d_cov: np.ndarray

    def __post_init__(self) -> None:
        Detections2D.__post_init__(self)  # zero-argument super() does not work in a slots dataclass
        P, J = self.poses.shape[:2]
        object.__setattr__(self, "joints3d", check_array("joints3d", self.joints3d, (P, J, 4), np.float32))
        object.__setattr__(
            self, "joints3d_cov", check_array("joints3d_cov", self.joints3d_cov, (P, J, 3, 3), np.float32)
        )

    @classmethod
    def from_detections(cls, dets: Detections2D, joints3d: np.ndarray, joints3d_cov: np.ndarray) -> RGBDDetections:
        """``dets`` with lifted joints (of the same people and joints) attached (``fusion.rgbd.lift_joints``);
        its embeddings are kept."""
        return cls(
            dets.camera, dets.frame_idx, dets.stamp_ns, dets.poses, dets.boxes, joints3d, joints3d_cov,
            embeddings=dets.embeddings,
        )  # fmt: skip
