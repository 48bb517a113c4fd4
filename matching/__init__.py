"""Which detections are the same person: cross-view affinities (epipolar geometry, re-ID appearance),
pairwise and multi-way (SVT) matching, track-driven association with left/right consistency,
duplicate merging, start-up seeding of large rigs."""

from matching.affinity import AffinityConfig, frame_affinity, part_similarity, stack_fundamentals
from matching.epipolar import (
    EpipolarMatcher,
    epipolar_distance_matrix,
    group_by_affinity,
    pairwise_epipolar_distances,
    refine_groups,
)
from matching.merge import merge_duplicate_groups
from matching.multiway import MultiwayMatcher, is_cycle_consistent, match_svt, pairwise_matches
from matching.seed import spread_views
from matching.single_view import single_view_pose
from matching.track_claims import Association, CrossViewMatcher, TrackDrivenAssociator, claim_detections, project_tracks
from matching.tracks import assign_detections_to_tracks, joint_distance_matrix_2d
from matching.unflip import unflip_claimed

__all__ = [
    "AffinityConfig",
    "Association",
    "CrossViewMatcher",
    "EpipolarMatcher",
    "MultiwayMatcher",
    "TrackDrivenAssociator",
    "assign_detections_to_tracks",
    "claim_detections",
    "epipolar_distance_matrix",
    "frame_affinity",
    "group_by_affinity",
    "is_cycle_consistent",
    "joint_distance_matrix_2d",
    "match_svt",
    "merge_duplicate_groups",
    "pairwise_epipolar_distances",
    "pairwise_matches",
    "part_similarity",
    "project_tracks",
    "refine_groups",
    "single_view_pose",
    "spread_views",
    "stack_fundamentals",
    "unflip_claimed",
]
