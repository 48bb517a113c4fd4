"""Camera model, calibration file formats and fundamental matrices."""

from calibration.camera import Camera, CameraRig, fundamental_matrix

__all__ = ["Camera", "CameraRig", "fundamental_matrix"]
