"""The mvcap calibration JSON: this project's own format, lossless.

``{"format": "mvcap-calibration", "version": 1, "world_frame": str, "cameras": [{"name",
"size": [w, h], "K": 3x3, "dist": 5 (k1, k2, p1, p2, k3), "R": 3x3, "t": 3 (metres)}]}``.

Convention: x_cam = R @ x_world + t (camera-from-world, OpenCV), world in metres as described by
``world_frame``; cameras in file order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Final

from calibration.camera import CameraRig
from calibration.formats.common import (
    PathLike,
    calib_error,
    get_floats,
    get_key,
    get_size,
    load_json,
    make_camera,
    make_rig,
    write_text_atomic,
)

__all__ = ["DEFAULT_WORLD_FRAME", "FORMAT_NAME", "FORMAT_VERSION", "read_json", "write_json"]

log = logging.getLogger(__name__)

FORMAT_NAME: Final = "mvcap-calibration"
FORMAT_VERSION: Final = 1
DEFAULT_WORLD_FRAME: Final = "right-handed, z up, metres; origin and axes as set by the calibration"


def write_json(rig: CameraRig, path: PathLike, world_frame: str = DEFAULT_WORLD_FRAME) -> None:
    """Write a rig in the mvcap JSON format (atomically: temporary file, then rename).

    ``{"format": "mvcap-calibration", "version": 1, "world_frame": str, "cameras": [{"name",
    "size": [w, h], "K": 3x3, "dist": 5 (k1, k2, p1, p2, k3), "R": 3x3, "t": 3 (metres)}]}``,
    camera-from-world. Floats are written with Python's repr, so :func:`read_json` is exact.

    Args:
        rig: cameras to write, in rig order.
        path: destination ``.json`` file.
        world_frame: description of the world frame (handedness, up axis, origin, units).

    Raises:
        CalibrationError: the file cannot be written (a
            :class:`~calibration.formats.common.CalibrationWriteError`, also an OutputError).
    """
    doc = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "world_frame": world_frame,
        "cameras": [
            {"name": c.name, "size": [int(c.size[0]), int(c.size[1])], "K": c.K.tolist(),
             "dist": c.dist.tolist(), "R": c.R.tolist(), "t": c.t.tolist()}
            for c in rig
        ],
    }  # fmt: skip
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")
    log.debug("wrote %d cameras to %s", len(rig), path)


def read_json(path: PathLike) -> CameraRig:
    """Read a rig written by :func:`write_json` (format "mvcap-calibration", version 1).

    Args:
        path: JSON file.

    Returns:
        The rig, world in metres, cameras in file order.

    Raises:
        CalibrationError: missing/unparseable file, other format or version, missing key, wrong shape.
    """
    data = load_json(path, Mapping)
    if get_key(data, "format", path, "file") != FORMAT_NAME:
        raise calib_error(path, f"format must be {FORMAT_NAME!r}; got {data['format']!r}")
    if get_key(data, "version", path, "file") != FORMAT_VERSION:
        raise calib_error(path, f"unsupported version {data['version']!r}; this reader supports {FORMAT_VERSION}")
    entries = get_key(data, "cameras", path, "file")
    if not isinstance(entries, list):
        raise calib_error(path, "'cameras' must be a list")
    log.debug("%s: world frame: %s", path, data.get("world_frame", "?"))
    cameras = []
    for i, cam in enumerate(entries):
        name = str(get_key(cam, "name", path, f"camera #{i}"))
        where = f"camera {name!r}"
        K = get_floats(cam, "K", path, where, (9,)).reshape(3, 3)
        R = get_floats(cam, "R", path, where, (9,)).reshape(3, 3)
        dist, t = get_floats(cam, "dist", path, where, (5,)), get_floats(cam, "t", path, where, (3,))
        cameras.append(make_camera(path, name, K, dist, R, t, get_size(cam, "size", path, where)))
    return make_rig(path, cameras, "mvcap")
