"""Sanity checks on a calibrated rig, run before a capture starts.

A calibration can be valid camera by camera and still be wrong as a rig: two cameras pasted with
the same pose make every cross-view match between them degenerate (one person is lost in every
frame). These checks turn such a file into a one-line :class:`~core.errors.CalibrationError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

from calibration.camera import CameraRig
from calibration.io import read_calibration
from core.errors import CalibrationError

__all__ = ["MIN_CAMERA_SEPARATION_M", "check_rig", "load_rig"]

MIN_CAMERA_SEPARATION_M: Final = 0.01


def check_rig(
    rig: CameraRig, source: str | os.PathLike[str], min_separation_m: float = MIN_CAMERA_SEPARATION_M
) -> None:
    """Reject a rig whose camera centres nearly coincide (a copy-pasted camera).

    Args:
        rig: cameras to check (usually the run's subset of the calibration).
        source: calibration file the rig was read from; it starts the error message.
        min_separation_m: smallest allowed distance between two camera centres
            (:attr:`~calibration.camera.Camera.center`), metres; 0 disables the check.

    Raises:
        CalibrationError: two camera centres lie closer than ``min_separation_m``; the message
            names the file, the closest such pair and their distance in millimetres.
        ValueError: ``min_separation_m`` is negative or not finite.

    Example:
        >>> from calibration.camera import Camera
        >>> K = np.diag([1000.0, 1000.0, 1.0])
        >>> cams = [Camera(n, K, np.zeros(5), np.eye(3), np.array([x, 0.0, 0.0]), (640, 480))
        ...         for n, x in (("a", 0.0), ("b", 0.005))]
        >>> check_rig(CameraRig(tuple(cams)), "rig.json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        core.errors.CalibrationError: rig.json: cameras 'a' and 'b' are 5.0 mm apart (centres must be ...
    """
    if not (math.isfinite(min_separation_m) and min_separation_m >= 0):
        raise ValueError(f"min_separation_m must be a finite number >= 0; got {min_separation_m}")
    if len(rig) < 2 or min_separation_m == 0:
        return
    centers = np.stack([cam.center for cam in rig])  # (C, 3) metres
    dist = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=-1)  # (C, C) metres
    dist[np.tril_indices(len(rig))] = np.inf  # each unordered pair once, no self-pairs
    close = dist < min_separation_m
    if not close.any():
        return
    i, j = np.unravel_index(np.argmin(dist), dist.shape)
    others = int(close.sum()) - 1
    more = f"; {others} more pair(s) too close" if others else ""
    raise CalibrationError(
        f"{os.fspath(source)}: cameras {rig[int(i)].name!r} and {rig[int(j)].name!r} are "
        f"{dist[i, j] * 1e3:.1f} mm apart (centres must be at least {min_separation_m * 1e3:g} mm apart; "
        f"a copy-pasted camera?){more}"
    )


def load_rig(
    path: str | os.PathLike[str],
    *,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    names: Sequence[str] | None = None,
    min_cameras: int = 2,
) -> CameraRig:
    """The rig a run uses: :func:`~calibration.io.read_calibration`, then at least ``min_cameras``
    cameras and :func:`check_rig`.

    Args:
        path: calibration file.
        sizes: (width, height) px by camera name for formats that store none (config ``image_size``).
        names: cameras to read, in this order; None reads every camera.
        min_cameras: fewest cameras: 2 for 3D from 2D views, 1 when a camera delivers depth (RGB-D).

    Raises:
        CalibrationError: an unreadable or inconsistent calibration, fewer than ``min_cameras`` cameras, or two
            cameras less than ``MIN_CAMERA_SEPARATION_M`` apart; the message names the file.
    """
    rig = read_calibration(path, sizes=sizes, names=names)
    if len(rig) < min_cameras:
        raise CalibrationError(
            f"{os.fspath(path)}: need at least {min_cameras} camera{'s' if min_cameras > 1 else ''}"
            f"{' (or one RGB-D camera: [[cameras]] depth = ...)' if min_cameras > 1 else ''}; got {len(rig)}"
        )
    check_rig(rig, path)
    return rig
