"""Skeleton definitions: joint names, limbs and left/right pairs.

Algorithms look joint indices up by name once (``skeleton.index("left_hip")``), never as literals.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COCO17", "SKELETONS", "Skeleton", "skeleton_by_name"]


@dataclass(frozen=True, slots=True)
class Skeleton:
    """A named joint set with its limbs.

    Attributes:
        name: skeleton name, e.g. ``"coco17"``.
        joints: joint names in array order; ``J = len(joints)``.
        limbs: pairs of joint indices drawn or measured as bones.
        left_right: pairs of (left index, right index) of mirrored joints.
    """

    name: str
    joints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    left_right: tuple[tuple[int, int], ...]

    @property
    def n_joints(self) -> int:
        """Number of joints J."""
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Index of a joint by name.

        Raises:
            KeyError: the skeleton has no joint of that name (the message lists the valid names).

        Example:
            >>> COCO17.index("left_hip")
            11
        """
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"{self.name} has no joint {joint!r}; joints: {', '.join(self.joints)}") from None


_COCO17_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip


def _pairs(names: tuple[str, ...], pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[int, int], ...]:
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


COCO17 = Skeleton(
    name="coco17",
    joints=_COCO17_JOINTS,
    limbs=_pairs(
        _COCO17_JOINTS,
        (
            ("left_ankle", "left_knee"),
            ("left_knee", "left_hip"),
            ("right_ankle", "right_knee"),
            ("right_knee", "right_hip"),
            ("left_hip", "right_hip"),
            ("left_shoulder", "left_hip"),
            ("right_shoulder", "right_hip"),
            ("left_shoulder", "right_shoulder"),
            ("left_shoulder", "left_elbow"),
            ("right_shoulder", "right_elbow"),
            ("left_elbow", "left_wrist"),
            ("right_elbow", "right_wrist"),
            ("left_eye", "right_eye"),
            ("nose", "left_eye"),
            ("nose", "right_eye"),
            ("left_eye", "left_ear"),
            ("right_eye", "right_ear"),
        ),
    ),  # fmt: skip
    left_right=_pairs(
        _COCO17_JOINTS,
        tuple(
            (f"left_{j}", f"right_{j}") for j in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
        ),
    ),
)
"""COCO-17 keypoints (Lin et al. 2014), the output of YOLO-pose, MoveNet and most 2D detectors."""


SKELETONS: dict[str, Skeleton] = {COCO17.name: COCO17}
"""Registered skeletons by name (the name travels in messages and file headers)."""


def skeleton_by_name(name: str) -> Skeleton:
    """The registered skeleton of that name.

    Raises:
        KeyError: unknown name (the message lists the registered ones).
    """
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton {name!r}; known: {sorted(SKELETONS)}") from None
