"""The ``[[cameras]]`` tables: each camera's source, image size, image map, rotation and stills flag."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError

ROTATIONS: tuple[int, ...] = (0, 90, 180, 270)
"""The frame rotations a camera may give (``[[cameras]] rotate``), degrees clockwise."""


@dataclass(frozen=True, slots=True)
class ImageMap:
    """How a camera's frames relate to its calibration's image, when they differ in size.

    ``calibration pixel = (frame pixel - pad) / scale``, per axis: the frames are the calibrated
    images scaled by ``scale_x``, ``scale_y``, then shifted by ``pad_x``, ``pad_y`` pixels (padding
    when positive, e.g. black bars; cropping when negative). Written in a config as
    ``image_map = {scale = 0.5, pad_x = 0, pad_y = -14}`` (``scale`` sets both axes), or with
    ``scale_x`` and ``scale_y``. Workers map their detections with it, so detections on the wire
    are in calibration pixels.

    Attributes:
        scale_x: frame pixels per calibration pixel along x (> 0).
        scale_y: frame pixels per calibration pixel along y (> 0).
        pad_x: frame x of the calibration image's x = 0, frame pixels.
        pad_y: frame y of the calibration image's y = 0, frame pixels.

    Raises:
        ConfigError: a scale that is not a positive finite number, or a non-finite pad.
    """

    scale_x: float = 1.0
    scale_y: float = 1.0
    pad_x: float = 0.0
    pad_y: float = 0.0

    def __post_init__(self) -> None:
        scales_ok = all(math.isfinite(v) and v > 0 for v in (self.scale_x, self.scale_y))
        if not scales_ok or not all(math.isfinite(v) for v in (self.pad_x, self.pad_y)):
            raise ConfigError(
                f"image_map: scales must be positive and pads finite; got scale {self.scale_x}, {self.scale_y}, "
                f"pad {self.pad_x}, {self.pad_y}"
            )


@dataclass(frozen=True, slots=True)
class CameraSource:
    """One camera of a run: its calibration name and its frame source.

    Attributes:
        name: camera name in the calibration.
        source: video file, image folder, webcam index, or a detections file (``*.json[.gz]``).
        image_size: (width, height) of its images, pixels, for calibrations that store none
            (VoxelPose); None takes the calibration's. Where both exist they must agree.
        depth: an RGB-D camera's depth source, registered to its colour frames: a folder of 16-bit
            PNG images (uint16 millimetres, 0 = no reading) numbered as the colour frames, or a
            ``.npy`` (T, H, W) uint16 recording; "" for a colour-only camera. Its worker lifts the
            2D joints to 3D (``[rgbd]``).
        image_map: frames of another size than the calibration's image: how frame pixels map to
            calibration pixels (:class:`ImageMap`); None: frames must have the calibrated size.
        stills: the source is an image folder of independent moments (photo sets, benchmark
            frames): each image is reconstructed on its own, no track carried from one to the next.
        rotate: degrees (0, 90, 180 or 270) the worker turns each frame clockwise before detection,
            for a camera mounted on its side or upside down, so that the 2D detector (trained on
            upright people) sees people upright; the detections are turned back into the frame's
            own pixels, so the calibration and ``image_map`` stay those of the frames as recorded.
    """

    name: str
    source: str
    image_size: tuple[int, int] | None = None
    depth: str = ""
    image_map: ImageMap | None = None
    stills: bool = False
    rotate: int = 0

    def __post_init__(self) -> None:
        if self.rotate not in ROTATIONS:
            raise ConfigError(
                f"camera {self.name}: rotate must be one of {ROTATIONS} (degrees clockwise); got {self.rotate!r}"
            )


_CAMERA_KEYS = {"name", "source", "image_size", "depth", "image_map", "stills", "rotate"}
_IMAGE_MAP_KEYS = {"scale", "scale_x", "scale_y", "pad_x", "pad_y"}


def _image_size(value: Any, where: str) -> tuple[int, int] | None:
    """A camera's ``image_size = [width, height]`` (two positive integers, pixels), or None."""
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == 2
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"{where}: image_size must be [width, height], two positive integers (pixels); got {value!r}")
    return int(value[0]), int(value[1])


def _image_map(value: Any, where: str) -> ImageMap | None:
    """A camera's ``image_map = {scale = s, pad_x = px, pad_y = py}`` (or ``scale_x``, ``scale_y``), or None."""
    if value is None:
        return None
    if not isinstance(value, dict) or not set(value) <= _IMAGE_MAP_KEYS:
        raise ConfigError(f"{where}: image_map must be a table of {sorted(_IMAGE_MAP_KEYS)}; got {value!r}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
        raise ConfigError(f"{where}: image_map values must be numbers; got {value!r}")
    has_xy = "scale_x" in value or "scale_y" in value
    if ("scale" in value) == has_xy or (has_xy and not {"scale_x", "scale_y"} <= set(value)):
        raise ConfigError(f"{where}: image_map needs scale, or both scale_x and scale_y; got {value!r}")
    sx = float(value.get("scale", value.get("scale_x", 1.0)))
    sy = float(value.get("scale", value.get("scale_y", 1.0)))
    try:
        return ImageMap(sx, sy, float(value.get("pad_x", 0.0)), float(value.get("pad_y", 0.0)))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def cameras_from_list(cams: Any, where: str) -> tuple[CameraSource, ...]:
    """The cameras of a parsed TOML ``[[cameras]]`` array, in order.

    Args:
        cams: the array of tables (``name``, ``source`` and the optional keys of :class:`CameraSource`).
        where: the config's name, for error messages.

    Raises:
        ConfigError: not a list of tables, a missing or unknown key, or a value of the wrong type.
    """
    if not isinstance(cams, list) or not all(
        isinstance(c, dict) and {"name", "source"} <= set(c) <= _CAMERA_KEYS for c in cams
    ):
        raise ConfigError(
            f"{where}: cameras must be a list of {{name = ..., source = ..., and optional image_size = [w, h], "
            "depth = ..., image_map = {{scale = ..., pad_x = ..., pad_y = ...}}, stills = true, rotate = 90}} tables"
        )
    for c in cams:
        if not isinstance(c.get("depth", ""), str):
            raise ConfigError(f"{where}: [[cameras]] {c['name']}: depth must be a path string; got {c['depth']!r}")
        if not isinstance(c.get("stills", False), bool):
            raise ConfigError(f"{where}: [[cameras]] {c['name']}: stills must be true or false; got {c['stills']!r}")
        rotate = c.get("rotate", 0)
        if not isinstance(rotate, int) or isinstance(rotate, bool) or rotate not in ROTATIONS:
            raise ConfigError(f"{where}: [[cameras]] {c['name']}: rotate must be one of {ROTATIONS}; got {rotate!r}")
    cameras = tuple(
        CameraSource(
            str(c["name"]),
            str(c["source"]),
            _image_size(c.get("image_size"), f"{where} [[cameras]] {c['name']}"),
            c.get("depth", ""),
            _image_map(c.get("image_map"), f"{where} [[cameras]] {c['name']}"),
            c.get("stills", False),
            c.get("rotate", 0),
        )
        for c in cams
    )
    return cameras
