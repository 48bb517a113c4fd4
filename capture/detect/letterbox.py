"""Detector input geometry: the letterbox, and the network input that follows the frame's shape.

:func:`letterbox` resizes keeping the aspect ratio and pads with grey, as Ultralytics' ``LetterBox``
does (Jocher et al., Ultralytics YOLO11, 2024); :func:`input_hw_for_frame` picks a camera's network
input from its frame size so that landscape and portrait frames get the same effective resolution.
The gain and padding alone, without an image, are :func:`capture.detect.crop_shapes.letterbox_geometry`.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from core.errors import ConfigError

__all__ = ["PAD_VALUE", "STRIDE", "input_hw_for_frame", "letterbox"]

PAD_VALUE: Final = 114  # grey used by Ultralytics' LetterBox
STRIDE: Final = 32  # YOLO11's largest feature stride: input sides are multiples of it


def letterbox(image: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Resize keeping the aspect ratio, then pad with grey 114 to ``input_hw``, centred.

    Same as Ultralytics' ``LetterBox(new_shape, auto=False, center=True)``: each resized side is
    rounded, so the x and y gains differ slightly.

    Args:
        image: (H, W, 3) uint8 image.
        input_hw: network input (height, width), pixels.

    Returns:
        padded: (h_in, w_in, 3) uint8 letterboxed image.
        gain: (gain_x, gain_y), resized size / original size.
        pad: (left, top) padding, pixels.

    Convention: an original pixel coordinate u maps to ``u * gain_x + left`` in the input (the
    inverse is Ultralytics' ``scale_coords``; half-pixel offsets are not modelled).

    Example:
        >>> img, gain, pad = letterbox(np.zeros((1920, 1088, 3), np.uint8), (640, 384))
        >>> img.shape, pad
        ((640, 384, 3), (10, 0))
    """
    from capture.detect.crop_shapes import letterbox_geometry

    h, w = image.shape[:2]
    h_in, w_in = input_hw
    (gain_x, gain_y), (left, top) = letterbox_geometry((w, h), input_hw)
    new_w, new_h = round(w * gain_x), round(h * gain_y)  # the resized size: gain = new / old
    right, bottom = w_in - new_w - left, h_in - new_h - top
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return padded, (new_w / w, new_h / h), (left, top)


def input_hw_for_frame(
    frame_wh: tuple[int, int], long_px: int = 640, fixed_hw: tuple[int, int] | None = None, stride: int = STRIDE
) -> tuple[int, int]:
    """Network input (height, width) for frames of one size: the long side follows the frame's.

    The frame's long side maps to ``long_px``; the short side is scaled by the same factor and
    rounded up to a multiple of ``stride``, so :func:`letterbox` pads it by less than one stride.
    Landscape and portrait frames get the same effective resolution (Ultralytics' rectangular
    inference, ``LetterBox(auto=True)``, picks the same shape per image).

    Args:
        frame_wh: (width, height) of the frames, pixels.
        long_px: input size along the frame's long side, pixels (a multiple of ``stride``).
        fixed_hw: a fixed (height, width) that overrides the rule (``[detector] input_h, input_w``).
        stride: model stride, pixels.

    Returns:
        (height, width) of the network input, pixels, multiples of ``stride``.

    Raises:
        ConfigError: ``long_px`` or ``fixed_hw`` not positive multiples of ``stride``, or an empty frame.

    Example:
        >>> input_hw_for_frame((1920, 1080)), input_hw_for_frame((1088, 1920)), input_hw_for_frame((960, 512))
        ((384, 640), (640, 384), (352, 640))
    """
    if fixed_hw is not None:
        h, w = (int(v) for v in fixed_hw)
        if h <= 0 or w <= 0 or h % stride or w % stride:
            raise ConfigError(f"fixed input must be positive multiples of {stride} (height, width); got {fixed_hw}")
        return h, w
    if long_px <= 0 or long_px % stride:
        raise ConfigError(f"input_long_px must be a positive multiple of {stride}; got {long_px}")
    fw, fh = (int(v) for v in frame_wh)
    if fw <= 0 or fh <= 0:
        raise ConfigError(f"frame size must be positive; got {frame_wh}")
    short = min(fw, fh) * long_px / max(fw, fh)
    short_px = max(stride, int(np.ceil(short / stride - 1e-9)) * stride)
    return (long_px, short_px) if fh > fw else (short_px, long_px)
