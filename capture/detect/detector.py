"""The 2D pose detector interface: what every model in the registry gives the worker.

A :class:`Detector` takes one BGR frame and returns each person's joints (COCO-17 for every model
here, Lin et al. 2014) and box in that frame's pixels. :func:`check_image_bgr` is the shared check of
a frame given to a detector or descriptor.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from core.errors import ShapeError
from core.skeleton import Skeleton

__all__ = ["Detector", "check_image_bgr"]


def check_image_bgr(image_bgr: np.ndarray) -> None:
    """Check a frame given to a detector or descriptor.

    Raises:
        ShapeError: ``image_bgr`` is not an (H, W, 3) uint8 array.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ShapeError(f"image_bgr must be (H, W, 3) uint8; got {image_bgr.shape} {image_bgr.dtype}")


@runtime_checkable
class Detector(Protocol):
    """A 2D multi-person pose detector.

    Attributes:
        skeleton: joint set of the returned poses (J joints), e.g. COCO17.
    """

    skeleton: Skeleton

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect people in one image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image (OpenCV order).

        Returns:
            poses: (P, J, 3) float32 [u_px, v_px, conf] in image pixels; conf in [0, 1].
            boxes: (P, 5) float32 [x1, y1, x2, y2, score] in image pixels.
        """
        ...
