"""Calibration file readers and writer: the only place that parses or writes calibration files.

Formats: mvcap JSON (ours), Qualisys ``.qca.txt`` (as Pose2Sim converts it), Pose2Sim/anipose TOML,
VoxelPose Shelf/Campus JSON, CMU Panoptic JSON, TUM ``P*.txt`` projection matrices and
4D Association JSON. Every reader returns a :class:`~calibration.camera.CameraRig` in OpenCV
convention (``x_cam = R @ x_world + t``), world in metres, cameras in file order unless stated.
Every failure (missing file, unparseable text, missing key, wrong shape, invalid camera) raises
:class:`~core.errors.CalibrationError` with a one-line message that starts with the file path.

Example:
    >>> import tempfile, pathlib
    >>> cam = Camera("c0", np.diag([1000.0, 1000.0, 1.0]), np.zeros(5), np.eye(3), np.zeros(3), (640, 480))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rig.json"
    >>> write_json(CameraRig((cam,)), path)
    >>> read_calibration(path).names
    ('c0',)
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from calibration.camera import Camera, CameraRig
from core.errors import CalibrationError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "read_4da_json",
    "read_calibration",
    "read_json",
    "read_panoptic_json",
    "read_qca",
    "read_toml",
    "read_tum_projections",
    "read_voxelpose_json",
    "write_json",
]

log = logging.getLogger(__name__)

FORMAT_NAME: Final = "mvcap-calibration"
FORMAT_VERSION: Final = 1
DEFAULT_WORLD_FRAME: Final = "right-handed, z up, metres; origin and axes as set by the calibration"
SUPPORTED_FORMATS: Final = (
    "mvcap JSON (.json), Qualisys (.qca.txt), Pose2Sim/anipose (.toml), "
    "VoxelPose, CMU Panoptic or 4D Association (.json)"
)
_TOML_SKIP: Final = frozenset({"metadata", "capture_volume", "charuco", "checkerboard"})
_QCA_FOV: Final = ("left", "top", "right", "bottom")
_QCA_INTRINSIC: Final = (
    "radialDistortion1", "radialDistortion2", "tangentalDistortion1", "tangentalDistortion2",
    "focalLengthU", "focalLengthV", "centerPointU", "centerPointV",
)  # fmt: skip
_QCA_TRANSFORM: Final = ("x", "y", "z", "r11", "r12", "r13", "r21", "r22", "r23", "r31", "r32", "r33")
_RX_PI: Final = np.diag([1.0, -1.0, -1.0])  # rotation by pi about the camera x axis

PathLike = str | os.PathLike[str]


def _error(path: PathLike, message: str) -> CalibrationError:
    """A one-line CalibrationError naming the file."""
    return CalibrationError(f"{os.fspath(path)}: {' '.join(str(message).split())}")


def _read_text(path: PathLike) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _error(path, f"cannot read calibration file ({reason})") from None


def _load_json(path: PathLike, kind: type = object) -> Any:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise _error(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, kind):
        raise _error(path, f"expected a JSON object at the top level; got {type(data).__name__}")
    return data


def _get(mapping: Any, key: str, path: PathLike, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise _error(path, f"{where} must be an object; got {type(mapping).__name__}")
    if key not in mapping:
        raise _error(path, f"{where} has no {key!r}")
    return mapping[key]


def _floats(value: Any, path: PathLike, what: str, sizes: Sequence[int]) -> np.ndarray:
    """Flatten ``value`` to a finite float64 vector whose length is one of ``sizes``."""
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise _error(path, f"{what} must be numbers; got {str(value)[:60]}") from None
    if arr.size not in sizes:
        raise _error(path, f"{what} must have {' or '.join(map(str, sizes))} numbers; got {arr.size}")
    if not np.isfinite(arr).all():
        raise _error(path, f"{what} must be finite")
    return arr


def _num(obj: Any, key: str, path: PathLike, where: str, sizes: Sequence[int]) -> np.ndarray:
    """``obj[key]`` as a flat float64 vector (nesting is ignored: (3, 1) and (3,) both give (3,))."""
    return _floats(_get(obj, key, path, where), path, f"{where} {key}", sizes)


def _size(obj: Any, key: str, path: PathLike, where: str) -> tuple[int, int]:
    w, h = _num(obj, key, path, where, (2,))
    return int(round(w)), int(round(h))


def _camera(path: PathLike, name: str, K: Any, dist: Any, R: Any, t: Any, size: tuple[int, int]) -> Camera:
    try:
        return Camera(str(name), K, dist, R, t, size)
    except CalibrationError as exc:
        raise _error(path, str(exc)) from None


def _rig(path: PathLike, cameras: list[Camera], fmt: str) -> CameraRig:
    try:
        rig = CameraRig(tuple(cameras))
    except CalibrationError as exc:
        raise _error(path, str(exc)) from None
    log.debug("read %d cameras (%s) from %s: %s", len(rig), fmt, path, ", ".join(rig.names))
    return rig


def _natural_key(name: str) -> list[int | str]:
    """Pose2Sim's ``natural_sort_key``: 'cam2' < 'cam10', case-insensitive."""
    return [int(c) if c.isdigit() else c.lower() for c in re.split(r"(\d+)", name)]


def read_qca(path: PathLike) -> CameraRig:
    """Read a Qualisys ``.qca.txt`` calibration exactly as Pose2Sim 0.10.49 converts it.

    Follows Pose2Sim's ``read_qca`` + ``calib_qca_fun`` (binning factor 1). Cameras whose ``model``
    contains neither "video" nor "none" are skipped, as Pose2Sim does. Per camera: name = ``serial``;
    size = (right - left + 1, bottom - top + 1) of ``fov_video``; k1, k2, p1, p2 =
    radialDistortion1/2, tangentalDistortion1/2 **divided by 64**, as Pose2Sim does (kept so that
    results match Pose2Sim's); fu, fv = focalLengthU/V / 64; cu = centerPointU / 64 - left,
    cv = centerPointV / 64 - top (Qualisys sensor units are 1/64 px).

    Convention: ``transform`` is the camera pose in the world, centre (x, y, z) in millimetres and
    M = [[r11, r12, r13], [r21, r22, r23], [r31, r32, r33]]. Pose2Sim takes R = M.T and inverts it,
    so camera-from-world is R_wc = M, t = -M @ centre; then it rotates the camera by pi about its
    x axis: R = Rx(pi) @ R_wc, t = Rx(pi) @ t. Cameras are sorted in natural order of their names
    ("cam2" before "cam10"), as Pose2Sim does.

    Args:
        path: ``.qca.txt`` file (XML).

    Returns:
        The rig, world in metres, cameras in natural name order.

    Raises:
        CalibrationError: missing/unparseable file, missing element or attribute, invalid camera.
    """
    try:
        root = ET.fromstring(_read_text(path))
    except ET.ParseError as exc:
        raise _error(path, f"not valid XML ({exc})") from None
    cameras: list[Camera] = []
    for i, tag in enumerate(root.findall("cameras/camera")):
        name = tag.get("serial") or f"camera {i}"
        if not any(m in tag.get("model", "").lower() for m in ("video", "none")):
            log.info("%s: skipping non-video camera %r (model=%r)", path, name, tag.get("model"))
            continue
        left, top, right, bottom = _qca_attrs(path, tag, name, "fov_video", _QCA_FOV)
        k1, k2, p1, p2, fu, fv, u0, v0 = _qca_attrs(path, tag, name, "intrinsic", _QCA_INTRINSIC)
        tr = _qca_attrs(path, tag, name, "transform", _QCA_TRANSFORM)
        K = np.array([[fu / 64, 0.0, u0 / 64 - left], [0.0, fv / 64, v0 / 64 - top], [0.0, 0.0, 1.0]])
        M = np.array(tr[3:]).reshape(3, 3)
        t = _RX_PI @ (-M @ (np.array(tr[:3]) / 1000.0))
        size = (int(round(right - left + 1)), int(round(bottom - top + 1)))
        cameras.append(_camera(path, name, K, np.array([k1, k2, p1, p2]) / 64, _RX_PI @ M, t, size))
    cameras.sort(key=lambda c: _natural_key(c.name))
    return _rig(path, cameras, "qca")


def _qca_attrs(path: PathLike, tag: ET.Element, name: str, child: str, keys: tuple[str, ...]) -> list[float]:
    node = tag.find(child)
    if node is None:
        raise _error(path, f"camera {name!r} has no <{child}>")
    try:
        return [float(node.attrib[k]) for k in keys]
    except KeyError as exc:
        raise _error(path, f"camera {name!r}: <{child}> has no attribute {exc.args[0]!r}") from None
    except ValueError as exc:
        raise _error(path, f"camera {name!r}: <{child}> has a non-numeric attribute ({exc})") from None


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
        data = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise _error(path, f"not valid TOML ({exc})") from None
    cameras = []
    for key, section in data.items():
        if key in _TOML_SKIP or not isinstance(section, Mapping):
            continue
        name = str(section.get("name", key))
        where = f"camera {name!r}"
        if section.get("fisheye", False):
            raise _error(path, f"{where} is fisheye; the fisheye model is not supported yet")
        K = _num(section, "matrix", path, where, (9,)).reshape(3, 3)
        dist = _num(section, "distortions", path, where, (4, 5))
        R = cv2.Rodrigues(_num(section, "rotation", path, where, (3,)))[0]
        t = _num(section, "translation", path, where, (3,))
        cameras.append(_camera(path, name, K, dist, R, t, _size(section, "size", path, where)))
    return _rig(path, cameras, "toml")


def read_voxelpose_json(path: PathLike, size: tuple[int, int] | None = None) -> CameraRig:
    """Read a VoxelPose-style Shelf/Campus calibration (Tu et al., ECCV 2020; ``calibration_shelf.json``).

    Per camera key ("0".."N", used as names, file order): ``R`` (3x3, camera-from-world), ``T``
    (3, camera centre in the world, **millimetres**), ``fx``, ``fy``, ``cx``, ``cy`` (px), ``k``
    (3: k1, k2, k3) and ``p`` (2: p1, p2).

    Convention: x_cam = R @ (X - T), hence t = -R @ T / 1000 (metres).

    Args:
        path: JSON file.
        size: (width, height) px of every camera, which the file does not store (Shelf 1032x776,
            Campus 360x288). None guesses (2 cx, 2 cy) and logs a warning; only dataset tools may
            rely on that: :func:`read_calibration`, which runs use, refuses to guess.

    Returns:
        The rig, world in metres.

    Raises:
        CalibrationError: missing/unparseable file, missing key, wrong shape.
    """
    data = _load_json(path, Mapping)
    if size is None:
        log.warning("%s: no image size given; guessing (2 cx, 2 cy) for every camera", path)
    return _read_voxelpose(path, data, lambda _name, guess: size or guess)


def _read_voxelpose(
    path: PathLike,
    data: Mapping[str, Any],
    size_of: Callable[[str, tuple[int, int]], tuple[int, int] | None],
    names: Collection[str] | None = None,
) -> CameraRig:
    """VoxelPose cameras of ``data`` (see :func:`read_voxelpose_json`), file order.

    ``size_of(name, (round(2 cx), round(2 cy)))`` gives each camera's (width, height) px; None
    raises. Cameras not in ``names`` (when given) are skipped.
    """
    cameras = []
    for name, cam in data.items():
        if names is not None and name not in names:
            continue
        where = f"camera {name!r}"
        fx, fy, cx, cy = (_num(cam, key, path, where, (1,))[0] for key in ("fx", "fy", "cx", "cy"))
        k, p = _num(cam, "k", path, where, (3,)), _num(cam, "p", path, where, (2,))
        R = _num(cam, "R", path, where, (9,)).reshape(3, 3)
        t = -R @ _num(cam, "T", path, where, (3,)) / 1000.0
        cam_size = size_of(str(name), (int(round(2 * cx)), int(round(2 * cy))))
        if cam_size is None:
            raise _error(
                path,
                f"VoxelPose calibrations store no image size and none is given for {where}; "
                "set image_size = [w, h] on each [[cameras]] table of the config",
            )
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        cameras.append(_camera(path, name, K, [k[0], k[1], p[0], p[1], k[2]], R, t, cam_size))
    return _rig(path, cameras, "voxelpose")


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
    entries = _get(_load_json(path, Mapping), "cameras", path, "file")
    if not isinstance(entries, list):
        raise _error(path, "'cameras' must be a list")
    by_name = {}
    for i, cam in enumerate(entries):
        name = str(_get(cam, "name", path, f"camera #{i}"))
        if kind is None or cam.get("type") == kind:
            by_name[name] = cam
    cameras = []
    for name in list(by_name) if names is None else names:
        if name not in by_name:
            raise _error(path, f"no camera {name!r} of type {kind!r}")
        cam, where = by_name[name], f"camera {name!r}"
        K = _num(cam, "K", path, where, (9,)).reshape(3, 3)
        dist = _num(cam, "distCoef", path, where, (5,))
        R = _num(cam, "R", path, where, (9,)).reshape(3, 3)
        t = _num(cam, "t", path, where, (3,)) / 100.0
        cameras.append(_camera(path, name, K, dist, R, t, _size(cam, "resolution", path, where)))
    return _rig(path, cameras, "panoptic")


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
    cameras = []
    for path in paths:
        numbers = re.split(r"[,\s]+", _read_text(path).strip())
        P = _floats(numbers, path, "projection matrix", (12,)).reshape(3, 4)
        if abs(np.linalg.det(P[:, :3])) < 1e-12:
            raise _error(path, "projection matrix has a singular left 3x3 block")
        K, R, c_h = cv2.decomposeProjectionMatrix(P)[:3]
        K = K / K[2, 2]
        D = np.diag(np.sign(np.diag(K)))
        K, R = np.triu(K @ D), D @ R
        R = -R if np.linalg.det(R) < 0 else R
        t = -R @ (c_h[:3, 0] / c_h[3, 0])
        cameras.append(_camera(path, Path(path).stem, K, np.zeros(5), R, t, size))
    return _rig(", ".join(os.fspath(p) for p in paths), cameras, "tum")


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
    data, cameras = _load_json(path, Mapping), []
    for name, cam in data.items():
        where = f"camera {name!r}"
        K = _num(cam, "K", path, where, (9,)).reshape(3, 3)
        RT = _num(cam, "RT", path, where, (12,)).reshape(3, 4)
        size = _size(cam, "imgSize", path, where)
        cameras.append(_camera(path, name, K, np.zeros(5), RT[:, :3], RT[:, 3], size))
    return _rig(path, cameras, "4d-association")


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
        CalibrationError: the file cannot be written.
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
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise _error(path, f"cannot write calibration file ({exc.strerror or exc})") from None
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
    data = _load_json(path, Mapping)
    if _get(data, "format", path, "file") != FORMAT_NAME:
        raise _error(path, f"format must be {FORMAT_NAME!r}; got {data['format']!r}")
    if _get(data, "version", path, "file") != FORMAT_VERSION:
        raise _error(path, f"unsupported version {data['version']!r}; this reader supports {FORMAT_VERSION}")
    entries = _get(data, "cameras", path, "file")
    if not isinstance(entries, list):
        raise _error(path, "'cameras' must be a list")
    log.debug("%s: world frame: %s", path, data.get("world_frame", "?"))
    cameras = []
    for i, cam in enumerate(entries):
        name = str(_get(cam, "name", path, f"camera #{i}"))
        where = f"camera {name!r}"
        K = _num(cam, "K", path, where, (9,)).reshape(3, 3)
        R = _num(cam, "R", path, where, (9,)).reshape(3, 3)
        dist, t = _num(cam, "dist", path, where, (5,)), _num(cam, "t", path, where, (3,))
        cameras.append(_camera(path, name, K, dist, R, t, _size(cam, "size", path, where)))
    return _rig(path, cameras, "mvcap")


def read_calibration(
    path: PathLike,
    size: tuple[int, int] | None = None,
    *,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    names: Sequence[str] | None = None,
) -> CameraRig:
    """Read any supported single-file calibration, chosen by suffix and, for JSON, by content.

    ``.qca.txt`` -> :func:`read_qca`; ``.toml`` -> :func:`read_toml`; ``.json`` -> :func:`read_json`
    (``"format"`` key), :func:`read_panoptic_json` (``"cameras"`` list with ``"distCoef"``; HD
    cameras), :func:`read_voxelpose_json` (cameras with ``"fx"``) or :func:`read_4da_json` (cameras
    with ``"RT"``). TUM ``P*.txt`` sets need :func:`read_tum_projections`.

    Image sizes are never guessed: a camera of a format that stores none (VoxelPose) takes
    ``sizes[name]``, else ``size``, else this raises. A format that stores sizes keeps its own
    (``size`` is ignored), and an entry of ``sizes`` must agree with it.

    Args:
        path: calibration file.
        size: (width, height) px of every camera, used only by formats that do not store it.
        sizes: (width, height) px by camera name, e.g. the run config's ``image_size`` keys;
            entries for cameras that are not read are ignored.
        names: cameras to read, in this order; None reads every camera, in file order.

    Returns:
        The rig, world in metres.

    Raises:
        CalibrationError: unknown format (the message lists the supported ones), any reader
            error, a camera of ``names`` absent from the file, a VoxelPose camera without a size,
            or an entry of ``sizes`` that differs from the size the file stores.
    """
    sizes = {} if sizes is None else {str(k): (int(v[0]), int(v[1])) for k, v in sizes.items()}
    name = Path(path).name.lower()
    if name.endswith(".qca.txt"):
        return _select(path, read_qca(path), sizes, names)
    if name.endswith(".toml"):
        return _select(path, read_toml(path), sizes, names)
    if name.endswith(".json"):
        data = _load_json(path)
        if isinstance(data, Mapping):
            cams, first = data.get("cameras"), next(iter(data.values()), None)
            if "format" in data:
                return _select(path, read_json(path), sizes, names)
            if isinstance(cams, list) and cams and isinstance(cams[0], Mapping) and "distCoef" in cams[0]:
                return _select(path, read_panoptic_json(path), sizes, names)
            if isinstance(first, Mapping) and "fx" in first:
                _check_names(path, [str(k) for k in data], names)
                rig = _read_voxelpose(path, data, lambda cam, _guess: sizes.get(cam, size), names)
                return rig if names is None else rig.subset(names)
            if isinstance(first, Mapping) and "RT" in first:
                return _select(path, read_4da_json(path), sizes, names)
        raise _error(path, f"unrecognised calibration JSON; supported formats: {SUPPORTED_FORMATS}")
    raise _error(path, f"unknown calibration file type; supported formats: {SUPPORTED_FORMATS}")


def _check_names(path: PathLike, available: Sequence[str], names: Sequence[str] | None) -> None:
    """Raise if a requested camera is not in the file (the message lists the file's cameras)."""
    missing = [n for n in names or () if n not in available]
    if missing:
        raise _error(path, f"no camera(s) {missing} in the calibration; it has {list(available)}")
    if names is not None and len(set(names)) != len(names):
        raise _error(path, f"camera names must be unique; got {list(names)}")


def _select(
    path: PathLike, rig: CameraRig, sizes: Mapping[str, tuple[int, int]], names: Sequence[str] | None
) -> CameraRig:
    """The ``names`` subset of a rig read from a format that stores sizes, checked against ``sizes``."""
    _check_names(path, rig.names, names)
    rig = rig if names is None else rig.subset(names)
    for cam in rig:
        given = sizes.get(cam.name)
        if given is not None and tuple(given) != tuple(cam.size):
            raise _error(
                path,
                f"camera {cam.name!r} is {cam.size[0]}x{cam.size[1]} in the calibration but its image_size is "
                f"{given[0]}x{given[1]}; remove image_size or fix the calibration",
            )
    return rig
