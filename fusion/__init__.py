"""Fusion of 3D poses over time: identity tracking."""

from fusion.tracking import Track, Tracker, pose_distance_matrix

__all__ = ["Track", "Tracker", "pose_distance_matrix"]
