"""Depth sources of RGB-D cameras: the depth image registered to a colour frame, by frame index.

A depth source answers "the depth image of colour frame ``frame_idx``": an (H, W) uint16 array of
millimetres (0 = no reading), registered to the colour image (same pixel grid, or the same field of
view at another resolution), or None when that frame has none (the worker then sends 2D joints
only). Three kinds:

- :class:`DepthFolderSource`: a folder of 16-bit PNG images, numbered as the colour frames: the
  k-th file in natural name order (``depth2.png`` before ``depth10.png``) belongs to colour frame
  k, as :class:`capture.sources.frames.ImageFolderSource` numbers its images;
- :class:`DepthArraySource`: a recorded ``.npy`` file holding a (T, H, W) uint16 array, memory
  mapped (frame k is row k);
- a live sensor: a driver implements :class:`DepthSource` (``read`` and ``close``); e.g. one
  around ``pyrealsense2`` or ``pyk4a`` returns the depth frame aligned to the colour frame it
  delivered as ``frame_idx``. None ships here: no sensor is attached to the test machines.

:class:`DepthLifter` is an RGB-D camera's stage in its worker: each frame's detections lifted to 3D
with that frame's depth image (:func:`fusion.rgbd.lift_joints`).

Convention: millimetres of z (the camera frame's optical axis), as Kinect, RealSense and Azure
Kinect deliver them; :mod:`fusion.rgbd` turns them into metres.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from calibration.camera import Camera
from capture.sources.frames import natural_path_key
from core.config import RGBDConfig
from core.errors import InputError
from core.types import Detections2D
from fusion.rgbd import RGBDDetections, lift_joints

__all__ = ["DepthArraySource", "DepthFolderSource", "DepthLifter", "DepthSource", "open_depth_source"]

log = logging.getLogger(__name__)


class DepthSource:
    """Interface of a depth source (see the module docstring); a live sensor driver implements it.

    Attributes:
        size: (width, height) of the depth images, pixels.
        n_frames: number of frames, or None when unknown (a live sensor).
    """

    size: tuple[int, int]
    n_frames: int | None

    def read(self, frame_idx: int) -> np.ndarray | None:
        """The depth image registered to colour frame ``frame_idx``.

        Args:
            frame_idx: the colour frame's index (0-based).

        Returns:
            (H, W) uint16 millimetres (0 = no reading), or None when the frame has no depth.

        Raises:
            InputError: the depth of that frame exists but cannot be read.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the files or the device (idempotent)."""

    def __enter__(self) -> DepthSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check_depth(image: np.ndarray | None, where: str) -> np.ndarray:
    """``image`` if it is an (H, W) uint16 depth image, else InputError naming ``where``."""
    if image is None:
        raise InputError(f"{where}: cannot read depth image")
    if image.ndim != 2 or image.dtype != np.uint16:
        raise InputError(
            f"{where}: depth must be a single-channel 16-bit image (uint16 millimetres); got {image.dtype} "
            f"{image.shape}"
        )
    return image


class DepthFolderSource(DepthSource):
    """Depth images from the 16-bit PNG files of one folder, the k-th (natural order) for frame k.

    Args:
        path: folder of ``*.png`` depth images.

    Raises:
        InputError: not a folder, no PNG in it, or the first image is not a 16-bit single-channel
            image.

    Example:
        >>> with DepthFolderSource("depth/cam01") as src:  # doctest: +SKIP
        ...     depth_mm = src.read(0)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: cannot open depth folder (not a folder)")
        files = [p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() == ".png"]
        self.files = tuple(sorted(files, key=natural_path_key))
        if not self.files:
            raise InputError(f"{self.path}: no .png depth image in folder")
        first = self._read(self.files[0])
        self.size = (int(first.shape[1]), int(first.shape[0]))
        self.n_frames = len(self.files)
        log.info("depth folder %s: %d images, %dx%d", self.path, self.n_frames, *self.size)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        return _check_depth(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), str(path))

    def read(self, frame_idx: int) -> np.ndarray | None:
        """The depth image of colour frame ``frame_idx`` (None past the last file)."""
        if not 0 <= frame_idx < len(self.files):
            return None
        image = self._read(self.files[frame_idx])
        if (image.shape[1], image.shape[0]) != self.size:
            raise InputError(f"{self.files[frame_idx]}: depth image is {image.shape[1]}x{image.shape[0]}; "
                             f"the folder's are {self.size[0]}x{self.size[1]}")  # fmt: skip
        return image


class DepthArraySource(DepthSource):
    """Depth images of a recorded ``.npy`` file holding a (T, H, W) uint16 array (memory mapped).

    Args:
        path: the ``.npy`` file.

    Raises:
        InputError: missing or unreadable file, or not a (T, H, W) uint16 array.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._frames: np.ndarray | None = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: cannot read depth recording ({exc})") from None
        if self._frames.ndim != 3 or self._frames.dtype != np.uint16:
            raise InputError(
                f"{self.path}: depth recording must be (T, H, W) uint16 millimetres; got {self._frames.dtype} "
                f"{self._frames.shape}"
            )
        self.n_frames = int(self._frames.shape[0])
        self.size = (int(self._frames.shape[2]), int(self._frames.shape[1]))
        log.info("depth recording %s: %d frames, %dx%d", self.path, self.n_frames, *self.size)

    def read(self, frame_idx: int) -> np.ndarray | None:
        """The depth image of colour frame ``frame_idx`` (None past the end or once closed)."""
        if self._frames is None or not 0 <= frame_idx < self.n_frames:
            return None
        return np.array(self._frames[frame_idx])

    def close(self) -> None:
        """Drop the memory map."""
        self._frames = None


def open_depth_source(spec: str | Path) -> DepthSource:
    """Open a camera's depth source from its config value (``[[cameras]] depth``).

    Args:
        spec: a folder of 16-bit PNG images, or a ``.npy`` (T, H, W) uint16 recording.

    Returns:
        The source; use it as a context manager.

    Raises:
        InputError: the source cannot be opened (the message names it and what was expected).
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        return DepthFolderSource(path)
    if path.suffix.lower() == ".npy":
        return DepthArraySource(path)
    raise InputError(f"{path}: depth source must be a folder of 16-bit PNG images or a .npy (T, H, W) uint16 file")


class DepthLifter:
    """An RGB-D camera's stage in its worker: lift each frame's detections with its depth image.

    Args:
        spec: the depth source (:func:`open_depth_source`).
        camera: the calibrated camera (colour intrinsics, distortion, pose).
        cfg: the ``[rgbd]`` settings.
        pixel_noise_px: 2D joint noise at confidence 1, pixels (``[fusion] pixel_noise_px``).

    Attributes:
        lifted: frames sent with lifted joints.
        missing: frames sent with 2D joints only (no depth image, or an unreadable one).

    Raises:
        InputError: the source cannot be opened, or its images are not registered to the camera's
            (their aspect ratio differs).
    """

    def __init__(self, spec: str | Path, camera: Camera, cfg: RGBDConfig, pixel_noise_px: float) -> None:
        self.source = open_depth_source(spec)
        self.camera, self.cfg, self.pixel_noise_px = camera, cfg, float(pixel_noise_px)
        self.lifted = self.missing = 0
        (w, h), (dw, dh) = camera.size, self.source.size
        if abs(dw * h - dh * w) > 0.01 * w * h:
            self.source.close()
            raise InputError(
                f"{spec}: depth images are {dw}x{dh}, not registered to camera {camera.name}'s {w}x{h} frames "
                "(the aspect ratios differ)"
            )

    def lift(self, dets: Detections2D) -> Detections2D:
        """``dets`` with its joints lifted by its frame's depth image; as it is without one (counted).

        Args:
            dets: one frame's detections, distorted pixels (its ``frame_idx`` picks the depth image).

        Returns:
            An :class:`~fusion.rgbd.RGBDDetections`, or ``dets`` itself when the frame has no
            readable depth image.
        """
        try:
            depth = self.source.read(dets.frame_idx)
        except InputError as exc:
            depth = None
            log.warning("camera %s frame %d: %s; sending 2D joints only", self.camera.name, dets.frame_idx, exc)
        if depth is None:
            self.missing += 1
            return dets
        self.lifted += 1
        lifted = lift_joints(self.camera, depth, dets.poses, self.cfg, self.pixel_noise_px)
        return RGBDDetections.from_detections(dets, lifted.joints, lifted.cov)

    def close(self) -> None:
        """Release the depth source."""
        self.source.close()
