"""Calibration files: the one entry point that reads and writes them, whatever the format.

Formats (one module each in :mod:`calibration.formats`, reader and writer side by side): mvcap
JSON (ours, lossless), Qualisys ``.qca.txt`` (as Pose2Sim converts it), Pose2Sim/anipose TOML,
VoxelPose Shelf/Campus JSON, CMU Panoptic JSON, TUM ``P*.txt`` projection matrices (a folder) and
4D Association JSON. Every reader returns a :class:`~calibration.camera.CameraRig` in OpenCV
convention (``x_cam = R @ x_world + t``), world in metres, cameras in file order unless stated.
Every failure (missing file, unparseable text, missing key, wrong shape, invalid camera, what a
format cannot hold) raises :class:`~core.errors.CalibrationError` with a one-line message that
starts with the file path; writers write atomically (temporary file, then rename).

Example:
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from calibration.camera import Camera
    >>> cam = Camera("c0", np.diag([1000.0, 1000.0, 1.0]), np.zeros(5), np.eye(3), np.zeros(3), (640, 480))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rig.json"
    >>> write_json(CameraRig((cam,)), path)
    >>> read_calibration(path).names
    ('c0',)
    >>> _ = write_calibration(CameraRig((cam,)), path.with_suffix(".toml"))
    >>> detect_format(path.with_suffix(".toml")).value, read_calibration(path.with_suffix(".toml")).names
    ('toml', ('c0',))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from calibration.camera import CameraRig
from calibration.formats.common import CalibrationWriteError, PathLike, calib_error, load_json
from calibration.formats.detect import (
    SUPPORTED_FORMATS,
    CalibrationFormat,
    detect_format,
    format_for_target,
    parse_format,
)
from calibration.formats.fourda import read_4da_json, write_4da_json
from calibration.formats.mvcap_json import DEFAULT_WORLD_FRAME, FORMAT_NAME, FORMAT_VERSION, read_json, write_json
from calibration.formats.panoptic import read_panoptic_json, write_panoptic_json
from calibration.formats.qualisys import read_qca, write_qca
from calibration.formats.toml import read_toml, write_toml
from calibration.formats.tum import parse_tum, read_tum_projections, tum_files, write_tum_projections
from calibration.formats.voxelpose import (
    parse_voxelpose,
    read_voxelpose_json,
    voxelpose_cameras,
    write_voxelpose_json,
)

__all__ = [
    "DEFAULT_WORLD_FRAME", "FORMAT_NAME", "FORMAT_VERSION", "SUPPORTED_FORMATS", "CalibrationFormat",
    "CalibrationWriteError", "detect_format", "format_for_target", "parse_format",
    "read_4da_json", "read_calibration", "read_json", "read_panoptic_json", "read_qca", "read_toml",
    "read_tum_projections", "read_voxelpose_json",
    "write_4da_json", "write_calibration", "write_json", "write_panoptic_json", "write_qca", "write_toml",
    "write_tum_projections", "write_voxelpose_json",
]  # fmt: skip

_READERS: Final = {
    CalibrationFormat.QUALISYS: read_qca,
    CalibrationFormat.TOML: read_toml,
    CalibrationFormat.MVCAP: read_json,
    CalibrationFormat.PANOPTIC: read_panoptic_json,
    CalibrationFormat.FOURDA: read_4da_json,
}  # the formats that store image sizes; VoxelPose and TUM need one given
_WRITERS: Final = {
    CalibrationFormat.QUALISYS: write_qca,
    CalibrationFormat.TOML: write_toml,
    CalibrationFormat.VOXELPOSE: write_voxelpose_json,
    CalibrationFormat.PANOPTIC: write_panoptic_json,
}  # the writers that take (rig, path) only


def read_calibration(
    path: PathLike,
    size: tuple[int, int] | None = None,
    *,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    names: Sequence[str] | None = None,
) -> CameraRig:
    """Read any supported calibration, chosen by :func:`detect_format`.

    ``.qca.txt`` -> :func:`read_qca`; ``.toml`` -> :func:`read_toml`; ``.json`` -> :func:`read_json`
    (``"format"`` key), :func:`read_panoptic_json` (``"cameras"`` list with ``"distCoef"``; HD
    cameras), :func:`read_voxelpose_json` (cameras with ``"fx"``, or a
    ``"customized_sequence"`` list of them) or :func:`read_4da_json` (cameras
    with ``"RT"``); a folder -> its ``*.txt`` TUM projection matrices in natural name order.

    Image sizes are never guessed: a camera of a format that stores none (VoxelPose, TUM) takes
    ``sizes[name]``, else ``size``, else this raises. A format that stores sizes keeps its own
    (``size`` is ignored), and an entry of ``sizes`` must agree with it.

    Args:
        path: calibration file (or TUM folder).
        size: (width, height) px of every camera, used only by formats that do not store it.
        sizes: (width, height) px by camera name, e.g. the run config's ``image_size`` keys;
            entries for cameras that are not read are ignored.
        names: cameras to read, in this order; None reads every camera, in file order.

    Returns:
        The rig, world in metres.

    Raises:
        CalibrationError: unknown format (the message lists the supported ones), any reader
            error, a camera of ``names`` absent from the file, a VoxelPose or TUM camera without a
            size, or an entry of ``sizes`` that differs from the size the file stores.
    """
    sizes = {} if sizes is None else {str(k): (int(v[0]), int(v[1])) for k, v in sizes.items()}
    fmt = detect_format(path)
    if fmt is CalibrationFormat.VOXELPOSE:
        data = voxelpose_cameras(load_json(path, Mapping))
        _check_names(path, [str(k) for k in data], names)
        rig = parse_voxelpose(path, data, lambda cam, _guess: sizes.get(cam, size), names)
        return rig if names is None else rig.subset(names)
    if fmt is CalibrationFormat.TUM:
        by_stem = {p.stem: p for p in tum_files(path)}
        _check_names(path, list(by_stem), names)
        return parse_tum([by_stem[n] for n in names or by_stem], lambda cam: sizes.get(cam, size))
    return _select(path, _READERS[fmt](path), sizes, names)


def write_calibration(
    rig: CameraRig,
    path: PathLike,
    fmt: str | None = None,
    *,
    drop_distortion: bool = False,
    world_frame: str = DEFAULT_WORLD_FRAME,
) -> list[Path]:
    """Write a rig in any format :func:`read_calibration` reads, chosen by ``fmt`` or the file name.

    Without ``fmt``: ``*.qca.txt`` -> Qualisys, ``*.toml`` -> TOML, ``*.json`` -> mvcap JSON, an
    existing folder -> TUM. With ``fmt`` (a :class:`CalibrationFormat` name or alias), the name
    must still be one :func:`read_calibration` recognises: ``.json`` for mvcap, voxelpose,
    panoptic and 4da, ``.qca.txt``, ``.toml``, and a folder (no suffix) for tum.

    Args:
        rig: cameras to write.
        path: destination file, or folder for TUM.
        fmt: format name; None picks it from ``path``.
        drop_distortion: for the pinhole-only formats (4da, tum), write K, R, t of distorted
            cameras instead of refusing them.
        world_frame: world frame description (mvcap JSON only).

    Returns:
        The files written (one, or one per camera for TUM).

    Raises:
        CalibrationError: unknown format or a file name that does not match it (the message lists
            the valid formats), or what the format cannot hold (see each ``write_*``).
        CalibrationWriteError: a file cannot be written (also an OutputError).
    """
    target = Path(path)
    chosen = format_for_target(target, fmt)
    if chosen is CalibrationFormat.TUM:
        return write_tum_projections(rig, target, drop_distortion=drop_distortion)
    if chosen is CalibrationFormat.MVCAP:
        write_json(rig, target, world_frame)
    elif chosen is CalibrationFormat.FOURDA:
        write_4da_json(rig, target, drop_distortion=drop_distortion)
    else:
        _WRITERS[chosen](rig, target)
    return [target]


def _check_names(path: PathLike, available: Sequence[str], names: Sequence[str] | None) -> None:
    """Raise if a requested camera is not in the file (the message lists the file's cameras)."""
    missing = [n for n in names or () if n not in available]
    if missing:
        raise calib_error(path, f"no camera(s) {missing} in the calibration; it has {list(available)}")
    if names is not None and len(set(names)) != len(names):
        raise calib_error(path, f"camera names must be unique; got {list(names)}")


def _select(
    path: PathLike, rig: CameraRig, sizes: Mapping[str, tuple[int, int]], names: Sequence[str] | None
) -> CameraRig:
    """The ``names`` subset of a rig read from a format that stores sizes, checked against ``sizes``."""
    _check_names(path, rig.names, names)
    rig = rig if names is None else rig.subset(names)
    for cam in rig:
        given = sizes.get(cam.name)
        if given is not None and tuple(given) != tuple(cam.size):
            raise calib_error(
                path,
                f"camera {cam.name!r} is {cam.size[0]}x{cam.size[1]} in the calibration but its image_size is "
                f"{given[0]}x{given[1]}; remove image_size or fix the calibration",
            )
    return rig
