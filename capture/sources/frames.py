"""Frame sources through OpenCV: video files, image folders and webcams.

Each source is an iterable of ``(frame_idx, stamp_ns, image_bgr)`` with ``image_bgr`` an (H, W, 3)
uint8 BGR array, and a context manager that releases the device or file.

Convention: file sources (video, image folder) have no capture clock, so their stamps are
synthesised from the frame rate: ``stamp_ns = epoch_ns + round(frame_idx * 1e9 / fps)``. A webcam
stamps each frame with the host clock ``time.time_ns()`` right after the grab returns.

Stills (an image folder of independent moments: multi-view photo sets, benchmark frames) are
stamped :data:`STILLS_GAP_S` apart instead: far beyond any track's lifetime (``[fusion]
max_missed_s``, ``max_tentative_s``) and smoothing gap (``[smoothing] max_gap_s``), so the node
ends every track between two images and reconstructs each moment on its own.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from core.errors import ConfigError, InputError

__all__ = [
    "STILLS_GAP_S",
    "FrameSource",
    "ImageFolderSource",
    "VideoSource",
    "WebcamSource",
    "natural_path_key",
    "open_source",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
STILLS_GAP_S = 3600.0
"""Stills: time between the stamps of consecutive images, seconds (one hour: no track survives it)."""

Frame = tuple[int, int, np.ndarray]


class FrameSource:
    """Base class: iteration, context management and the common properties.

    Attributes:
        fps: frame rate, frames per second (nominal for a webcam).
        size: (width, height) of the frames, pixels.
        n_frames: number of frames, or None when unknown or unbounded (webcam).
    """

    fps: float
    size: tuple[int, int]
    n_frames: int | None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the underlying file or device (idempotent)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def _file_stamp_ns(epoch_ns: int, frame_idx: int, fps: float) -> int:
    """Synthetic stamp of a file frame, nanoseconds.

    Example:
        >>> _file_stamp_ns(0, 3, 60.0)
        50000000
    """
    return int(epoch_ns) + round(frame_idx * 1e9 / fps)


def _check_fps(fps: float | None, what: str) -> float:
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise ConfigError(f"{what}: fps must be a positive number; got {fps}")
    return float(fps)


class VideoSource(FrameSource):
    """Frames of a video file, decoded by OpenCV.

    Args:
        path: video file.
        epoch_ns: stamp of frame 0, nanoseconds.
        fps: frame rate override; default: the file's.

    Raises:
        InputError: the file is missing or cannot be decoded (the first frame is read to check), or
            it reports no frame rate and none is given.

    Example:
        >>> with VideoSource("cam01.mp4") as src:  # doctest: +SKIP
        ...     for frame_idx, stamp_ns, image_bgr in src:
        ...         pass
    """

    def __init__(self, path: str | Path, epoch_ns: int = 0, fps: float | None = None) -> None:
        self.path = Path(path)
        self.epoch_ns = int(epoch_ns)
        self._cap: cv2.VideoCapture | None = None
        self._first = self._open()
        file_fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        if fps is None and not (np.isfinite(file_fps) and file_fps > 0):
            raise InputError(f"{self.path}: video reports no frame rate; pass fps")
        self.fps = _check_fps(file_fps if fps is None else fps, str(self.path))
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.n_frames = count if count > 0 else None
        self.size = (int(self._first.shape[1]), int(self._first.shape[0]))
        log.info("video %s: %dx%d, %.3f fps, %s frames", self.path, *self.size, self.fps, self.n_frames)

    def _open(self) -> np.ndarray:
        if not self.path.is_file():
            raise InputError(f"{self.path}: cannot open video (no such file)")
        cap = cv2.VideoCapture(str(self.path))
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            cap.release()
            raise InputError(f"{self.path}: cannot open video (not a video or unsupported codec)")
        self._cap = cap
        return frame

    def __iter__(self) -> Iterator[Frame]:
        first, self._first = self._first, None
        if first is None:  # a second pass: start again from the beginning
            self.close()
            first = self._open()
        frame_idx, frame = 0, first
        while frame is not None:
            yield frame_idx, _file_stamp_ns(self.epoch_ns, frame_idx, self.fps), frame
            ok, frame = self._cap.read() if self._cap is not None else (False, None)
            frame = frame if ok else None
            frame_idx += 1
        log.debug("video %s: end after %d frames", self.path, frame_idx)

    def close(self) -> None:
        """Release the decoder."""
        cap, self._cap = getattr(self, "_cap", None), None
        if cap is not None:
            cap.release()


def natural_path_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a file by its name, ordering ``img2`` before ``img10`` (image folders, depth folders).

    Example:
        >>> [p.name for p in sorted([Path("f10.png"), Path("f2.png")], key=natural_path_key)]
        ['f2.png', 'f10.png']
    """
    return tuple((0, int(t)) if t.isdigit() else (1, t.lower()) for t in re.split(r"(\d+)", path.name) if t)


class ImageFolderSource(FrameSource):
    """Frames from the images (jpg, jpeg, png) of one folder, in natural file-name order.

    Args:
        path: folder of images.
        fps: frame rate used for the stamps, frames per second (ignored for stills).
        epoch_ns: stamp of frame 0, nanoseconds.
        stills: the images are independent moments: stamped :data:`STILLS_GAP_S` apart, so no track
            is carried from one to the next.

    Raises:
        InputError: not a folder, no image in it, or the first image is unreadable. A later
            unreadable image raises InputError during iteration.
        ConfigError: fps is not positive.
    """

    def __init__(self, path: str | Path, fps: float = 30.0, epoch_ns: int = 0, stills: bool = False) -> None:
        self.path = Path(path)
        self.epoch_ns = int(epoch_ns)
        self.stills = bool(stills)
        self.fps = 1.0 / STILLS_GAP_S if self.stills else _check_fps(fps, str(self.path))
        if not self.path.is_dir():
            raise InputError(f"{self.path}: cannot open image folder (not a folder)")
        files = [p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        self.files = tuple(sorted(files, key=natural_path_key))
        if not self.files:
            raise InputError(f"{self.path}: no {'/'.join(IMAGE_SUFFIXES)} image in folder")
        first = self._read(self.files[0])
        self.size = (int(first.shape[1]), int(first.shape[0]))
        self.n_frames = len(self.files)
        w, h = self.size
        rate = "stills (independent moments)" if self.stills else f"{self.fps:.3f} fps"
        log.info("image folder %s: %d images, %dx%d, %s", self.path, self.n_frames, w, h, rate)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: cannot read image")
        return image

    def __iter__(self) -> Iterator[Frame]:
        gap_ns = round(STILLS_GAP_S * 1e9)
        for frame_idx, path in enumerate(self.files):
            if self.stills:
                stamp_ns = self.epoch_ns + frame_idx * gap_ns
            else:
                stamp_ns = _file_stamp_ns(self.epoch_ns, frame_idx, self.fps)
            yield frame_idx, stamp_ns, self._read(path)


class WebcamSource(FrameSource):
    """Live frames of a camera opened by OpenCV index; stops when a grab fails.

    Args:
        index: OpenCV camera index (0 for the first camera).
        size: requested (width, height), pixels; default: the driver's.
        fps: requested frame rate; default: the driver's.

    Raises:
        InputError: the camera cannot be opened or delivers no first frame.
    """

    def __init__(self, index: int, size: tuple[int, int] | None = None, fps: float | None = None) -> None:
        self.index = int(index)
        cap = cv2.VideoCapture(self.index)
        if size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(size[0]))
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(size[1]))
        if fps is not None:
            cap.set(cv2.CAP_PROP_FPS, float(fps))
        ok = cap.isOpened() and cap.grab()
        stamp_ns = time.time_ns()
        ok, frame = cap.retrieve() if ok else (False, None)
        if not ok or frame is None:
            cap.release()
            raise InputError(f"camera {self.index}: cannot open webcam")
        self._cap: cv2.VideoCapture | None = cap
        self._first: tuple[int, np.ndarray] | None = (stamp_ns, frame)
        driver_fps = float(cap.get(cv2.CAP_PROP_FPS))
        self.fps = driver_fps if np.isfinite(driver_fps) and driver_fps > 0 else float(fps or 30.0)
        self.size = (int(frame.shape[1]), int(frame.shape[0]))
        self.n_frames = None
        log.info("webcam %d: %dx%d, nominal %.1f fps", self.index, *self.size, self.fps)

    def __iter__(self) -> Iterator[Frame]:
        frame_idx = 0
        if self._first is not None:
            (stamp_ns, frame), self._first = self._first, None
            yield frame_idx, stamp_ns, frame
            frame_idx += 1
        while self._cap is not None and self._cap.grab():
            stamp_ns = time.time_ns()
            ok, frame = self._cap.retrieve()
            if not ok or frame is None:
                break
            yield frame_idx, stamp_ns, frame
            frame_idx += 1
        log.warning("webcam %d: no more frames after frame %d", self.index, frame_idx)

    def close(self) -> None:
        """Release the camera."""
        cap, self._cap = getattr(self, "_cap", None), None
        if cap is not None:
            cap.release()


def open_source(spec: str, fps: float | None = None, epoch_ns: int = 0, stills: bool = False) -> FrameSource:
    """Open a frame source from a command-line style spec.

    Args:
        spec: an integer (webcam index), a folder (images), or anything else (a video file).
        fps: frame rate for an image folder (default 30), override for a video, request for a webcam.
        epoch_ns: stamp of frame 0 for file sources, nanoseconds (ignored by webcams).
        stills: an image folder of independent moments (:class:`ImageFolderSource`).

    Returns:
        The source; use it as a context manager.

    Raises:
        InputError: the source cannot be opened, or ``stills`` for a source that is not an image folder.
    """
    text = str(spec).strip()
    path = Path(text).expanduser()
    if stills and (re.fullmatch(r"\d+", text) or not path.is_dir()):
        raise InputError(f"{text}: stills must be an image folder (not a video or a webcam)")
    if re.fullmatch(r"\d+", text):
        return WebcamSource(int(text), fps=fps)
    if path.is_dir():
        return ImageFolderSource(path, fps=30.0 if fps is None else fps, epoch_ns=epoch_ns, stills=stills)
    return VideoSource(path, epoch_ns=epoch_ns, fps=fps)
