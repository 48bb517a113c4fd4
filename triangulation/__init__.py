"""3D reconstruction from matched 2D detections (weighted DLT, H&Z §12.2)."""

from triangulation.dlt import TriangulationResult, reprojection_errors, triangulate_dlt, triangulate_robust

__all__ = ["TriangulationResult", "reprojection_errors", "triangulate_dlt", "triangulate_robust"]
