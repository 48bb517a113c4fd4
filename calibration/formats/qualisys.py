"""Qualisys ``.qca.txt`` calibrations (XML), read and written as Pose2Sim 0.10.49 converts them.

Convention (both directions): ``transform`` is the camera pose in the world, centre (x, y, z) in
millimetres and M = [[r11, r12, r13], [r21, r22, r23], [r31, r32, r33]]; the OpenCV camera is
R = Rx(pi) @ M, t = -Rx(pi) @ M @ centre / 1000, Rx(pi) = diag(1, -1, -1) (a rotation by pi about
the camera x axis, Pose2Sim's ``rotate_cam``). Intrinsics are in sensor units of 1/64 px inside the
``fov_video`` window: fx = focalLengthU / 64, cx = centerPointU / 64 - left, and Pose2Sim also
divides the distortion coefficients by 64 (kept, so that results match Pose2Sim's).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Final

import numpy as np

from calibration.camera import Camera, CameraRig
from calibration.formats.common import (
    PathLike,
    calib_error,
    check_no_skew,
    make_camera,
    make_rig,
    natural_key,
    read_text,
    write_text_atomic,
)

__all__ = ["read_qca", "write_qca"]

log = logging.getLogger(__name__)

_FOV: Final = ("left", "top", "right", "bottom")
_INTRINSIC: Final = (
    "radialDistortion1", "radialDistortion2", "tangentalDistortion1", "tangentalDistortion2",
    "focalLengthU", "focalLengthV", "centerPointU", "centerPointV",
)  # fmt: skip
_TRANSFORM: Final = ("x", "y", "z", "r11", "r12", "r13", "r21", "r22", "r23", "r31", "r32", "r33")
_RX_PI: Final = np.diag([1.0, -1.0, -1.0])  # rotation by pi about the camera x axis
_UNITS_PER_PX: Final = 64.0  # Qualisys sensor units per pixel
_FORMAT: Final = "Qualisys .qca.txt"


def read_qca(path: PathLike) -> CameraRig:
    """Read a Qualisys ``.qca.txt`` calibration exactly as Pose2Sim 0.10.49 converts it.

    Follows Pose2Sim's ``read_qca`` + ``calib_qca_fun`` (binning factor 1). Cameras whose ``model``
    contains neither "video" nor "none" are skipped, as Pose2Sim does. Per camera: name = ``serial``;
    size = (right - left + 1, bottom - top + 1) of ``fov_video``; k1, k2, p1, p2 =
    radialDistortion1/2, tangentalDistortion1/2 **divided by 64**, as Pose2Sim does (kept so that
    results match Pose2Sim's); fu, fv = focalLengthU/V / 64; cu = centerPointU / 64 - left,
    cv = centerPointV / 64 - top (Qualisys sensor units are 1/64 px). ``skew`` and
    ``radialDistortion3`` are ignored, as Pose2Sim does.

    Convention: ``transform`` is the camera pose in the world, centre (x, y, z) in millimetres and
    M = [[r11, r12, r13], [r21, r22, r23], [r31, r32, r33]]. Pose2Sim takes R = M.T and inverts it,
    so camera-from-world is R_wc = M, t = -M @ centre; then it rotates the camera by pi about its
    x axis: R = Rx(pi) @ R_wc, t = Rx(pi) @ t. Cameras are sorted in natural order of their names
    ("cam2" before "cam10"), as Pose2Sim does.

    Args:
        path: ``.qca.txt`` file (XML).

    Returns:
        The rig, world in metres, cameras in natural name order.

    Raises:
        CalibrationError: missing/unparseable file, missing element or attribute, invalid camera.
    """
    try:
        root = ET.fromstring(read_text(path))
    except ET.ParseError as exc:
        raise calib_error(path, f"not valid XML ({exc})") from None
    cameras: list[Camera] = []
    for i, tag in enumerate(root.findall("cameras/camera")):
        name = tag.get("serial") or f"camera {i}"
        if not any(m in tag.get("model", "").lower() for m in ("video", "none")):
            log.info("%s: skipping non-video camera %r (model=%r)", path, name, tag.get("model"))
            continue
        left, top, right, bottom = _attrs(path, tag, name, "fov_video", _FOV)
        k1, k2, p1, p2, fu, fv, u0, v0 = _attrs(path, tag, name, "intrinsic", _INTRINSIC)
        tr = _attrs(path, tag, name, "transform", _TRANSFORM)
        s = _UNITS_PER_PX
        K = np.array([[fu / s, 0.0, u0 / s - left], [0.0, fv / s, v0 / s - top], [0.0, 0.0, 1.0]])
        M = np.array(tr[3:]).reshape(3, 3)
        t = _RX_PI @ (-M @ (np.array(tr[:3]) / 1000.0))
        size = (int(round(right - left + 1)), int(round(bottom - top + 1)))
        cameras.append(make_camera(path, name, K, np.array([k1, k2, p1, p2]) / s, _RX_PI @ M, t, size))
    cameras.sort(key=lambda c: natural_key(c.name))
    return make_rig(path, cameras, "qca")


def _attrs(path: PathLike, tag: ET.Element, name: str, child: str, keys: tuple[str, ...]) -> list[float]:
    node = tag.find(child)
    if node is None:
        raise calib_error(path, f"camera {name!r} has no <{child}>")
    try:
        return [float(node.attrib[k]) for k in keys]
    except KeyError as exc:
        raise calib_error(path, f"camera {name!r}: <{child}> has no attribute {exc.args[0]!r}") from None
    except ValueError as exc:
        raise calib_error(path, f"camera {name!r}: <{child}> has a non-numeric attribute ({exc})") from None


def write_qca(rig: CameraRig, path: PathLike) -> None:
    """Write a rig as a Qualisys ``.qca.txt`` file: the exact inverse of :func:`read_qca`.

    Per camera: ``serial`` = name, ``model="none"``; ``fov_video`` (and ``fov_marker``, ``*_max``)
    = left 0, top 0, right width - 1, bottom height - 1; ``intrinsic`` focalLengthU/V = 64 fx, fy,
    centerPointU/V = 64 cx, cy, radialDistortion1/2 = 64 k1, k2, tangentalDistortion1/2 = 64 p1, p2
    (Pose2Sim's scaling, see :func:`read_qca`), skew 0, radialDistortion3 0, sensorMin/Max from the
    window; ``transform`` x, y, z = camera centre in millimetres, r11..r33 = Rx(pi) @ R. The
    ``focallength`` attribute (millimetres, needs the pixel pitch) is not written; no reader here
    or in Pose2Sim uses it. Floats are written with Python's repr, so the round trip is exact up
    to one rounding of the centre. Pose2Sim's own ``calib_toml_to_qca`` writes right = width (one
    pixel too many for its reader); this writer does not.

    Convention: as :func:`read_qca`; the centre is solved from t, ``-1000 M^-1 Rx(pi) t``, so
    that reading gives t back even for a rotation that is orthonormal to only a few digits.

    Args:
        rig: cameras to write. :func:`read_qca` returns them in natural name order: a rig in
            another order (e.g. "cam_10" before "cam_2") is written, with a warning, and read back
            re-sorted.
        path: destination ``.qca.txt`` file (written atomically).

    Raises:
        CalibrationError: the format cannot hold a camera: skewed K, or k3 != 0 (Pose2Sim ignores
            radialDistortion3).
        CalibrationWriteError: the file cannot be written (also an OutputError).
    """
    check_no_skew(path, rig, _FORMAT)
    for cam in rig:
        if cam.dist[4] != 0:
            raise calib_error(
                path,
                f"{_FORMAT} as Pose2Sim reads it holds k1, k2, p1, p2 only "
                f"(camera {cam.name!r} has k3 = {float(cam.dist[4])!r}); use mvcap JSON or TOML",
            )
    natural = sorted(rig.names, key=natural_key)
    if list(rig.names) != natural:
        log.warning("%s: cameras are read back from a .qca.txt in natural name order: %s", path, ", ".join(natural))
    root = ET.Element("calibration", {"source": "mvcap", "type": "regular"})
    ET.SubElement(root, "results", {"min-max-diff": "0.", "std-dev": "0."})
    cams = ET.SubElement(root, "cameras")
    s = _UNITS_PER_PX
    for cam in rig:
        w, h = cam.size
        tag = ET.SubElement(cams, "camera", {"active": "1", "model": "none", "serial": cam.name, "viewrotation": "0"})
        window = {"left": "0", "top": "0", "right": str(w - 1), "bottom": str(h - 1)}
        for child in ("fov_marker", "fov_marker_max", "fov_video", "fov_video_max"):
            ET.SubElement(tag, child, window)
        M = _RX_PI @ cam.R
        centre_mm = -1000.0 * np.linalg.solve(M, _RX_PI @ cam.t)
        transform = dict(zip(_TRANSFORM, [*centre_mm, *M.reshape(-1)], strict=True))
        ET.SubElement(tag, "transform", {k: repr(float(v)) for k, v in transform.items()})
        k1, k2, p1, p2, _ = cam.dist
        K = cam.K
        values = (k1, k2, p1, p2, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        intrinsic = {k: repr(float(v) * s) for k, v in zip(_INTRINSIC, values, strict=True)}
        intrinsic.update(
            radialDistortion3="0.0", skew="0.0", sensorMinU="0.0", sensorMinV="0.0",
            sensorMaxU=repr((w - 1) * s), sensorMaxV=repr((h - 1) * s),
        )  # fmt: skip
        ET.SubElement(tag, "intrinsic", intrinsic)
    ET.indent(root)
    text = "<?xml version='1.0' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"
    write_text_atomic(path, text)
    log.debug("wrote %d cameras (qca) to %s", len(rig), path)
