"""Pose2Sim / anipose calibration TOML, read and written.

One table per camera: ``name``, ``size`` [w, h] px, ``matrix`` (3x3 K, px), ``distortions``
(k1, k2, p1, p2[, k3]), ``rotation`` (Rodrigues vector, radians), ``translation`` (metres),
``fisheye``; then ``[metadata]``. This is what Pose2Sim 0.10.49's ``toml_write`` and aniposelib's
``CameraGroup.dump`` produce.

Convention: x_cam = Rodrigues(rotation) @ x_world + translation (Pose2Sim ``computeP``, OpenCV).
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from typing import Final

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from calibration.camera import CameraRig
from calibration.formats.common import (
    PathLike,
    calib_error,
    get_floats,
    get_size,
    make_camera,
    make_rig,
    read_text,
    write_text_atomic,
)

__all__ = ["read_toml", "write_toml"]

log = logging.getLogger(__name__)

_SKIPPED_TABLES: Final = frozenset({"metadata", "capture_volume", "charuco", "checkerboard"})
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_FORMAT: Final = "Pose2Sim/anipose TOML"


def read_toml(path: PathLike) -> CameraRig:
    """Read a Pose2Sim / anipose calibration TOML.

    One table per camera: ``name`` (defaults to the table key), ``size`` [w, h] px, ``matrix``
    (3x3 K, px), ``distortions`` (4 or 5: k1, k2, p1, p2[, k3]), ``rotation`` (Rodrigues vector, 3),
    ``translation`` (3, metres), ``fisheye``. The tables ``metadata``, ``capture_volume``,
    ``charuco`` and ``checkerboard`` and non-table keys are skipped, as in Pose2Sim's
    ``retrieve_calib_params``. Cameras keep file order.

    Convention: x_cam = Rodrigues(rotation) @ x_world + translation (Pose2Sim ``computeP``, OpenCV).

    Args:
        path: ``.toml`` file.

    Returns:
        The rig, world in metres.

    Raises:
        CalibrationError: missing/unparseable file, missing key, wrong shape, or ``fisheye = true``
            (the fisheye model is not supported yet).
    """
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise calib_error(path, f"not valid TOML ({exc})") from None
    cameras = []
    for key, section in data.items():
        if key in _SKIPPED_TABLES or not isinstance(section, Mapping):
            continue
        name = str(section.get("name", key))
        where = f"camera {name!r}"
        if section.get("fisheye", False):
            raise calib_error(path, f"{where} is fisheye; the fisheye model is not supported yet")
        K = get_floats(section, "matrix", path, where, (9,)).reshape(3, 3)
        dist = get_floats(section, "distortions", path, where, (4, 5))
        R = cv2.Rodrigues(get_floats(section, "rotation", path, where, (3,)))[0]
        t = get_floats(section, "translation", path, where, (3,))
        cameras.append(make_camera(path, name, K, dist, R, t, get_size(section, "size", path, where)))
    return make_rig(path, cameras, "toml")


def write_toml(rig: CameraRig, path: PathLike) -> None:
    """Write a rig as a Pose2Sim / anipose calibration TOML that :func:`read_toml` reads back.

    Layout of Pose2Sim 0.10.49's ``toml_write``: a ``[<name>]`` table per camera in rig order
    with ``name``, ``size`` [w, h] (integers), ``matrix`` (the full K, skew included; Pose2Sim's
    writer would drop the skew), ``distortions`` (4 numbers k1, k2, p1, p2 when k3 = 0, as
    Pose2Sim writes, else 5, which Pose2Sim and anipose pass to OpenCV as they are),
    ``rotation`` (rotation vector of R), ``translation`` (t, metres),
    ``fisheye = false``; then ``[metadata]`` with ``adjusted = false`` and ``error = 0.0``.
    Floats are written with Python's repr (valid TOML), so everything but R is exact; R goes
    through a rotation vector and back, about 1e-15 for an orthonormal R. The vector comes from
    scipy's ``Rotation.as_rotvec``: ``cv2.Rodrigues`` (matrix to vector), which Pose2Sim uses, errs
    by up to 2e-5 (0.02 px at f = 1000 px) for rotation angles within 1e-5 rad of pi. A rotation that is
    orthonormal to a few digits only (e.g. printed with 6 digits) comes back as the nearest
    rotation; the largest change is logged as a warning when above 1e-9.

    Args:
        rig: cameras to write, in rig order (kept on reading).
        path: destination ``.toml`` file (written atomically).

    Raises:
        CalibrationError: a camera is named like a table the readers skip ("metadata",
            "capture_volume", "charuco", "checkerboard").
        CalibrationWriteError: the file cannot be written (also an OutputError).
    """
    blocks = []
    for cam in rig:
        if cam.name in _SKIPPED_TABLES:
            raise calib_error(path, f"{_FORMAT} cannot hold a camera named {cam.name!r}: readers skip that table")
        rvec = Rotation.from_matrix(cam.R).as_rotvec()  # cv2.Rodrigues errs by up to 2e-5 near pi
        change = float(np.abs(cv2.Rodrigues(rvec)[0] - cam.R).max())
        if change > 1e-9:
            log.warning(
                "%s: camera %r: R is not orthonormal; its Rodrigues vector changes it by %.2g", path, cam.name, change
            )
        dist = cam.dist if cam.dist[4] != 0 else cam.dist[:4]
        blocks.append(
            f"[{_key(cam.name)}]\n"
            f"name = {_string(cam.name)}\n"
            f"size = [ {int(cam.size[0])}, {int(cam.size[1])}]\n"
            f"matrix = [ {', '.join(_floats(row) for row in cam.K)}]\n"
            f"distortions = {_floats(dist)}\n"
            f"rotation = {_floats(rvec)}\n"
            f"translation = {_floats(cam.t)}\n"
            "fisheye = false\n"
        )
    blocks.append("[metadata]\nadjusted = false\nerror = 0.0\n")
    write_text_atomic(path, "\n".join(blocks))
    log.debug("wrote %d cameras (toml) to %s", len(rig), path)


def _floats(values: np.ndarray) -> str:
    """A TOML array of floats, each written with repr (exact)."""
    return "[ " + ", ".join(repr(float(v)) for v in values) + "]"


def _string(text: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped.

    Example:
        >>> print(_string('a"b\\\\c'))
        "a\\"b\\\\c"
    """
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(name: str) -> str:
    """A TOML table key: bare when it can be, else quoted."""
    return name if _BARE_KEY.fullmatch(name) else _string(name)
