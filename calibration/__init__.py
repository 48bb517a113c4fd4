"""Camera model, calibration file formats (read and write), boards, intrinsics, rig checks, fundamental matrices.

The calibration methods (boards, intrinsics, bundle adjustment, extrinsics) are imported on first
use: they bring scipy.optimize (about 0.5 s), which the node and the workers never need.
"""

from importlib import import_module
from typing import Any

from calibration.camera import Camera, CameraRig, fundamental_matrix
from calibration.checks import check_rig, load_rig
from calibration.io import (
    read_4da_json,
    read_calibration,
    read_json,
    read_panoptic_json,
    read_qca,
    read_toml,
    read_tum_projections,
    read_voxelpose_json,
    write_4da_json,
    write_calibration,
    write_json,
    write_panoptic_json,
    write_qca,
    write_toml,
    write_tum_projections,
    write_voxelpose_json,
)

__all__ = [
    "Board",
    "BoardView",
    "BundleProblem",
    "Camera",
    "CameraRig",
    "ExtraResiduals",
    "ExtrinsicsResult",
    "IntrinsicsResult",
    "Observations",
    "Refine",
    "bundle_adjust",
    "calibrate_extrinsics",
    "calibrate_intrinsics",
    "check_rig",
    "detect_board",
    "fundamental_matrix",
    "load_rig",
    "parse_board",
    "read_4da_json",
    "read_calibration",
    "read_json",
    "read_panoptic_json",
    "read_qca",
    "read_toml",
    "read_tum_projections",
    "read_voxelpose_json",
    "write_4da_json",
    "write_calibration",
    "write_json",
    "write_panoptic_json",
    "write_qca",
    "write_toml",
    "write_tum_projections",
    "write_voxelpose_json",
]

_LAZY = {
    "Board": "calibration.board",
    "BoardView": "calibration.board",
    "detect_board": "calibration.board",
    "parse_board": "calibration.board",
    "BundleProblem": "calibration.bundle",
    "ExtraResiduals": "calibration.bundle",
    "Observations": "calibration.bundle",
    "Refine": "calibration.bundle",
    "bundle_adjust": "calibration.bundle",
    "ExtrinsicsResult": "calibration.extrinsics",
    "calibrate_extrinsics": "calibration.extrinsics",
    "IntrinsicsResult": "calibration.intrinsics",
    "calibrate_intrinsics": "calibration.intrinsics",
}


def __getattr__(name: str) -> Any:
    """Import a calibration method's module on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'calibration' has no attribute {name!r}")
