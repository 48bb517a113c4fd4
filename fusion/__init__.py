"""Fusion of 3D poses over time: the live UKF tracker (:class:`LiveTracker`, batched UKF in
:mod:`fusion.ukf`), constant-velocity identity tracking, and UKF + RTS smoothing of each track's joints
(over a whole take, :func:`smooth_sequence`, or streamed in bounded memory, :class:`StreamSmoother`)."""

from fusion.bones import BoneModel
from fusion.live import LiveTracker, LiveUpdate
from fusion.live_tracks import LiveTrack, TrackState, confidence_from_std
from fusion.smoothing import SequenceFrame, smooth_joint_track, smooth_sequence
from fusion.stream_smoothing import StreamSmoother
from fusion.tracking import Track, Tracker, pose_distance_matrix

__all__ = [
    "BoneModel",
    "LiveTrack",
    "LiveTracker",
    "LiveUpdate",
    "SequenceFrame",
    "StreamSmoother",
    "Track",
    "TrackState",
    "Tracker",
    "confidence_from_std",
    "pose_distance_matrix",
    "smooth_joint_track",
    "smooth_sequence",
]
