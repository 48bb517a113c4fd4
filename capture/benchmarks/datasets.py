"""Ground-truth and peer-result readers for Shelf, Campus and CMU Panoptic, and skeleton mappings.

Every reader returns plain numpy arrays in metres, keyed by 0-based frame index.

Sources:
    - Shelf and Campus (Belagiannis et al., CVPR 2014, "3D Pictorial Structures for Multiple Human
      Pose Estimation"): ``actorsGT.mat`` and the 14-joint order of :data:`SHELF14`.
    - Campus as re-packaged by Chen et al. (CVPR 2020, "Cross-View Tracking for Multi-Human 3D Pose
      Estimation at over 100 FPS", repository longcw/crossview_3d_pose_tracking).
    - 4D Association (Zhang et al., CVPR 2020; repository zhangyux15/4d_association): its text skeleton
      format (``ParseSkels`` in ``src/skel_driver.cpp``) and SKEL19 joint order (``src/skel.h``).
    - CMU Panoptic (Joo et al., ICCV 2015 / TPAMI 2017): ``hdPose3d_stage1_coco19`` bodies, evaluated
      on their first 15 joints as in VoxelPose (Tu et al., ECCV 2020, ``lib/dataset/panoptic.py``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Final

import numpy as np

from capture.sources.detection_files import read_json_file
from core.errors import InputError, ShapeError
from core.skeleton import COCO17

__all__ = [
    "CAMPUS_FRAME_S",
    "COCO17_TO_SHELF14_BODY",
    "HeadConvention",
    "PANOPTIC15",
    "PANOPTIC_EVAL_JOINTS",
    "SHELF14",
    "SKEL19",
    "SKEL19_TO_SHELF15",
    "coco17_to_panoptic15",
    "coco17_to_shelf14",
    "read_4da_skel",
    "read_campus_gt",
    "read_crossview_result",
    "read_number_tokens",
    "read_panoptic_bodies",
    "read_shelf_gt",
    "skel19_to_shelf14",
]

SHELF14: Final[tuple[str, ...]] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    "bottom_head", "top_head",
)  # fmt: skip
"""Shelf/Campus joint order (Belagiannis et al. 2014); ``bottom_head`` is the neck."""

SKEL19: Final[tuple[str, ...]] = (
    "pelvis", "neck", "right_hip", "left_hip", "nose", "right_shoulder", "left_shoulder",
    "right_knee", "left_knee", "right_ear", "left_ear", "right_elbow", "left_elbow",
    "right_ankle", "left_ankle", "right_wrist", "left_wrist", "left_big_toe", "right_big_toe",
)  # fmt: skip
"""4D Association's SKEL19 order, read off its BODY25 -> SKEL19 joint mapping in ``src/skel.h``
(``4, 1, 5, 11, 15, 6, 12, 16, 0, 2, 7, 13, 3, 8, 14, -1, -1, 9, 10, 17, -1, -1, 18, -1, -1``)."""

SKEL19_TO_SHELF15: Final[tuple[int, ...]] = (13, 7, 2, 3, 8, 14, 15, 11, 5, 6, 12, 16, 1, 4, 0)
"""SKEL19 index of each SHELF15 joint (Shelf-14 then mid-hip), ``MappingToShelf`` in 4D Association's
``evaluate_shelf/main.cpp``: the head pair starts as (neck, nose) before its head interpolation."""

PANOPTIC15: Final[tuple[str, ...]] = (
    "neck", "nose", "mid_hip", "left_shoulder", "left_elbow", "left_wrist", "left_hip", "left_knee",
    "left_ankle", "right_shoulder", "right_elbow", "right_wrist", "right_hip", "right_knee",
    "right_ankle",
)  # fmt: skip
"""The first 15 joints of Panoptic COCO-19 (``JOINTS_DEF`` of VoxelPose ``lib/dataset/panoptic.py``);
joints 15-18 (eyes, ears) are not evaluated."""

PANOPTIC_EVAL_JOINTS: Final[int] = len(PANOPTIC15)
CAMPUS_FRAME_S: Final[float] = 0.04
"""Campus frame period (25 fps): Chen et al.'s timestamps are ``frame * 0.04`` seconds."""

COCO17_TO_SHELF14_BODY: Final[np.ndarray] = np.array([COCO17.index(n) for n in SHELF14[:12]])
"""COCO-17 index of each of the first 12 Shelf-14 joints: ``[16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9]``."""
COCO17_TO_SHELF14_BODY.setflags(write=False)

_SHELF = {n: i for i, n in enumerate(SHELF14)}
_SKEL19 = {n: i for i, n in enumerate(SKEL19)}
_NOSE, _L_EAR, _R_EAR = COCO17.index("nose"), COCO17.index("left_ear"), COCO17.index("right_ear")
_L_EYE, _R_EYE = COCO17.index("left_eye"), COCO17.index("right_eye")
_L_SHO, _R_SHO = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")
_L_HIP, _R_HIP = COCO17.index("left_hip"), COCO17.index("right_hip")


class HeadConvention(StrEnum):
    """How the Shelf-14 head joints (bottom-head, top-head) are made from COCO-17 joints.

    With m the shoulder midpoint, n the nose, e the ear midpoint, and the factors applied per world
    axis (x, y, z with z up, as in the Shelf and Campus world frames):

    - ``MVPOSE`` (Dong et al. CVPR 2019, zju3dv/mvpose ``src/m_utils/transformation.py``):
      top = m + (n - m) * [0.75, 0.75, 1.5], bottom = m + (n - m) * 0.5.
    - ``CROSSVIEW`` (Chen et al. CVPR 2020, longcw/crossview_3d_pose_tracking ``evaluate.py``):
      top = m + (n - m) * [0.78, 0.5, 1.5], bottom = m + (n - m) * [0.3, 0.4, 0.6].
    - ``VOXELPOSE_CAMPUS`` (Tu et al. ECCV 2020, microsoft/voxelpose-pytorch
      ``lib/dataset/campus.py`` ``coco2campus3D``): b = (m + e) / 2, bottom = b, top = b + 2 (e - b).
    - ``VOXELPOSE_SHELF`` (same repository, ``lib/dataset/shelf.py`` ``coco2shelf3D``): 0.75 * MVPOSE
      + 0.25 * VOXELPOSE_CAMPUS, joint by joint.
    """

    MVPOSE = "mvpose"
    CROSSVIEW = "crossview"
    VOXELPOSE_CAMPUS = "voxelpose_campus"
    VOXELPOSE_SHELF = "voxelpose_shelf"


def _check_poses(name: str, poses: object, n_joints: int) -> np.ndarray:
    arr = np.asarray(poses, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1] != n_joints or arr.shape[2] < 3:
        raise ShapeError(f"{name} must be (P, {n_joints}, >=3); got {arr.shape}")
    return arr[..., :3]


def coco17_to_shelf14(poses: np.ndarray, head: HeadConvention | str = HeadConvention.MVPOSE) -> np.ndarray:
    """Map COCO-17 poses to the Shelf/Campus 14-joint order.

    The 12 limb joints are copied (:data:`COCO17_TO_SHELF14_BODY`); the two head joints are made by
    the chosen :class:`HeadConvention`.

    Convention: with a confidence column (C >= 4), joints of confidence 0 are missing (their
    coordinates are meaningless) and the head rules use what is there: a missing nose is replaced
    by the mean of the known eyes, else of the known ears; one missing ear by the other; with both
    ears missing the ear-based rules fall back to the nose-based (mvpose) rule. Without a confidence
    column every joint is taken as known (as for VoxelPose's own predictions).

    Args:
        poses: (P, 17, C>=3) COCO-17 poses, world coordinates in metres (extra columns are ignored).
        head: head-joint convention, a :class:`HeadConvention` or its value.

    Returns:
        (P, 14, 3) Shelf-14 poses, metres.

    Raises:
        ShapeError: ``poses`` is not (P, 17, >=3).
        ValueError: unknown ``head`` (the message lists the valid ones).

    Example:
        >>> p = np.zeros((1, 17, 3)); p[0, 0] = [0.0, 0.0, 1.0]  # nose 1 m above the shoulders
        >>> coco17_to_shelf14(p, "mvpose")[0, 12:].tolist()
        [[0.0, 0.0, 0.5], [0.0, 0.0, 1.5]]
    """
    head = _head(head)
    xyz = _check_poses("poses", poses, COCO17.n_joints).copy()
    arr = np.asarray(poses)
    known = arr[..., 3] > 0 if arr.ndim == 3 and arr.shape[-1] >= 4 else np.ones(xyz.shape[:2], dtype=bool)
    out = np.zeros((xyz.shape[0], len(SHELF14), 3))
    out[:, :12] = xyz[:, COCO17_TO_SHELF14_BODY]
    m = (xyz[:, _L_SHO] + xyz[:, _R_SHO]) / 2
    nose = _known_nose(xyz, known)
    ears_known = _fill_ears(xyz, known)
    mv_top = m + (nose - m) * np.array([0.75, 0.75, 1.5])
    mv_bottom = m + (nose - m) * 0.5
    e_bottom, e_top = _ear_head(m, xyz)
    e_bottom = np.where(ears_known[:, None], e_bottom, mv_bottom)
    e_top = np.where(ears_known[:, None], e_top, mv_top)
    if head is HeadConvention.MVPOSE:
        top, bottom = mv_top, mv_bottom
    elif head is HeadConvention.VOXELPOSE_SHELF:
        top, bottom = 0.75 * mv_top + 0.25 * e_top, 0.75 * mv_bottom + 0.25 * e_bottom
    elif head is HeadConvention.CROSSVIEW:
        top = m + (nose - m) * np.array([0.78, 0.5, 1.5])
        bottom = m + (nose - m) * np.array([0.3, 0.4, 0.6])
    else:
        bottom, top = e_bottom, e_top
    out[:, _SHELF["bottom_head"]] = bottom
    out[:, _SHELF["top_head"]] = top
    return out


def _known_nose(xyz: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(P, 3) nose, or the mean of the known eyes, else of the known ears, where it is missing."""
    nose = xyz[:, _NOSE].copy()
    for group in ((_L_EYE, _R_EYE), (_L_EAR, _R_EAR)):
        need = ~known[:, _NOSE] & known[:, list(group)].any(axis=1)
        w = known[:, list(group)].astype(float)  # (P, 2)
        sub = (xyz[:, list(group)] * w[..., None]).sum(axis=1) / np.maximum(w.sum(axis=1), 1)[:, None]
        nose[need] = sub[need]
        known = known.copy()
        known[need, _NOSE] = True
    return nose


def _fill_ears(xyz: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Copy a known ear over a missing one, in place; returns (P,) whether any ear is known."""
    left_only = known[:, _L_EAR] & ~known[:, _R_EAR]
    right_only = known[:, _R_EAR] & ~known[:, _L_EAR]
    xyz[left_only, _R_EAR] = xyz[left_only, _L_EAR]
    xyz[right_only, _L_EAR] = xyz[right_only, _R_EAR]
    return known[:, _L_EAR] | known[:, _R_EAR]


def _ear_head(m: np.ndarray, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ears = (xyz[:, _L_EAR] + xyz[:, _R_EAR]) / 2
    bottom = (m + ears) / 2
    return bottom, bottom + (ears - bottom) * 2


def _head(head: HeadConvention | str) -> HeadConvention:
    try:
        return HeadConvention(head)
    except ValueError:
        valid = ", ".join(h.value for h in HeadConvention)
        raise ValueError(f"unknown head convention {head!r}; valid: {valid}") from None


def skel19_to_shelf14(poses: np.ndarray) -> np.ndarray:
    """Map 4D Association SKEL19 poses to Shelf-14 the way 4D Association evaluates Shelf.

    Follows ``MappingToShelf`` in zhangyux15/4d_association ``evaluate_shelf/main.cpp``: limb joints
    by :data:`SKEL19_TO_SHELF15`; with s the shoulder midpoint, e the ear midpoint, and the face
    direction f = normalise((neck - pelvis) x (right_shoulder - left_shoulder)):
    bottom-head = s + (e - s) / 2, top-head = bottom-head + 0.125 f + 0.145 z (metres, world z up).

    Args:
        poses: (P, 19, C>=3) SKEL19 poses, world coordinates in metres (a 4th ``valid`` column, as
            :func:`read_4da_skel` returns, is ignored).

    Returns:
        (P, 14, 3) Shelf-14 poses, metres.

    Raises:
        ShapeError: ``poses`` is not (P, 19, >=3).
    """
    xyz = _check_poses("poses", poses, len(SKEL19))
    out = xyz[:, list(SKEL19_TO_SHELF15[:14])].copy()
    neck, pelvis = xyz[:, _SKEL19["neck"]], xyz[:, _SKEL19["pelvis"]]
    r_sho, l_sho = xyz[:, _SKEL19["right_shoulder"]], xyz[:, _SKEL19["left_shoulder"]]
    face = np.cross(neck - pelvis, r_sho - l_sho)
    norm = np.linalg.norm(face, axis=-1, keepdims=True)
    face = face / np.where(norm > 0, norm, 1.0)
    shoulders = (r_sho + l_sho) / 2
    ears = (xyz[:, _SKEL19["right_ear"]] + xyz[:, _SKEL19["left_ear"]]) / 2
    bottom = shoulders + (ears - shoulders) * 0.5
    out[:, _SHELF["bottom_head"]] = bottom
    out[:, _SHELF["top_head"]] = bottom + face * 0.125 + np.array([0.0, 0.0, 0.145])
    return out


def coco17_to_panoptic15(poses: np.ndarray) -> np.ndarray:
    """Map COCO-17 poses to the 15 evaluated Panoptic joints (:data:`PANOPTIC15`).

    Convention: Panoptic's neck and mid-hip have no COCO-17 counterpart; the shoulder midpoint and the
    hip midpoint stand in for them (an approximation: Panoptic's neck sits a few cm above the
    shoulder line). A joint's confidence column, when present, is carried over (mean of the two for
    the midpoints).

    Args:
        poses: (P, 17, C) COCO-17 poses with C = 3 (x, y, z metres) or 4 (x, y, z, conf).

    Returns:
        (P, 15, C) poses in Panoptic-15 order.

    Raises:
        ShapeError: ``poses`` is not (P, 17, 3) or (P, 17, 4).

    Example:
        >>> p = np.zeros((1, 17, 3)); p[0, 5] = [0, 0, 2]; p[0, 6] = [0, 0, 1]
        >>> coco17_to_panoptic15(p)[0, 0].tolist()  # neck = shoulder midpoint
        [0.0, 0.0, 1.5]
    """
    arr = np.asarray(poses, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1] != COCO17.n_joints or arr.shape[2] not in (3, 4):
        raise ShapeError(f"poses must be (P, 17, 3) or (P, 17, 4); got {arr.shape}")
    out = np.zeros((arr.shape[0], PANOPTIC_EVAL_JOINTS, arr.shape[2]))
    for j, name in enumerate(PANOPTIC15):
        if name == "neck":
            out[:, j] = (arr[:, _L_SHO] + arr[:, _R_SHO]) / 2
        elif name == "mid_hip":
            out[:, j] = (arr[:, _L_HIP] + arr[:, _R_HIP]) / 2
        else:
            out[:, j] = arr[:, COCO17.index(name)]
    return out


# --------------------------------------------------------------------------------------------- readers


def read_number_tokens(path: str | Path, what: str) -> tuple[list[str], np.ndarray]:
    """Whitespace-separated numbers of a text file (4D Association's formats), as tokens and float64.

    Args:
        path: ASCII text file.
        what: what the file is, for the error message ("skeleton file", "detection file").

    Raises:
        InputError: missing or unreadable file, or a non-numeric token; the message names the file.
    """
    path = Path(path)
    try:
        tokens = path.read_text(encoding="ascii").split()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    try:
        return tokens, np.asarray(tokens, dtype=np.float64)
    except ValueError:
        raise InputError(f"{path}: non-numeric token in {what}") from None


def read_shelf_gt(path: str | Path) -> dict[int, dict[int, np.ndarray]]:
    """Read the Shelf (or Campus) ``actorsGT.mat`` 3D ground truth (Belagiannis et al. 2014).

    Args:
        path: ``actorsGT.mat`` with cell ``actor3D`` (1 x A actors, each T x 1 frames; a present pose
            is 14 x 3 metres, an absent one is empty).

    Returns:
        ``{actor: {frame: (14, 3) pose}}``, actors 0..A-1, frames 0-based image indices, metres,
        :data:`SHELF14` order. Frames where the actor is absent are left out.

    Raises:
        InputError: the file is missing, unreadable or not laid out as above.
    """
    import scipy.io  # local: scipy is heavy and only readers of .mat files need it

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError) as e:
        raise InputError(f"{path}: cannot read MATLAB file ({e})") from None
    cells = mat.get("actor3D")
    if cells is None or cells.dtype != object or cells.ndim != 2 or cells.shape[0] != 1:
        raise InputError(f"{path}: no 1 x A cell array 'actor3D'")
    out: dict[int, dict[int, np.ndarray]] = {}
    for actor in range(cells.shape[1]):
        frames = np.asarray(cells[0, actor]).reshape(-1)
        poses: dict[int, np.ndarray] = {}
        for frame, pose in enumerate(frames):
            pose = np.asarray(pose)
            if pose.size == 0:
                continue
            if pose.shape != (len(SHELF14), 3):
                raise InputError(f"{path}: actor {actor} frame {frame} is {pose.shape}, not (14, 3)")
            poses[frame] = pose.astype(np.float64)
        out[actor] = poses
    return out


def read_campus_gt(path: str | Path) -> dict[int, dict[int, np.ndarray]]:
    """Read Campus ground truth as re-packaged by Chen et al. (CVPR 2020), ``annotation_3d.json``.

    Args:
        path: JSON list of ``{timestamp (s), poses: [{id, points_3d (14 x 3, centimetres), ...}]}``.

    Returns:
        ``{actor id: {frame: (14, 3) pose}}``, frame = round(timestamp / 0.04), metres, :data:`SHELF14`
        order.

    Raises:
        InputError: the file is missing, not JSON, or not laid out as above.
    """
    path = Path(path)
    out: dict[int, dict[int, np.ndarray]] = {}
    for frame, poses in _read_crossview_frames(path, len(SHELF14)).items():
        for pid, pose in poses.items():
            out.setdefault(pid, {})[frame] = pose
    return {pid: out[pid] for pid in sorted(out)}


def read_crossview_result(
    path: str | Path, with_ids: bool = False
) -> dict[int, list[np.ndarray]] | dict[int, dict[int, np.ndarray]]:
    """Read Chen et al.'s (CVPR 2020) 3D tracking output ``result_3d.json`` (COCO-17, centimetres).

    Args:
        path: JSON list of ``{timestamp (s), poses: [{id, points_3d (17 x 3 cm), scores}]}``.
        with_ids: also return the track ids (large integers).

    Returns:
        ``{frame: [(17, 3) pose, ...]}`` in file order, or with ``with_ids`` ``{frame: {track id:
        (17, 3) pose}}``; frame = round(timestamp / 0.04), metres, COCO-17 order. Frames without an
        entry in the file are absent (an entry with no poses gives an empty list).

    Raises:
        InputError: the file is missing, not JSON, or not laid out as above.
    """
    frames = _read_crossview_frames(Path(path), COCO17.n_joints)
    if with_ids:
        return frames
    return {frame: list(poses.values()) for frame, poses in frames.items()}


def _read_crossview_frames(path: Path, n_joints: int) -> dict[int, dict[int, np.ndarray]]:
    data = read_json_file(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of frames")
    out: dict[int, dict[int, np.ndarray]] = {}
    for item in data:
        try:
            frame = round(float(item["timestamp"]) / CAMPUS_FRAME_S)
            poses = {int(p["id"]): np.asarray(p["points_3d"], dtype=np.float64) for p in item["poses"]}
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}: malformed frame entry ({e!r})") from None
        if frame in out:
            raise InputError(f"{path}: two entries for frame {frame} (t={item['timestamp']} s)")
        for pose in poses.values():
            if pose.shape != (n_joints, 3):
                raise InputError(f"{path}: frame {frame} pose is {pose.shape}, not ({n_joints}, 3)")
        out[frame] = {pid: pose / 100.0 for pid, pose in poses.items()}
    return dict(sorted(out.items()))


def read_4da_skel(path: str | Path, n_joints: int) -> dict[int, dict[int, np.ndarray]]:
    """Read 4D Association's text skeleton file (``gt.txt``: 15 joints; ``skel.txt``: SKEL19).

    Layout (``ParseSkels`` in zhangyux15/4d_association ``src/skel_driver.cpp``), whitespace-separated:
    a header ``J T``; then per frame a person count, and per person an identity followed by a 4 x J
    matrix written row by row: x row, y row, z row (metres) and a valid row (1 or 0; 4D Association
    writes tiny non-zero values for some joints, kept as they are).

    Args:
        path: the text file.
        n_joints: expected J (15 for ``gt.txt``: Shelf-14 then mid-hip; 19 for ``skel.txt``).

    Returns:
        ``{frame offset: {identity: (J, 4) [x, y, z, valid]}}`` for offsets 0..T-1, empty dicts for
        frames without people. For the Shelf files, offset 0 is Shelf frame 300.

    Raises:
        InputError: missing file, a header whose J differs from ``n_joints``, or truncated/extra data.
    """
    path = Path(path)
    tokens, values = read_number_tokens(path, "skeleton file")
    if values.size < 2:
        raise InputError(f"{path}: missing 'J T' header")
    n_j, n_t = int(values[0]), int(values[1])
    if n_j != n_joints:
        raise InputError(f"{path}: header says {n_j} joints; expected {n_joints}")
    out: dict[int, dict[int, np.ndarray]] = {}
    i = 2
    for frame in range(n_t):
        if i >= values.size:
            raise InputError(f"{path}: truncated at frame {frame} of {n_t}")
        n_people = int(values[i])
        i += 1
        people: dict[int, np.ndarray] = {}
        for _ in range(n_people):
            if i + 1 + 4 * n_j > values.size:
                raise InputError(f"{path}: truncated at frame {frame} of {n_t}")
            people[int(values[i])] = values[i + 1 : i + 1 + 4 * n_j].reshape(4, n_j).T.copy()
            i += 1 + 4 * n_j
        out[frame] = people
    if i != values.size:
        raise InputError(f"{path}: {values.size - i} values left after {n_t} frames")
    return out


_PANOPTIC_FILE = re.compile(r"body3DScene_(\d+)\.json$")


def read_panoptic_bodies(folder: str | Path) -> dict[int, list[np.ndarray]]:
    """Read CMU Panoptic ground truth (Joo et al.) from an ``hdPose3d_stage1_coco19`` folder.

    Args:
        folder: folder of ``body3DScene_<frame>.json`` files, each with ``bodies[i].joints19`` =
            19 x (x, y, z centimetres, confidence) in Panoptic COCO-19 order.

    Returns:
        ``{frame: [(19, 4) [x, y, z metres, conf], ...]}``, frames from the file names (HD frame
        numbers), bodies in file order. Confidence is as stored (-1 marks a missing joint).
        World frame: Panoptic's own (y down), unlike Shelf/Campus.

    Raises:
        InputError: the folder has no such files, or a file is unreadable or malformed.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.glob("body3DScene_*.json") if _PANOPTIC_FILE.search(p.name))
    if not files:
        raise InputError(f"{folder}: no body3DScene_*.json files")
    out: dict[int, list[np.ndarray]] = {}
    for path in files:
        frame = int(_PANOPTIC_FILE.search(path.name).group(1))
        data = read_json_file(path)
        try:
            bodies = [np.asarray(b["joints19"], dtype=np.float64).reshape(19, 4) for b in data["bodies"]]
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}: malformed bodies ({e!r})") from None
        for b in bodies:
            b[:, :3] /= 100.0
        out[frame] = bodies
    return out
