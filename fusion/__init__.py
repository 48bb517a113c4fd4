"""Fusion of 3D poses over time: identity tracking, and UKF + RTS smoothing of each track's joints."""

from fusion.smoothing import SequenceFrame, smooth_joint_track, smooth_sequence
from fusion.tracking import Track, Tracker, pose_distance_matrix

__all__ = ["SequenceFrame", "Track", "Tracker", "pose_distance_matrix", "smooth_joint_track", "smooth_sequence"]
