"""Cross-view association of 2D detections (epipolar affinity, multi-view grouping)."""

from matching.epipolar import EpipolarMatcher, epipolar_distance_matrix, group_by_affinity
from matching.tracks import assign_detections_to_tracks, joint_distance_matrix_2d

__all__ = [
    "EpipolarMatcher",
    "assign_detections_to_tracks",
    "epipolar_distance_matrix",
    "group_by_affinity",
    "joint_distance_matrix_2d",
]
