"""VoxelPose-style Shelf/Campus calibration JSON (Tu et al., ECCV 2020; ``calibration_shelf.json``).

``{"<name>": {"R": 3x3, "T": [[x], [y], [z]], "fx", "fy", "cx", "cy", "k": [[k1], [k2], [k3]],
"p": [[p1], [p2]]}, ...}``: R camera-from-world, T the camera centre in the world in
**millimetres**, intrinsics in px. No image size and no skew are stored. Faster-VoxelPose's custom
sequences (Ye et al., ECCV 2022) put the same camera objects in a list,
``{"customized_sequence": [{...}, ...]}``; its cameras are named "0", "1", ... in list order.

Convention: x_cam = R @ (X - T), hence t = -R @ T / 1000 (metres).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

import numpy as np

from calibration.camera import CameraRig
from calibration.formats.common import (
    PathLike,
    calib_error,
    check_no_skew,
    get_floats,
    load_json,
    make_camera,
    make_rig,
    write_text_atomic,
)

__all__ = ["parse_voxelpose", "read_voxelpose_json", "voxelpose_cameras", "write_voxelpose_json"]

log = logging.getLogger(__name__)

_FORMAT: Final = "VoxelPose JSON"
SEQUENCE_KEY: Final = "customized_sequence"
"""The top-level key of Faster-VoxelPose's list layout."""


def voxelpose_cameras(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The camera objects of a parsed VoxelPose JSON, by name, in file order.

    The Shelf/Campus layout is returned as it is; Faster-VoxelPose's ``{"customized_sequence":
    [cam, ...]}`` gives ``{"0": cam, "1": cam, ...}``.

    Example:
        >>> list(voxelpose_cameras({"customized_sequence": [{"fx": 1.0}, {"fx": 2.0}]}))
        ['0', '1']
    """
    cams = data.get(SEQUENCE_KEY) if len(data) == 1 else None
    return {str(i): cam for i, cam in enumerate(cams)} if isinstance(cams, list) else data


def read_voxelpose_json(path: PathLike, size: tuple[int, int] | None = None) -> CameraRig:
    """Read a VoxelPose-style Shelf/Campus calibration (Tu et al., ECCV 2020; ``calibration_shelf.json``).

    Per camera key ("0".."N", used as names, file order; or Faster-VoxelPose's
    ``"customized_sequence"`` list, cameras named "0".."N" in list order): ``R`` (3x3, camera-from-world), ``T``
    (3, camera centre in the world, **millimetres**), ``fx``, ``fy``, ``cx``, ``cy`` (px), ``k``
    (3: k1, k2, k3) and ``p`` (2: p1, p2).

    Convention: x_cam = R @ (X - T), hence t = -R @ T / 1000 (metres).

    Args:
        path: JSON file.
        size: (width, height) px of every camera, which the file does not store (Shelf 1032x776,
            Campus 360x288). None guesses (2 cx, 2 cy) and logs a warning; only dataset tools may
            rely on that: :func:`~calibration.io.read_calibration`, which runs use, refuses to guess.

    Returns:
        The rig, world in metres.

    Raises:
        CalibrationError: missing/unparseable file, missing key, wrong shape.
    """
    data = load_json(path, Mapping)
    if size is None:
        log.warning("%s: no image size given; guessing (2 cx, 2 cy) for every camera", path)
    return parse_voxelpose(path, voxelpose_cameras(data), lambda _name, guess: size or guess)


def parse_voxelpose(
    path: PathLike,
    data: Mapping[str, Any],
    size_of: Callable[[str, tuple[int, int]], tuple[int, int] | None],
    names: Collection[str] | None = None,
) -> CameraRig:
    """VoxelPose cameras of the parsed JSON ``data`` (see :func:`read_voxelpose_json`), file order.

    Args:
        path: the file ``data`` came from, for messages.
        data: the parsed top-level JSON object.
        size_of: ``size_of(name, (round(2 cx), round(2 cy)))`` gives each camera's (width,
            height) px; None raises.
        names: cameras to keep (others are skipped); None keeps all.

    Returns:
        The rig, world in metres, file order.

    Raises:
        CalibrationError: missing key, wrong shape, or a camera without a size.
    """
    cameras = []
    for name, cam in data.items():
        if names is not None and name not in names:
            continue
        where = f"camera {name!r}"
        fx, fy, cx, cy = (get_floats(cam, key, path, where, (1,))[0] for key in ("fx", "fy", "cx", "cy"))
        k, p = get_floats(cam, "k", path, where, (3,)), get_floats(cam, "p", path, where, (2,))
        R = get_floats(cam, "R", path, where, (9,)).reshape(3, 3)
        t = -R @ get_floats(cam, "T", path, where, (3,)) / 1000.0
        cam_size = size_of(str(name), (int(round(2 * cx)), int(round(2 * cy))))
        if cam_size is None:
            raise calib_error(
                path,
                f"VoxelPose calibrations store no image size and none is given for {where}; "
                "set image_size = [w, h] on each [[cameras]] table of the config (--size WxH on the command line)",
            )
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        cameras.append(make_camera(path, name, K, [k[0], k[1], p[0], p[1], k[2]], R, t, cam_size))
    return make_rig(path, cameras, "voxelpose")


def write_voxelpose_json(rig: CameraRig, path: PathLike) -> None:
    """Write a rig in the VoxelPose layout that :func:`read_voxelpose_json` reads back.

    One key per camera (its name), in rig order, laid out as the Shelf/Campus files: ``R``
    (3x3), ``T`` ([[x], [y], [z]], camera centre, millimetres), ``fx``, ``fy``, ``cx``, ``cy``,
    ``k`` ([[k1], [k2], [k3]]), ``p`` ([[p1], [p2]]). Floats are written with repr.

    Convention: T = -1000 R^-1 t (solved, not R.T @ t), so that reading gives t back to rounding
    even for an R that is orthonormal to a few digits only (the Shelf file's 6).

    Args:
        rig: cameras to write. The image sizes are not stored: read the file back with
            ``size=`` (or ``sizes=`` / ``image_size`` in a config).
        path: destination ``.json`` file (written atomically).

    Raises:
        CalibrationError: a camera has a skewed K (the format stores fx, fy, cx, cy only).
        CalibrationWriteError: the file cannot be written (also an OutputError).
    """
    check_no_skew(path, rig, _FORMAT)
    doc = {}
    for cam in rig:
        k1, k2, p1, p2, k3 = cam.dist.tolist()
        T_mm = -1000.0 * np.linalg.solve(cam.R, cam.t)
        doc[cam.name] = {
            "R": cam.R.tolist(), "T": T_mm.reshape(3, 1).tolist(),
            "fx": float(cam.K[0, 0]), "fy": float(cam.K[1, 1]), "cx": float(cam.K[0, 2]), "cy": float(cam.K[1, 2]),
            "k": [[k1], [k2], [k3]], "p": [[p1], [p2]],
        }  # fmt: skip
    write_text_atomic(path, json.dumps(doc, indent=2) + "\n")
    log.info("%s: VoxelPose calibrations store no image size; read it back with size=%s", path, rig[0].size)
