"""Shared leaf: data types, skeletons and errors. Imports nothing else from the project."""

from core.errors import CalibrationError, CaptureError, ConfigError, InputError, MessageError, ShapeError
from core.skeleton import COCO17, SKELETONS, Skeleton, skeleton_by_name
from core.types import Detections2D, Poses3D, check_array

__all__ = [
    "COCO17",
    "CalibrationError",
    "CaptureError",
    "ConfigError",
    "Detections2D",
    "InputError",
    "MessageError",
    "Poses3D",
    "SKELETONS",
    "ShapeError",
    "Skeleton",
    "check_array",
    "skeleton_by_name",
]
