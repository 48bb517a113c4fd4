"""Cross-view association of 2D detections (epipolar affinity, multi-view grouping)."""

from matching.epipolar import EpipolarMatcher, epipolar_distance_matrix, group_by_affinity

__all__ = ["EpipolarMatcher", "epipolar_distance_matrix", "group_by_affinity"]
