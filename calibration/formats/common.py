"""Helpers shared by the calibration format modules: parsing, checks and atomic writing.

Every failure is a one-line :class:`~core.errors.CalibrationError` that starts with the file path;
a file the operating system refuses to write raises :class:`CalibrationWriteError`, which is both a
CalibrationError and an :class:`~core.errors.OutputError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibration.camera import Camera, CameraRig
from core.errors import CalibrationError, OutputError

__all__ = [
    "CalibrationWriteError",
    "PathLike",
    "as_floats",
    "calib_error",
    "check_no_distortion",
    "check_no_skew",
    "get_floats",
    "get_key",
    "get_size",
    "load_json",
    "make_camera",
    "make_rig",
    "natural_key",
    "read_text",
    "write_text_atomic",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


class CalibrationWriteError(CalibrationError, OutputError):
    """A calibration file cannot be written (disk full, read-only folder, missing folder).

    The message is one line, ``"<path>: cannot write (<reason>)"``; the :class:`OSError` is
    chained as ``__cause__``. Caught by ``except CalibrationError`` and ``except OutputError``.
    """


def calib_error(path: PathLike, message: str) -> CalibrationError:
    """A one-line CalibrationError ``"<path>: <message>"`` (whitespace runs collapsed).

    Example:
        >>> str(calib_error("rig.json", "camera 'a'\\n has no K"))
        "rig.json: camera 'a' has no K"
    """
    return CalibrationError(f"{os.fspath(path)}: {' '.join(str(message).split())}")


def read_text(path: PathLike) -> str:
    """The UTF-8 text of a calibration file.

    Raises:
        CalibrationError: the file is missing, unreadable or not UTF-8.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise calib_error(path, f"cannot read calibration file ({reason})") from None


def load_json(path: PathLike, kind: type = object) -> Any:
    """Parse a JSON file whose top level is an instance of ``kind``.

    Raises:
        CalibrationError: unreadable file, invalid JSON, or another top-level type.
    """
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise calib_error(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, kind):
        raise calib_error(path, f"expected a JSON object at the top level; got {type(data).__name__}")
    return data


def get_key(mapping: Any, key: str, path: PathLike, where: str) -> Any:
    """``mapping[key]``, or a CalibrationError naming ``where`` (e.g. "camera 'c1'")."""
    if not isinstance(mapping, Mapping):
        raise calib_error(path, f"{where} must be an object; got {type(mapping).__name__}")
    if key not in mapping:
        raise calib_error(path, f"{where} has no {key!r}")
    return mapping[key]


def as_floats(value: Any, path: PathLike, what: str, sizes: Sequence[int]) -> np.ndarray:
    """Flatten ``value`` to a finite float64 vector whose length is one of ``sizes``.

    Raises:
        CalibrationError: non-numeric, wrong count or non-finite values.
    """
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise calib_error(path, f"{what} must be numbers; got {str(value)[:60]}") from None
    if arr.size not in sizes:
        raise calib_error(path, f"{what} must have {' or '.join(map(str, sizes))} numbers; got {arr.size}")
    if not np.isfinite(arr).all():
        raise calib_error(path, f"{what} must be finite")
    return arr


def get_floats(obj: Any, key: str, path: PathLike, where: str, sizes: Sequence[int]) -> np.ndarray:
    """``obj[key]`` as a flat float64 vector (nesting is ignored: (3, 1) and (3,) both give (3,))."""
    return as_floats(get_key(obj, key, path, where), path, f"{where} {key}", sizes)


def get_size(obj: Any, key: str, path: PathLike, where: str) -> tuple[int, int]:
    """``obj[key]`` as an image size (width, height) px, rounded to integers."""
    w, h = get_floats(obj, key, path, where, (2,))
    return int(round(w)), int(round(h))


def make_camera(path: PathLike, name: str, K: Any, dist: Any, R: Any, t: Any, size: tuple[int, int]) -> Camera:
    """A :class:`Camera`, its validation errors prefixed with the file path."""
    try:
        return Camera(str(name), K, dist, R, t, size)
    except CalibrationError as exc:
        raise calib_error(path, str(exc)) from None


def make_rig(path: PathLike, cameras: list[Camera], fmt: str) -> CameraRig:
    """A :class:`CameraRig` in the given order, its validation errors prefixed with the file path."""
    try:
        rig = CameraRig(tuple(cameras))
    except CalibrationError as exc:
        raise calib_error(path, str(exc)) from None
    log.debug("read %d cameras (%s) from %s: %s", len(rig), fmt, path, ", ".join(rig.names))
    return rig


def natural_key(name: str) -> list[int | str]:
    """Pose2Sim's ``natural_sort_key``: 'cam2' < 'cam10', case-insensitive.

    Example:
        >>> sorted(["cam_10", "Cam_2", "cam_1"], key=natural_key)
        ['cam_1', 'Cam_2', 'cam_10']
    """
    return [int(c) if c.isdigit() else c.lower() for c in re.split(r"(\d+)", name)]


def check_no_skew(path: PathLike, rig: CameraRig, fmt: str) -> None:
    """Refuse a K with skew (K[0, 1] != 0) for a format that stores fx, fy, cx, cy only.

    Raises:
        CalibrationError: the first camera with skew, named in one line.
    """
    for cam in rig:
        if cam.K[0, 1] != 0:
            raise calib_error(
                path,
                f"{fmt} cannot hold a skewed K (camera {cam.name!r} has K[0,1] = {float(cam.K[0, 1])!r}); "
                "use mvcap JSON",
            )


def check_no_distortion(path: PathLike, rig: CameraRig, fmt: str, drop: bool) -> CameraRig:
    """The rig for a pinhole-only format: refused if distorted, or with distortion zeroed when ``drop``.

    Args:
        path: destination, for the message.
        rig: cameras to write.
        fmt: format name, for the message.
        drop: write the pinhole part (K, R, t) and discard the distortion (logged as a warning).

    Returns:
        ``rig`` itself when nothing is distorted, else a copy with ``dist`` = 0 (only when ``drop``).

    Raises:
        CalibrationError: a camera has distortion and ``drop`` is False.
    """
    distorted = [cam for cam in rig if cam.has_distortion]
    if not distorted:
        return rig
    if not drop:
        cam = distorted[0]
        raise calib_error(
            path,
            f"{fmt} cannot hold lens distortion (camera {cam.name!r} has dist = {np.round(cam.dist, 6).tolist()}); "
            "drop it explicitly (drop_distortion=True, --drop-distortion) or use another format",
        )
    log.warning(
        "%s: %s cannot hold lens distortion; dropped it for %d camera(s): %s",
        path, fmt, len(distorted), ", ".join(c.name for c in distorted),
    )  # fmt: skip
    return CameraRig(tuple(Camera(c.name, c.K, np.zeros(5), c.R, c.t, c.size) for c in rig))


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    The temporary file (``.<name>.<random>.tmp``) is fsync-ed before the rename and removed on any
    failure, so ``path`` holds either its old content or all of ``text``, never a part. It is
    created with mode 0666 minus the umask, as ``open()`` would.

    Raises:
        CalibrationWriteError: the folder is missing or read-only, the disk is full, ...;
            ``"<path>: cannot write (<reason>)"`` with the OSError chained.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    data = text.encode("utf-8")
    created = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        created = True
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        if created:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise CalibrationWriteError(f"{os.fspath(path)}: cannot write ({exc.strerror or exc})") from exc
