"""Real OpenPose BODY_25 bottom-up detections of Shelf, as released with 4D Association.

4D Association (Zhang et al., CVPR 2020, "4D Association Graph for Realtime Multi-person Motion
Capture Using Multiple Video Cameras"; repository zhangyux15/4d_association, ``data/shelf/detection``)
ships, per Shelf camera, the raw OpenPose BODY_25 output of frames 300-600: joint candidates (peaks)
and the part-affinity-field (PAF) score of every candidate pair of every limb. This module reads those
files, assembles people the way OpenPose does (Cao et al., CVPR 2017, "Realtime Multi-Person 2D Pose
Estimation using Part Affinity Fields", §2.4), and maps them to COCO-17 :class:`Detections2D`.

File layout (``ParseDetections``/``SerializeDetections`` in ``src/openpose.cpp``), whitespace
separated: a header ``4 T`` (skeleton type 4 = ``BODY25`` in 4D Association's ``SkelType`` enum,
``src/skel.h``; T frames); then per frame, for each of the 25 joints a candidate count n followed by
a 3 x n matrix written row by row (x row, y row, score row); then for each of the 26 limbs of
:data:`BODY25_PAF_PAIRS` an n_a x n_b matrix (row = candidate of joint a, column = candidate of
joint b) of PAF scores. Empty matrices are written as an empty line, so the parser is a tokenizer
driven by the counts.

Convention: x and y in the file are normalised so that pixels are ``u = x (W - 1)`` and
``v = y (H - 1)``, as 4D Association's own ``evaluate_shelf/main.cpp`` and ``src/main.cpp`` scale them
(``joints.row(0) *= (imgSize.width - 1)``); Shelf is W x H = 1032 x 776. The file's frame k is Shelf
frame 300 + k. 4D Association raises the PAF scores to the power 0.2 after loading, for its own
graph weights; this module keeps the raw OpenPose scores. Candidate scores are OpenPose heat-map
peaks (0.15 to 1.04 in these files); PAF scores are 0 or OpenPose's line-integral mean (0.05 to 1.18).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

import numpy as np

from capture.benchmarks.datasets import read_number_tokens
from capture.sources.detection_files import BODY25_TO_COCO17, OPENPOSE_BODY25, keypoint_boxes
from core.errors import InputError, ShapeError
from core.types import Detections2D

__all__ = [
    "BODY25_FOOT",
    "BODY25_JOINTS",
    "BODY25_PAF_PAIRS",
    "SHELF_FIRST_FRAME",
    "SHELF_FPS",
    "SHELF_IMAGE_SIZE",
    "Body25Frame",
    "ParseOrder",
    "assemble_people",
    "body25_to_coco17",
    "read_4da_detections",
    "shelf_detections",
]

log = logging.getLogger(__name__)

BODY25_JOINTS: Final[tuple[str, ...]] = OPENPOSE_BODY25
"""OpenPose BODY_25 joint names in array order (openpose ``doc/02_output.md``)."""

_J25: Final = len(BODY25_JOINTS)

_PAF_PAIR_NAMES: Final = (
    ("Neck", "MidHip"), ("RHip", "RKnee"), ("RKnee", "RAnkle"), ("MidHip", "RHip"),
    ("MidHip", "LHip"), ("LHip", "LKnee"), ("LKnee", "LAnkle"), ("Neck", "RShoulder"),
    ("RShoulder", "RElbow"), ("RElbow", "RWrist"), ("RShoulder", "REar"), ("Neck", "LShoulder"),
    ("LShoulder", "LElbow"), ("LElbow", "LWrist"), ("LShoulder", "LEar"), ("Neck", "Nose"),
    ("Nose", "REye"), ("Nose", "LEye"), ("REye", "REar"), ("LEye", "LEar"), ("LAnkle", "LBigToe"),
    ("LBigToe", "LSmallToe"), ("LAnkle", "LHeel"), ("RAnkle", "RBigToe"), ("RBigToe", "RSmallToe"),
    ("RAnkle", "RHeel"),
)  # fmt: skip

BODY25_PAF_PAIRS: Final[tuple[tuple[int, int], ...]] = tuple(
    (BODY25_JOINTS.index(a), BODY25_JOINTS.index(b)) for a, b in _PAF_PAIR_NAMES
)
"""The 26 BODY_25 limbs (joint a, joint b) in OpenPose's PAF order (``getPosePartPairs(BODY_25)``,
the same as 4D Association's ``pafDict`` for ``BODY25``).

Example:
    >>> [a for a, _ in BODY25_PAF_PAIRS]
    [1, 9, 10, 8, 8, 12, 13, 1, 2, 3, 2, 1, 5, 6, 5, 1, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11]
    >>> [b for _, b in BODY25_PAF_PAIRS]
    [8, 10, 11, 9, 12, 13, 14, 2, 3, 4, 17, 5, 6, 7, 18, 0, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]
"""

BODY25_FOOT: Final[tuple[int, ...]] = tuple(
    BODY25_JOINTS.index(n) for n in ("LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
)
"""Foot joints, which OpenPose does not count towards a person's part count (too many false
positives; ``removePeopleBelowThresholds`` in ``bodyPartConnectorBase.cpp``)."""

SHELF_IMAGE_SIZE: Final[tuple[int, int]] = (1032, 776)
"""Shelf image (width, height), pixels."""
SHELF_FIRST_FRAME: Final[int] = 300
"""Shelf frame of the first frame in the 4D Association detection files."""
SHELF_FPS: Final[float] = 25.0
"""Frame rate used for synthetic stamps. Shelf states none; Campus, recorded the same way, is 25 fps."""

_SKEL_TYPE_BODY25: Final = 4  # SkelType::BODY25 in 4D Association's src/skel.h


@dataclass(frozen=True, slots=True)
class Body25Frame:
    """Raw bottom-up OpenPose output of one camera frame.

    Attributes:
        candidates: 25 arrays, one per BODY_25 joint, each (n_j, 3) float64 [x, y, score] with x, y
            normalised as in the file (pixels = x (W - 1), y (H - 1)).
        pafs: 26 arrays, one per limb of :data:`BODY25_PAF_PAIRS`, each (n_a, n_b) float64 PAF
            scores between candidate i of joint a and candidate j of joint b; 0 means no connection.

    Raises:
        ShapeError: wrong number of arrays, a candidate array not (n, 3), a PAF matrix whose shape
            disagrees with the candidate counts, or non-finite values.
    """

    candidates: tuple[np.ndarray, ...]
    pafs: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        cands, pafs = tuple(self.candidates), tuple(self.pafs)
        if len(cands) != _J25 or len(pafs) != len(BODY25_PAF_PAIRS):
            raise ShapeError(
                f"a BODY_25 frame needs {_J25} candidate arrays and {len(BODY25_PAF_PAIRS)} PAF "
                f"matrices; got {len(cands)} and {len(pafs)}"
            )
        cands = tuple(self._checked(f"candidates[{j}]", c, (None, 3)) for j, c in enumerate(cands))
        pafs = tuple(
            self._checked(f"pafs[{k}]", p, (len(cands[a]), len(cands[b])))
            for k, (p, (a, b)) in enumerate(zip(pafs, BODY25_PAF_PAIRS, strict=True))
        )
        object.__setattr__(self, "candidates", cands)
        object.__setattr__(self, "pafs", pafs)

    @staticmethod
    def _checked(name: str, array: object, shape: tuple[int | None, int]) -> np.ndarray:
        out = np.array(array, dtype=np.float64)
        if out.size == 0:
            out = out.reshape(shape[0] or 0, shape[1])
        expected = tuple(out.shape[0] if s is None else s for s in shape)
        if out.shape != expected:
            raise ShapeError(f"{name} must be {expected}; got {out.shape}")
        if not np.isfinite(out).all():
            raise ShapeError(f"{name} must be finite; got NaN or inf")
        out.setflags(write=False)
        return out

    @property
    def counts(self) -> tuple[int, ...]:
        """Number of candidates of each of the 25 joints."""
        return tuple(len(c) for c in self.candidates)


def read_4da_detections(path: str | os.PathLike[str]) -> list[Body25Frame]:
    """Read a 4D Association OpenPose detection file (one camera, e.g. ``detection/0.txt``).

    Args:
        path: the text file (layout in the module docstring).

    Returns:
        One :class:`Body25Frame` per frame, in file order (for Shelf, element k is frame 300 + k).

    Raises:
        InputError: missing/unreadable file, a header that is not ``4 T`` (BODY_25), a non-numeric
            token, a count that is not a non-negative integer, non-finite values, a file that ends
            inside a frame, or values left after the T frames; the message names the file and frame.
    """
    path = Path(path)
    tokens, values = read_number_tokens(path, "detection file")
    if values.size < 2:
        raise InputError(f"{path}: missing 'type frames' header")
    if values[0] != _SKEL_TYPE_BODY25:
        raise InputError(f"{path}: skeleton type {tokens[0]} is not BODY25 ({_SKEL_TYPE_BODY25})")
    n_frames = _count(values[1], path, "header frame count")
    if not np.isfinite(values).all():
        raise InputError(f"{path}: NaN or inf in detection file")
    frames, pos = [], 2
    for frame in range(n_frames):
        frame_data, pos = _read_frame(values, pos, path, frame)
        frames.append(frame_data)
    if pos != values.size:
        raise InputError(f"{path}: {values.size - pos} values left after the {n_frames} frames of the header")
    return frames


def _count(value: float, path: Path, what: str) -> int:
    if value < 0 or value != int(value):
        raise InputError(f"{path}: {what} must be a non-negative integer; got {value}")
    return int(value)


def _read_frame(values: np.ndarray, pos: int, path: Path, frame: int) -> tuple[Body25Frame, int]:
    def take(n: int, what: str) -> np.ndarray:
        nonlocal pos
        if pos + n > values.size:
            raise InputError(f"{path}: file ends inside frame {frame} ({what})")
        out = values[pos : pos + n]
        pos += n
        return out

    cands = []
    for j in range(_J25):
        n = _count(take(1, f"count of joint {j}")[0], path, f"frame {frame} joint {j} candidate count")
        cands.append(take(3 * n, f"candidates of joint {j}").reshape(3, n).T)
    pafs = [
        take(len(cands[a]) * len(cands[b]), f"PAF matrix {k}").reshape(len(cands[a]), len(cands[b]))
        for k, (a, b) in enumerate(BODY25_PAF_PAIRS)
    ]
    try:
        return Body25Frame(tuple(cands), tuple(pafs)), pos
    except ShapeError as exc:
        raise InputError(f"{path}: frame {frame}: {exc}") from None


class ParseOrder(StrEnum):
    """Order in which candidate connections are fed to the person-assembly step.

    - ``LIMB``: limb by limb in :data:`BODY25_PAF_PAIRS` order; within a limb, connections sorted by
      PAF score and accepted greedily, each candidate at most once per limb (Cao et al. 2017 §2.4;
      OpenPose up to 1.3 ``connectBodyPartsCpu``; the CVPR 2017 demo code).
    - ``GLOBAL``: all connections of all limbs sorted together by PAF score + 0.1 (score_a + score_b)
      (OpenPose 1.4 and later, ``pafPtrIntoVector``); no per-limb exclusivity step.
    """

    LIMB = "limb"
    GLOBAL = "global"


def assemble_people(
    frame: Body25Frame,
    image_size: tuple[int, int] = SHELF_IMAGE_SIZE,
    *,
    order: ParseOrder | str = ParseOrder.LIMB,
    min_paf_score: float = 0.05,
    min_parts: int = 3,
    min_mean_score: float = 0.4,
) -> np.ndarray:
    """Assemble people from joint candidates and PAF scores, OpenPose style (Cao et al. 2017 §2.4).

    Connections (PAF score > ``min_paf_score``) are visited in ``order`` and merged into person
    subsets with the five cases of OpenPose's ``pafVectorIntoPeopleVector``
    (``src/openpose/net/bodyPartConnectorBase.cpp``): (1) neither end assigned: new person; (2, 3) one
    end assigned: add the other end to that person unless it already has that joint; (4) both in the
    same person: add the PAF score; (5) in two people that share no joint: merge them. A person's
    score is the sum of its candidate scores and accepted PAF scores. People are kept if they have at
    least ``min_parts`` parts not counting the 6 foot joints and score / parts >= ``min_mean_score``
    (OpenPose's ``removePeopleBelowThresholds`` with its defaults, ``minSubsetCnt`` 3 and
    ``minSubsetScore`` 0.4, ``maximizePositives`` off; 4D Association's own ``Associate`` uses 5
    parts and no score test). Unlike OpenPose up to 1.3, there is no special case for the ear limbs
    and no single-candidate people (they could never pass ``min_parts``).

    Args:
        frame: one camera frame of candidates and PAF scores.
        image_size: (width, height) of the image, pixels.
        order: connection order, a :class:`ParseOrder` or its value.
        min_paf_score: PAF scores at or below are no connection. The default is OpenPose's
            ``interThreshold``: every non-zero score in the 4D Association files is a mean of PAF
            samples above it, so the default keeps exactly what OpenPose would consider.
        min_parts: minimum number of non-foot parts of a person.
        min_mean_score: minimum person score per counted part.

    Returns:
        (P, 25, 3) [u_px, v_px, score] in BODY_25 order, u = x (W - 1), v = y (H - 1); a missing
        joint is all zeros. Confidence is the raw candidate score (it can slightly exceed 1). People
        in creation order.

    Raises:
        ValueError: unknown ``order`` (the message lists the valid ones) or a bad image size.
    """
    order = _order(order)
    width, height = (int(v) for v in image_size)
    if width < 2 or height < 2:
        raise ValueError(f"image_size must be at least (2, 2) pixels; got {image_size}")
    connections = _connections(frame, order, min_paf_score)
    people = _group(frame, connections)
    out = []
    for parts, score in people:
        counted = sum(1 for j in range(_J25) if parts[j] >= 0 and j not in BODY25_FOOT)
        if counted < max(min_parts, 1) or score / counted < min_mean_score:
            continue
        pose = np.zeros((_J25, 3))
        for j in range(_J25):
            if parts[j] >= 0:
                pose[j] = frame.candidates[j][parts[j]]
        pose[:, 0] *= width - 1
        pose[:, 1] *= height - 1
        out.append(pose)
    return np.array(out).reshape(len(out), _J25, 3)


def _order(order: ParseOrder | str) -> ParseOrder:
    try:
        return ParseOrder(order)
    except ValueError:
        valid = ", ".join(o.value for o in ParseOrder)
        raise ValueError(f"unknown parse order {order!r}; valid: {valid}") from None


def _connections(frame: Body25Frame, order: ParseOrder, min_paf_score: float) -> list[tuple[float, int, int, int]]:
    """Candidate connections (paf score, limb, index a, index b) in the order they are grouped."""
    out: list[tuple[float, int, int, int]] = []
    if order is ParseOrder.GLOBAL:
        ranked = []
        for k, (a, b) in enumerate(BODY25_PAF_PAIRS):
            sa, sb = frame.candidates[a][:, 2], frame.candidates[b][:, 2]
            for i, j in zip(*np.nonzero(frame.pafs[k] > min_paf_score), strict=True):
                paf = float(frame.pafs[k][i, j])
                ranked.append((paf + 0.1 * (sa[i] + sb[j]), paf, k, int(i), int(j)))
        ranked.sort(key=lambda c: (-c[0], c[2], c[3], c[4]))
        return [c[1:] for c in ranked]
    for k in range(len(BODY25_PAF_PAIRS)):
        paf = frame.pafs[k]
        ii, jj = np.nonzero(paf > min_paf_score)
        ranked = sorted(zip(ii.tolist(), jj.tolist(), strict=True), key=lambda ij: (-paf[ij], ij))
        used_a, used_b = set(), set()
        for i, j in ranked:
            if i not in used_a and j not in used_b:
                used_a.add(i)
                used_b.add(j)
                out.append((float(paf[i, j]), k, i, j))
    return out


def _group(frame: Body25Frame, connections: list[tuple[float, int, int, int]]) -> list[tuple[list[int], float]]:
    """People as (candidate index per joint, -1 if none; score), OpenPose's five merge cases."""
    assigned = [[-1] * len(c) for c in frame.candidates]  # person of each candidate
    people: list[list] = []  # [parts (25,), score]
    for paf, k, i, j in connections:
        a, b = BODY25_PAF_PAIRS[k]
        pa, pb = assigned[a][i], assigned[b][j]
        if pa < 0 and pb < 0:
            parts = [-1] * _J25
            parts[a], parts[b] = i, j
            assigned[a][i] = assigned[b][j] = len(people)
            people.append([parts, frame.candidates[a][i, 2] + frame.candidates[b][j, 2] + paf])
        elif pa < 0 or pb < 0:
            person = pa if pa >= 0 else pb
            joint, cand = (b, j) if pa >= 0 else (a, i)
            parts = people[person][0]
            if parts[joint] < 0:
                parts[joint] = cand
                assigned[joint][cand] = person
                people[person][1] += frame.candidates[joint][cand, 2] + paf
        elif pa == pb:
            people[pa][1] += paf
        else:
            keep, gone = min(pa, pb), max(pa, pb)
            first, second = people[keep][0], people[gone][0]
            if all(x < 0 or y < 0 for x, y in zip(first, second, strict=True)):
                for joint in range(_J25):
                    if first[joint] < 0:
                        first[joint] = second[joint]
                people[keep][1] += people[gone][1] + paf
                del people[gone]
                for row in assigned:
                    for c, p in enumerate(row):
                        row[c] = keep if p == gone else (p - 1 if p > gone else p)
    return [(parts, float(score)) for parts, score in people]


def body25_to_coco17(poses: np.ndarray) -> np.ndarray:
    """Map BODY_25 poses to COCO-17 by joint name (Neck, MidHip and the feet are dropped).

    Args:
        poses: (P, 25, C) BODY_25 poses, e.g. C = 3 [u_px, v_px, conf].

    Returns:
        (P, 17, C) COCO-17 poses, same dtype and columns.

    Raises:
        ShapeError: ``poses`` is not (P, 25, C).

    Example:
        >>> p = np.zeros((1, 25, 3)); p[0, 16] = [5.0, 6.0, 0.9]  # LEye
        >>> body25_to_coco17(p)[0, 1].tolist()  # COCO-17 left_eye
        [5.0, 6.0, 0.9]
    """
    poses = np.asarray(poses)
    if poses.ndim != 3 or poses.shape[1] != _J25:
        raise ShapeError(f"poses must be (P, {_J25}, C); got {poses.shape}")
    return poses[:, list(BODY25_TO_COCO17)].copy()


def shelf_detections(
    folder: str | os.PathLike[str],
    rig_names: Sequence[str],
    *,
    image_size: tuple[int, int] = SHELF_IMAGE_SIZE,
    first_frame: int = SHELF_FIRST_FRAME,
    fps: float = SHELF_FPS,
    order: ParseOrder | str = ParseOrder.LIMB,
    min_paf_score: float = 0.05,
    min_parts: int = 3,
    min_mean_score: float = 0.4,
) -> dict[str, list[Detections2D]]:
    """COCO-17 detections of every Shelf camera from 4D Association's OpenPose files.

    Each file ``{i}.txt`` of ``folder`` is read, people are assembled (:func:`assemble_people`, whose
    options are passed on) and mapped to COCO-17 (:func:`body25_to_coco17`). File i is camera i of
    4D Association's ``calibration.json``, which is Shelf's camera i (``P{i}.txt``).

    Convention: ``frame_idx`` = ``first_frame`` + position in the file (Shelf frames 300-600);
    ``stamp_ns`` = round(frame_idx * 1e9 / fps), a synthetic clock (Shelf has no time stamps).
    Confidences are the OpenPose candidate scores clipped to [0, 1] (a few raw scores reach 1.04).
    Boxes span the visible COCO-17 joints; box score = mean confidence of those joints. People
    without any COCO-17 joint (possible only from Neck, MidHip and feet) are left out.

    Args:
        folder: the ``detection`` folder holding ``0.txt`` .. ``{C-1}.txt``.
        rig_names: camera names to give, in file order (file i gets ``rig_names[i]``).
        image_size: (width, height) of every camera, pixels.
        first_frame: frame index of the first frame in the files.
        fps: frame rate of the synthetic stamps, frames per second.
        order: see :func:`assemble_people`.
        min_paf_score: see :func:`assemble_people`.
        min_parts: see :func:`assemble_people`.
        min_mean_score: see :func:`assemble_people`.

    Returns:
        ``{camera name: [Detections2D per frame]}``, poses (P, 17, 3) float32 [u_px, v_px, conf].

    Raises:
        InputError: a file is missing or malformed, or the files differ in frame count.
    """
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive; got {fps}")
    folder = Path(folder)
    out: dict[str, list[Detections2D]] = {}
    n_frames = None
    for i, name in enumerate(rig_names):
        path = folder / f"{i}.txt"
        frames = read_4da_detections(path)
        if n_frames is not None and len(frames) != n_frames:
            raise InputError(f"{path}: {len(frames)} frames; {folder / '0.txt'} has {n_frames}")
        n_frames = len(frames)
        dets = []
        for k, frame in enumerate(frames):
            body = assemble_people(
                frame, image_size, order=order, min_paf_score=min_paf_score, min_parts=min_parts,
                min_mean_score=min_mean_score,
            )  # fmt: skip
            poses = body25_to_coco17(body)
            poses[..., 2] = np.clip(poses[..., 2], 0.0, 1.0)
            visible = poses[..., 2] > 0
            poses, visible = poses[visible.any(axis=1)], visible[visible.any(axis=1)]
            boxes = keypoint_boxes(poses)
            boxes[:, 4] = (poses[..., 2] * visible).sum(axis=1) / np.maximum(visible.sum(axis=1), 1)
            frame_idx = first_frame + k
            dets.append(Detections2D(str(name), frame_idx, round(frame_idx * 1e9 / fps), poses, boxes))
        out[str(name)] = dets
        log.debug("%s: %d frames for camera %s", path, len(dets), name)
    return out
