"""TUM Campus/Shelf projection matrices (``P0.txt``, ...; Belagiannis et al., CVPR 2014).

One text file per camera holding a 3x4 matrix P (comma or whitespace separated) from world
metres to undistorted pixels; the file stem is the camera name. The format stores no image size
and no lens distortion.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from calibration.camera import CameraRig
from calibration.formats.common import (
    CalibrationWriteError,
    PathLike,
    as_floats,
    calib_error,
    check_no_distortion,
    make_camera,
    make_rig,
    natural_key,
    read_text,
    write_text_atomic,
)

__all__ = ["parse_tum", "read_tum_projections", "tum_files", "write_tum_projections"]

log = logging.getLogger(__name__)

_SAFE_STEM: Final = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*")
_FORMAT: Final = "TUM projection matrices"


def read_tum_projections(paths: Sequence[PathLike], size: tuple[int, int]) -> CameraRig:
    """Read TUM Campus/Shelf projection matrices (``P0.txt``, ...; Belagiannis et al., CVPR 2014).

    Each file holds a 3x4 matrix P (comma or whitespace separated) from world metres to undistorted
    pixels. P = lambda K [R | t] is split with ``cv2.decomposeProjectionMatrix`` (RQ decomposition,
    Hartley & Zisserman §6.2.4); no distortion. Names are the file stems ("P0").

    Convention: K is scaled so that K[2, 2] = 1 and its diagonal is made positive; the sign of P is
    chosen so that det(R) = +1, so points in front of the camera have positive depth (H&Z §6.2.3).

    Args:
        paths: one file per camera, in rig order.
        size: (width, height) px of every camera (Shelf 1032x776, Campus 360x288).

    Returns:
        The rig, world in metres.

    Raises:
        CalibrationError: missing/unparseable file, not 12 numbers, singular matrix.
    """
    return parse_tum(paths, lambda _name: size)


def parse_tum(paths: Sequence[PathLike], size_of: Callable[[str], tuple[int, int] | None]) -> CameraRig:
    """TUM cameras of ``paths`` (see :func:`read_tum_projections`), sizes from ``size_of(name)``.

    Raises:
        CalibrationError: as :func:`read_tum_projections`, or ``size_of`` gives None.
    """
    cameras = []
    for path in paths:
        numbers = re.split(r"[,\s]+", read_text(path).strip())
        P = as_floats(numbers, path, "projection matrix", (12,)).reshape(3, 4)
        if abs(np.linalg.det(P[:, :3])) < 1e-12:
            raise calib_error(path, "projection matrix has a singular left 3x3 block")
        K, R, c_h = cv2.decomposeProjectionMatrix(P)[:3]
        K = K / K[2, 2]
        D = np.diag(np.sign(np.diag(K)))
        K, R = np.triu(K @ D), D @ R
        R = -R if np.linalg.det(R) < 0 else R
        t = -R @ (c_h[:3, 0] / c_h[3, 0])
        name = Path(path).stem
        size = size_of(name)
        if size is None:
            raise calib_error(
                path,
                (
                    "TUM projection matrices store no image size and none is given; set image_size = [w, h] "
                    "on each [[cameras]] table of the config (--size WxH on the command line)"
                ),
            )
        cameras.append(make_camera(path, name, K, np.zeros(5), R, t, size))
    return make_rig(", ".join(os.fspath(p) for p in paths), cameras, "tum")


def tum_files(folder: PathLike) -> list[Path]:
    """The ``*.txt`` files of a folder of TUM projection matrices, in natural name order (P2 < P10).

    Raises:
        CalibrationError: the folder cannot be listed or holds no ``.txt`` file.
    """
    try:
        files = [p for p in Path(folder).iterdir() if p.suffix == ".txt" and p.is_file()]
    except OSError as exc:
        raise calib_error(folder, f"cannot list the folder ({exc.strerror or exc})") from None
    if not files:
        raise calib_error(folder, "no projection matrix files (*.txt) in the folder")
    return sorted(files, key=lambda p: natural_key(p.name))


def write_tum_projections(rig: CameraRig, folder: PathLike, *, drop_distortion: bool = False) -> list[Path]:
    """Write one ``<name>.txt`` projection matrix P = K [R | t] per camera into ``folder``.

    Three lines of four comma-separated floats (repr, as ``P0.txt`` of the TUM datasets); the
    folder is created if missing (not its parents). :func:`tum_files` lists them back in natural
    name order, which is the rig's order only when the names sort that way ("cam_2" before
    "cam_10"); passing the returned paths to :func:`read_tum_projections` keeps the rig order.
    K, R and t come back from the RQ decomposition to about 1e-12 relative.

    Args:
        rig: cameras to write. Image sizes are not stored (the reader takes one ``size``); a rig
            whose cameras differ in size is written with a warning.
        folder: destination folder. It must hold no other ``.txt`` file, which a reader of the
            folder would take for a camera.
        drop_distortion: write the pinhole part of distorted cameras (the format holds no
            distortion) instead of refusing them.

    Returns:
        The files written, in rig order.

    Raises:
        CalibrationError: a camera has distortion and ``drop_distortion`` is False, a name cannot
            be a file name, or the folder holds other ``.txt`` files.
        CalibrationWriteError: the folder or a file cannot be written (also an OutputError).
    """
    folder = Path(folder)
    rig = check_no_distortion(folder, rig, _FORMAT, drop_distortion)
    for cam in rig:
        if not _SAFE_STEM.fullmatch(cam.name):
            raise calib_error(
                folder, f"{_FORMAT} are named by file: camera name {cam.name!r} must be letters, digits, _ + - ."
            )
    targets = [folder / f"{cam.name}.txt" for cam in rig]
    if folder.is_dir():
        others = sorted({p.name for p in folder.glob("*.txt")} - {p.name for p in targets})
        if others:
            raise calib_error(
                folder, f"holds other .txt files ({', '.join(others[:3])}) a reader would take for cameras"
            )
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise CalibrationWriteError(f"{os.fspath(folder)}: cannot write ({exc.strerror or exc})") from exc
    if len({cam.size for cam in rig}) > 1:
        log.warning("%s: cameras differ in size, which TUM files do not store; the reader takes one size", folder)
    for cam, target in zip(rig, targets, strict=True):
        text = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in cam.P)
        write_text_atomic(target, text)
    log.debug("wrote %d projection matrices to %s", len(rig), folder)
    return targets
