"""Fusion of 3D poses over time: identity tracking, and UKF + RTS smoothing of each track's joints
(over a whole take, :func:`smooth_sequence`, or streamed in bounded memory, :class:`StreamSmoother`)."""

from fusion.smoothing import SequenceFrame, smooth_joint_track, smooth_sequence
from fusion.stream_smoothing import StreamSmoother
from fusion.tracking import Track, Tracker, pose_distance_matrix

__all__ = [
    "SequenceFrame",
    "StreamSmoother",
    "Track",
    "Tracker",
    "pose_distance_matrix",
    "smooth_joint_track",
    "smooth_sequence",
]
