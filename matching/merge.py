"""Merging duplicate groups: two groups of disjoint views whose 3D poses coincide are one person.

A person whose detections are too noisy in some views for the track gate, or ambiguous in epipolar
geometry, is otherwise split into two groups (a duplicate person): each triangulates to nearly the
same 3D pose from its own views. Groups are merged closest first (median joint distance in 3D,
within ``merge_m``), as the 3D-proximity clustering of triangulated candidates in multi-view
systems (e.g. the 3D grouping step of Bridgeman et al., "Multi-Person 3D Pose Estimation and
Tracking in Sports", CVPR Workshops 2019).
"""

from __future__ import annotations

import numpy as np

from core.numeric import pose_distance_matrix

__all__ = ["merge_duplicate_groups"]

Group = tuple[tuple[int, int], ...]


def merge_duplicate_groups(
    groups: list[Group], hints: list[int], poses: np.ndarray, merge_m: float
) -> tuple[list[Group], list[int], bool]:
    """Merge groups of the same person: disjoint views, 3D poses within ``merge_m``.

    Two tracked groups (hint > 0) are never merged (they are different tracks); a merged group keeps
    the track id of its tracked part, else the larger group's place.

    Args:
        groups: per group, its (view, detection) pairs.
        hints: per group, its track id (0: new).
        poses: (G, J, 4) each group's triangulated pose, metres (conf 0: missing joint).
        merge_m: largest median joint distance of a merge, metres.

    Returns:
        The groups and hints after merging, and whether any merge happened.
    """
    if len(groups) < 2 or all(h > 0 for h in hints):
        return groups, hints, False  # two tracked groups never merge
    dist = pose_distance_matrix(poses, poses)
    np.fill_diagonal(dist, np.inf)
    groups, hints = list(groups), list(hints)
    alive = [True] * len(groups)
    merged = False
    for flat in np.argsort(dist, axis=None):
        a, b = divmod(int(flat), len(groups))
        if dist[a, b] > merge_m:
            break
        if a > b or not (alive[a] and alive[b]) or (hints[a] > 0 and hints[b] > 0):
            continue
        if not {c for c, _ in groups[a]}.isdisjoint(c for c, _ in groups[b]):
            continue
        keep, drop = (a, b) if hints[a] > 0 or (hints[b] == 0 and len(groups[a]) >= len(groups[b])) else (b, a)
        groups[keep] = tuple(sorted(groups[keep] + groups[drop]))
        alive[drop] = False
        merged = True
    idx = [g for g in range(len(groups)) if alive[g]]
    return [groups[g] for g in idx], [hints[g] for g in idx], merged
