"""3D reconstruction from matched 2D detections: weighted DLT (H&Z §12.2) with per-joint view
rejection, and 3D pictorial structures (Belagiannis et al. 2014) on a limb-length tree."""

from triangulation.dlt import TriangulationResult, reprojection_errors, triangulate_dlt, triangulate_robust
from triangulation.limb_priors import LimbPriors, coco17_priors, tree_bone_lengths
from triangulation.pictorial import min_sum_tree, pictorial_pose, triangulate_pictorial

__all__ = [
    "LimbPriors",
    "TriangulationResult",
    "coco17_priors",
    "min_sum_tree",
    "pictorial_pose",
    "reprojection_errors",
    "tree_bone_lengths",
    "triangulate_dlt",
    "triangulate_pictorial",
    "triangulate_robust",
]
