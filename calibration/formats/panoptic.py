"""CMU Panoptic calibration JSON (``calibration_<sequence>.json``, Panoptic Studio toolbox; Joo et al. 2015).

``{"cameras": [{name, type, resolution [w, h], panel, node, K (3x3), distCoef (5: k1, k2, p1, p2,
k3), R (3x3), t ([[x], [y], [z]], CENTIMETRES)}]}``; the toolbox's ``projectPoints`` uses OpenCV's
model.

Convention: x_cam = R @ X + t (camera-from-world), t in centimetres in the file, metres here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
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

__all__ = ["read_panoptic_json", "write_panoptic_json"]

log = logging.getLogger(__name__)

_PANEL_NODE: Final = re.compile(r"(\d+)_(\d+)")


def read_panoptic_json(path: PathLike, names: Sequence[str] | None = None, kind: str | None = "hd") -> CameraRig:
    """Read a CMU Panoptic calibration (``calibration_<sequence>.json``, Panoptic Studio toolbox).

    ``{"cameras": [{name, type, resolution [w, h], K (3x3), distCoef (5: k1, k2, p1, p2, k3),
    R (3x3), t (3x1, CENTIMETRES)}]}``; the toolbox's ``projectPoints`` uses OpenCV's model.

    Convention: x_cam = R @ X + t (camera-from-world), t converted to metres.

    Args:
        path: JSON file.
        names: cameras to keep, in this order (e.g. ["00_03", "00_06"]); None keeps all, file order.
        kind: camera ``type`` to keep ("hd", "vga", "kinect-color"); None keeps every type.

    Returns:
        The rig, world in metres.

    Raises:
        CalibrationError: missing/unparseable file, missing key, wrong shape, unknown name.
    """
    entries = get_key(load_json(path, Mapping), "cameras", path, "file")
    if not isinstance(entries, list):
        raise calib_error(path, "'cameras' must be a list")
    by_name = {}
    for i, cam in enumerate(entries):
        name = str(get_key(cam, "name", path, f"camera #{i}"))
        if kind is None or cam.get("type") == kind:
            by_name[name] = cam
    cameras = []
    for name in list(by_name) if names is None else names:
        if name not in by_name:
            raise calib_error(path, f"no camera {name!r} of type {kind!r}")
        cam, where = by_name[name], f"camera {name!r}"
        K = get_floats(cam, "K", path, where, (9,)).reshape(3, 3)
        dist = get_floats(cam, "distCoef", path, where, (5,))
        R = get_floats(cam, "R", path, where, (9,)).reshape(3, 3)
        t = get_floats(cam, "t", path, where, (3,)) / 100.0
        cameras.append(make_camera(path, name, K, dist, R, t, get_size(cam, "resolution", path, where)))
    return make_rig(path, cameras, "panoptic")


def write_panoptic_json(rig: CameraRig, path: PathLike, kind: str = "hd") -> None:
    """Write a rig as a CMU Panoptic calibration that :func:`read_panoptic_json` reads back.

    ``{"calibDataSource": "mvcap", "cameras": [...]}`` with, per camera in rig order: ``name``,
    ``type`` (``kind``), ``resolution`` [w, h], ``panel`` and ``node`` (only for names
    "<panel>_<node>" such as "00_03", as the dome's), ``K`` (3x3), ``distCoef`` (5), ``R`` (3x3),
    ``t`` ([[x], [y], [z]], centimetres = 100 t). Floats are written with repr.

    Args:
        rig: cameras to write.
        path: destination ``.json`` file (written atomically).
        kind: the ``type`` of every camera. :func:`~calibration.io.read_calibration` reads only
            "hd" cameras from Panoptic files, so other types are read by
            :func:`read_panoptic_json` with ``kind=`` only.

    Raises:
        CalibrationWriteError: the file cannot be written (also an OutputError).
    """
    cameras = []
    for cam in rig:
        entry: dict[str, object] = {"name": cam.name, "type": kind, "resolution": [int(v) for v in cam.size]}
        match = _PANEL_NODE.fullmatch(cam.name)
        if match:
            entry.update(panel=int(match[1]), node=int(match[2]))
        entry.update(
            K=cam.K.tolist(), distCoef=cam.dist.tolist(), R=cam.R.tolist(), t=(100.0 * cam.t).reshape(3, 1).tolist()
        )
        cameras.append(entry)
    write_text_atomic(path, json.dumps({"calibDataSource": "mvcap", "cameras": cameras}, indent=2) + "\n")
    log.debug("wrote %d cameras (panoptic) to %s", len(rig), path)
