"""Which calibration format a name, an existing file or a destination path stands for."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Final

from calibration.formats.common import PathLike, calib_error, load_json

__all__ = ["SUPPORTED_FORMATS", "CalibrationFormat", "detect_format", "format_for_target", "parse_format"]

SUPPORTED_FORMATS: Final = (
    "mvcap JSON (.json), Qualisys (.qca.txt), Pose2Sim/anipose (.toml), "
    "VoxelPose, CMU Panoptic or 4D Association (.json), a folder of TUM projection matrices (*.txt)"
)


class CalibrationFormat(StrEnum):
    """Calibration file formats, by the name ``--to`` and ``fmt=`` take."""

    MVCAP = "mvcap"
    QUALISYS = "qualisys"
    TOML = "toml"
    VOXELPOSE = "voxelpose"
    PANOPTIC = "panoptic"
    FOURDA = "4da"
    TUM = "tum"


_ALIASES: Final = {"json": "mvcap", "qca": "qualisys", "pose2sim": "toml", "anipose": "toml", "4d-association": "4da"}
_SUFFIX: Final = {
    CalibrationFormat.MVCAP: ".json",
    CalibrationFormat.VOXELPOSE: ".json",
    CalibrationFormat.PANOPTIC: ".json",
    CalibrationFormat.FOURDA: ".json",
    CalibrationFormat.QUALISYS: ".qca.txt",
    CalibrationFormat.TOML: ".toml",
}  # TUM: a folder


def _valid() -> str:
    return ", ".join(f.value for f in CalibrationFormat)


def parse_format(name: str) -> CalibrationFormat:
    """The format called ``name`` (case-insensitive; aliases json, qca, pose2sim, anipose, 4d-association).

    Raises:
        CalibrationError: unknown name; the message lists the valid ones.

    Example:
        >>> parse_format("QCA"), parse_format("4da")
        (<CalibrationFormat.QUALISYS: 'qualisys'>, <CalibrationFormat.FOURDA: '4da'>)
    """
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return CalibrationFormat(key)
    except ValueError:
        raise calib_error(name, f"unknown calibration format; valid formats: {_valid()}") from None


def detect_format(path: PathLike) -> CalibrationFormat:
    """The format of an existing calibration: by suffix and, for JSON, by content; a folder is TUM.

    JSON: a string ``"format"`` key -> mvcap; a ``"cameras"`` list whose first entry has
    ``"distCoef"`` -> panoptic; a first camera object with ``"fx"`` (also inside a
    ``"customized_sequence"`` list) -> voxelpose, with ``"RT"`` -> 4da.

    Raises:
        CalibrationError: unreadable JSON or unknown format (the message lists the supported ones).
    """
    name = Path(path).name.lower()
    if Path(path).is_dir():
        return CalibrationFormat.TUM
    if name.endswith(".qca.txt"):
        return CalibrationFormat.QUALISYS
    if name.endswith(".toml"):
        return CalibrationFormat.TOML
    if name.endswith(".json"):
        data = load_json(path)
        if isinstance(data, Mapping):
            cams, first = data.get("cameras"), next(iter(data.values()), None)
            if isinstance(data.get("format"), str):
                return CalibrationFormat.MVCAP
            if isinstance(cams, list) and cams and isinstance(cams[0], Mapping) and "distCoef" in cams[0]:
                return CalibrationFormat.PANOPTIC
            if isinstance(first, list) and list(data) == ["customized_sequence"]:  # Faster-VoxelPose's list
                first = first[0] if first else None
            if isinstance(first, Mapping) and "fx" in first:
                return CalibrationFormat.VOXELPOSE
            if isinstance(first, Mapping) and "RT" in first:
                return CalibrationFormat.FOURDA
        raise calib_error(path, f"unrecognised calibration JSON; supported formats: {SUPPORTED_FORMATS}")
    raise calib_error(path, f"unknown calibration file type; supported formats: {SUPPORTED_FORMATS}")


def format_for_target(path: PathLike, fmt: str | None = None) -> CalibrationFormat:
    """The format to write at ``path``: ``fmt`` if given, else from the name.

    Without ``fmt``: ``*.qca.txt`` -> qualisys, ``*.toml`` -> toml, ``*.json`` -> mvcap, an
    existing folder -> tum. Either way the name must be one that :func:`detect_format`
    recognises as that format: ``.json`` for mvcap, voxelpose, panoptic and 4da, ``.qca.txt``,
    ``.toml``, and a name without a .json, .toml or .txt suffix (a folder) for tum.

    Raises:
        CalibrationError: unknown ``fmt``, a name that tells no format, or one that does not
            match ``fmt``; the message lists the valid formats or the expected name.

    Example:
        >>> format_for_target("rig.toml").value, format_for_target("shelf.json", "voxelpose").value
        ('toml', 'voxelpose')
    """
    target = Path(path)
    name = target.name.lower()
    if fmt is not None:
        chosen = parse_format(fmt)
    elif name.endswith(".qca.txt"):
        chosen = CalibrationFormat.QUALISYS
    elif name.endswith(".toml"):
        chosen = CalibrationFormat.TOML
    elif name.endswith(".json"):
        chosen = CalibrationFormat.MVCAP
    elif target.is_dir():
        chosen = CalibrationFormat.TUM
    else:
        raise calib_error(path, f"cannot tell the calibration format from the name; name one of: {_valid()}")
    expected = _SUFFIX.get(chosen)
    if expected is None:
        wrong, what = target.suffix.lower() in (".json", ".toml", ".txt"), "a folder name without a file suffix"
    else:
        wrong, what = not name.endswith(expected), f"a name ending in {expected}"
    if wrong:
        raise calib_error(path, f"a {chosen.value} calibration needs {what}, so that read_calibration recognises it")
    return chosen
