"""Rendered stand-ins for people in images, for the re-ID descriptor tests: limbs drawn at 2D joints."""

from __future__ import annotations

import cv2
import numpy as np

from core.skeleton import COCO17

SKIN = (120, 160, 210)
_J = COCO17.index


def draw_person(
    img: np.ndarray, uv: np.ndarray, shirt: tuple, trousers: tuple, height: float, min_width: int, head: float
) -> None:
    """Draw a person (BGR colours) at its (17, 2) COCO-17 pixels: trousers on the legs, shirt on torso
    and upper arms, skin on forearms and head; limb width 0.09 ``height`` (at least ``min_width``)
    and head radius ``head`` x ``height``, pixels."""
    pt = lambda j: tuple(int(round(v)) for v in uv[_J(j)])  # noqa: E731
    w = max(min_width, int(0.09 * height))
    for side in ("left", "right"):
        cv2.line(img, pt(f"{side}_hip"), pt(f"{side}_knee"), trousers, w + 3)
        cv2.line(img, pt(f"{side}_knee"), pt(f"{side}_ankle"), trousers, w)
    torso = np.array([pt("left_shoulder"), pt("right_shoulder"), pt("right_hip"), pt("left_hip")], np.int32)
    cv2.fillConvexPoly(img, torso, shirt)
    for side in ("left", "right"):
        cv2.line(img, pt(f"{side}_shoulder"), pt(f"{side}_elbow"), shirt, w)
        cv2.line(img, pt(f"{side}_elbow"), pt(f"{side}_wrist"), SKIN, max(2, w - 2))
    cv2.circle(img, pt("nose"), int(head * height), SKIN, -1)
