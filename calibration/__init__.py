"""Camera model, calibration file formats (read and write), boards, intrinsics, rig checks, fundamental matrices."""

from calibration.board import Board, BoardView, detect_board, parse_board
from calibration.bundle import BundleProblem, ExtraResiduals, Observations, Refine, bundle_adjust
from calibration.camera import Camera, CameraRig, fundamental_matrix
from calibration.checks import check_rig, load_rig
from calibration.extrinsics import ExtrinsicsResult, calibrate_extrinsics
from calibration.intrinsics import IntrinsicsResult, calibrate_intrinsics
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
