"""4D Association calibration JSON (Zhang et al., CVPR 2020; ``calibration.json``).

``{"<name>": {"K": 9 (row-major, px), "RT": 12 (row-major 3x4 [R | t], camera-from-world,
metres), "imgSize": [w, h]}, ...}``. The format stores no lens distortion.

Convention: x_cam = R @ X + t (OpenCV).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Final

import numpy as np

from calibration.camera import CameraRig
from calibration.formats.common import (
    PathLike,
    check_no_distortion,
    get_floats,
    get_size,
    load_json,
    make_camera,
    make_rig,
    write_text_atomic,
)

__all__ = ["read_4da_json", "write_4da_json"]

log = logging.getLogger(__name__)

_FORMAT: Final = "4D Association JSON"


def read_4da_json(path: PathLike) -> CameraRig:
    """Read a 4D Association calibration (Zhang et al., CVPR 2020; ``calibration.json``).

    Per camera key (used as names, file order): ``K`` (9, row-major, px), ``RT`` (12, row-major
    3x4 [R | t], camera-from-world, metres), ``imgSize`` [w, h]. The format stores no distortion.

    Args:
        path: JSON file.

    Returns:
        The rig, world in metres.

    Raises:
        CalibrationError: missing/unparseable file, missing key, wrong shape.
    """
    data, cameras = load_json(path, Mapping), []
    for name, cam in data.items():
        where = f"camera {name!r}"
        K = get_floats(cam, "K", path, where, (9,)).reshape(3, 3)
        RT = get_floats(cam, "RT", path, where, (12,)).reshape(3, 4)
        size = get_size(cam, "imgSize", path, where)
        cameras.append(make_camera(path, name, K, np.zeros(5), RT[:, :3], RT[:, 3], size))
    return make_rig(path, cameras, "4d-association")


def write_4da_json(rig: CameraRig, path: PathLike, *, drop_distortion: bool = False) -> None:
    """Write a rig as a 4D Association calibration that :func:`read_4da_json` reads back exactly.

    One key per camera (its name), in rig order: ``K`` (9, row-major), ``RT`` (12, row-major
    [R | t], metres), ``imgSize`` [w, h]. Floats are written with repr.

    Args:
        rig: cameras to write.
        path: destination ``.json`` file (written atomically).
        drop_distortion: write the pinhole part of distorted cameras (the format holds no
            distortion) instead of refusing them.

    Raises:
        CalibrationError: a camera has distortion and ``drop_distortion`` is False.
        CalibrationWriteError: the file cannot be written (also an OutputError).
    """
    rig = check_no_distortion(path, rig, _FORMAT, drop_distortion)
    doc = {
        cam.name: {
            "K": cam.K.reshape(-1).tolist(),
            "RT": np.hstack([cam.R, cam.t[:, None]]).reshape(-1).tolist(),
            "imgSize": [int(v) for v in cam.size],
        }
        for cam in rig
    }
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")
    log.debug("wrote %d cameras (4d-association) to %s", len(rig), path)
