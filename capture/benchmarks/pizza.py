"""``mvcap bench pizza``: are four people close together matched across five real landscape views?

Data: ``panoptic/pizza_5views`` (see the data README): one moment of a CMU Panoptic dome sequence,
five 960x512 frames shrunk from the calibrated 1920x1080 ones with side bars (:data:`IMAGE_MAP`),
and its Faster-VoxelPose ``customized_sequence`` calibration (a list of VoxelPose cameras, which
:func:`calibration.io.read_calibration` reads). No ground truth: who is who was
labelled by eye from the images (clothing), as each person's head position in each frame
(:data:`HEADS`); a detection takes the label of the annotated head nearest to its own face keypoints
(one-to-one per view, :func:`scipy.optimize.linear_sum_assignment`), so the labels do not depend on
the detector's ordering.

Each frame is detected with YOLO11n-pose, its detections get part colour histograms
(:func:`capture.detect.reid.part_histograms`, on the frame's own pixels) and are mapped to
calibration pixels; one :class:`capture.pipeline.FrameReconstructor` per matching variant groups
them (``filter = "none"``: the still's own triangulations). Pass: each of G, M, P, B forms exactly
one group holding every view where the node keeps a detection of them, and no group mixes labels.

``--affinity`` also prints, for the multi-way + appearance variant, the labelled affinity blocks
(geometric, appearance, and their combination, :mod:`matching.affinity`): the check that showed Dong
et al.'s absolute geometric mean dropping B from views 0 and 4 (B's colour histograms score 0.39-0.81
between his own views, other pairs up to 0.93), which the default ratio combination does not.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from calibration.camera import CameraRig
from core.config import Config, FusionConfig, ImageMap
from core.skeleton import COCO17
from core.types import Detections2D

__all__ = ["EXPECTED_VIEWS", "HEADS", "IMAGE_MAP", "VARIANTS", "check_groups", "label_detections", "run_pizza"]

FRAME_WH = (960, 512)
CALIB_WH = (1920, 1080)
IMAGE_MAP = ImageMap(scale_x=0.474074, scale_y=0.474074, pad_x=24.889, pad_y=0.0)
"""960x512 frames from the 1920x1080 calibrated images: 1920 * 0.474074 = 910 px wide, 25 px bars."""

PEOPLE = ("G", "M", "P", "B")
"""G grey T-shirt, M maroon polo, P pink/white check shirt, B blue/white check shirt; X (not in the
check) a far bystander in the doorway of view 2."""

HEADS: dict[str, tuple[tuple[float, float] | None, ...]] = {
    # (u, v) frame pixels of each person's head per view 0..4, labelled by eye; None: not in view.
    "G": ((575, 195), (275, 225), (710, 195), (385, 385), (425, 135)),
    "M": ((400, 170), (370, 475), (645, 100), (735, 220), (170, 120)),
    "P": ((165, 150), (765, 285), (375, 105), (530, 5), (370, 60)),
    "B": ((215, 165), (715, 225), (330, 140), (415, 15), (520, 100)),
    "X": (None, None, (530, 110), None, None),
}

EXPECTED_VIEWS = {"G": (0, 1, 2, 3, 4), "M": (0, 2, 3, 4), "P": (0, 1, 2, 3, 4), "B": (0, 1, 2, 3, 4)}
"""Views where each person is visible with a body (by eye); M shows only the top of his head at the
bottom edge of view 1, which the node drops (too few joints)."""

MAX_HEAD_PX = 80.0
"""A detection whose face is further than this (frame pixels) from its assigned head is unlabelled."""

VARIANTS: tuple[tuple[str, dict], ...] = (
    ("epipolar", {"method": "epipolar", "appearance_weight": 0.0}),
    ("multiway", {"method": "multiway", "appearance_weight": 0.0}),
    ("multiway + appearance", {"method": "multiway", "appearance_weight": 0.5}),
    ("pairwise + appearance", {"method": "pairwise", "appearance_weight": 0.5}),
    (
        "multiway + appearance, geometric mean",
        {"method": "multiway", "appearance_weight": 0.5, "combination": "geometric_mean"},
    ),
)
"""(name, ``[matching]`` overrides) of each variant; ``combination`` (not a ``[matching]`` key) sets the
multi-way matcher's :attr:`matching.affinity.AffinityConfig.combination`."""


def read_pizza_rig(path: Path) -> CameraRig:
    """The dataset's 5 cameras (``customized_sequence`` list of VoxelPose cameras, millimetres) as a rig
    of 1920x1080 cameras named "0".."4", world in metres; raises CalibrationError on a bad file."""
    from calibration.io import read_calibration

    return read_calibration(path, size=CALIB_WH)


def _face_px(pose: np.ndarray, min_conf: float) -> np.ndarray | None:
    """(2,) mean of a (J, 3) COCO-17 pose's confident face keypoints (else shoulders), or None."""
    for joints in ((0, 1, 2, 3, 4), (5, 6)):
        p = pose[list(joints)]
        ok = p[:, 2] >= min_conf
        if ok.any():
            return p[ok, :2].mean(axis=0)
    return None


def label_detections(view: int, poses: np.ndarray, min_conf: float = 0.3) -> list[str | None]:
    """Label of each detection of one view (frame pixels, (P, 17, 3)): the annotated head (:data:`HEADS`)
    assigned to its face one-to-one by least total distance; None beyond :data:`MAX_HEAD_PX` or unassigned."""
    from scipy.optimize import linear_sum_assignment

    names = [n for n, h in HEADS.items() if h[view] is not None]
    heads = np.array([HEADS[n][view] for n in names], dtype=np.float64)
    faces = [_face_px(p, min_conf) for p in poses]
    cost = np.full((len(faces), len(names)), 1e6)
    for i, f in enumerate(faces):
        if f is not None:
            cost[i] = np.linalg.norm(heads - f, axis=1)
    labels: list[str | None] = [None] * len(faces)
    for i, j in zip(*linear_sum_assignment(cost), strict=True):
        if cost[i, j] <= MAX_HEAD_PX:
            labels[i] = names[j]
    return labels


def detect_views(data: Path) -> tuple[list[Detections2D], list[list[str | None]], float]:
    """Detect, describe and map the 5 frames; returns the calibration-pixel detections (with
    embeddings), each view's labels, and the detection wall time, seconds."""
    import cv2

    from capture.detect.letterbox import input_hw_for_frame
    from capture.detect.registry import make_detector
    from capture.detect.reid import part_histograms
    from capture.sources.image_map import map_detections

    det = make_detector("yolo11n-pose", input_hw=input_hw_for_frame(FRAME_WH, 640, None))
    views, labels, t0 = [], [], time.perf_counter()
    for v in range(len(HEADS["G"])):
        image = cv2.imread(str(data / f"view_{v}.jpg"))
        if image is None:
            from core.errors import InputError

            raise InputError(f"{data / f'view_{v}.jpg'}: unreadable image")
        poses, boxes = det.detect(image)
        emb = part_histograms(image, poses, boxes)
        labels.append(label_detections(v, poses))
        d = Detections2D(camera=str(v), frame_idx=0, stamp_ns=0, poses=poses, boxes=boxes, embeddings=emb)
        views.append(map_detections(d, IMAGE_MAP))
    return views, labels, time.perf_counter() - t0


def _kept(d: Detections2D, m) -> np.ndarray:
    """Detector indices of the detections the node keeps, in its order (``FrameReconstructor._prepare``)."""
    keep = (d.boxes[:, 4] >= m.min_box_score) & ((d.poses[..., 2] >= m.min_joint_conf).sum(1) >= m.min_valid_joints)
    return np.flatnonzero(keep)


def check_groups(groups: list[list[tuple[int, int]]], labels: list[list[str | None]], kept: list[np.ndarray]) -> dict:
    """Whether every person forms one group over every view where the node keeps them, no group mixed.

    Args:
        groups: per group, (view, detector index) pairs.
        labels: per view, each detection's label (:func:`label_detections`).
        kept: per view, the detector indices the node keeps.

    Returns:
        ``{"ok": bool, "problems": [str], "matched_views": {person: [n matched, n kept views]}}``.
    """
    problems, matched = [], {}
    glabels = [{labels[c][i] for c, i in g} for g in groups]
    for k, ls in enumerate(glabels):
        if len(ls) > 1:
            problems.append(f"group {k} mixes {sorted(map(str, ls))}")
    for person in PEOPLE:
        seen = sorted(c for c in range(len(kept)) if any(labels[c][i] == person for i in kept[c]))
        mine = [g for g in groups if any(labels[c][i] == person for c, i in g)]
        views = sorted({c for g in mine for c, i in g if labels[c][i] == person})
        matched[person] = [len(views) if len(mine) == 1 else max((len(g) for g in mine), default=0), len(seen)]
        if len(mine) != 1:
            problems.append(f"{person} is in {len(mine)} groups (kept in views {seen})")
        elif views != seen:
            problems.append(f"{person} matched in views {views}, kept in {seen}")
    return {"ok": not problems, "problems": problems, "matched_views": matched}


def affinity_blocks(rig: CameraRig, views: list[Detections2D], labels: list[list[str | None]], overrides: dict) -> dict:
    """The multi-way matcher's affinity terms between every pair of kept detections, labelled.

    Args:
        rig: the 5 cameras.
        views: per view, the calibration-pixel detections with descriptors (:func:`detect_views`).
        labels: per view, each detection's label.
        overrides: ``[matching]`` overrides of a ``"pairwise"`` or ``"multiway"`` variant.

    Returns:
        ``{"names": ["<view><label>"] (N), "geometric", "appearance", "combined": (N, N) arrays}``,
        detections in view order (the matcher's), ``?`` for an unlabelled one.

    Raises:
        ConfigError: the overrides name the epipolar matcher, which has no such affinity.
    """
    from capture.pipeline import make_matcher
    from core.errors import ConfigError
    from matching.affinity import (
        appearance_affinity,
        epipolar_distances,
        frame_affinity,
        geometric_affinity,
        stack_fundamentals,
        stack_views,
    )

    fields = dict(overrides)
    combination = fields.pop("combination", None)
    m = dataclasses.replace(Config().matching, **fields)
    matcher = make_matcher(rig, m)
    if not hasattr(matcher, "affinity"):
        raise ConfigError(f"matching method {m.method!r} has no affinity to print")
    cfg = matcher.affinity if combination is None else dataclasses.replace(matcher.affinity, combination=combination)
    kept = [_kept(d, m) for d in views]
    pts = [
        cam.undistort_px(d.poses[k, :, :2].reshape(-1, 2)).reshape(len(k), -1, 2)
        for cam, d, k in zip(rig, views, kept, strict=True)
    ]
    conf = [d.poses[k, :, 2].astype(np.float64) for d, k in zip(views, kept, strict=True)]
    desc = [d.embeddings[k].astype(np.float64) for d, k in zip(views, kept, strict=True)]
    F = stack_fundamentals(rig)
    stacked, cf, view_of, _ = stack_views(pts, conf)
    geo = geometric_affinity(
        epipolar_distances(stacked, cf, view_of, F, cfg.min_conf, cfg.min_common), view_of, cfg.half_px, cfg.steepness
    )
    app, _ = appearance_affinity(
        np.concatenate(desc), np.ones(view_of.size, bool), view_of, cfg.cos_floor, n_parts=cfg.n_parts
    )
    combined, _, _ = frame_affinity(pts, conf, F, desc, cfg)
    names = [f"{c}{labels[c][i] or '?'}" for c in range(len(views)) for i in kept[c]]
    return {"names": names, "geometric": geo, "appearance": app, "combined": combined}


def format_blocks(blocks: dict) -> str:
    """The labelled (N, N) matrices of :func:`affinity_blocks`, two decimals."""
    names = blocks["names"]
    lines = []
    for key in ("geometric", "appearance", "combined"):
        lines.append(f"{key} affinity:")
        lines.append("     " + "".join(f"{n:>6}" for n in names))
        for n, row in zip(names, blocks[key], strict=True):
            lines.append(f"{n:>5}" + "".join(f"{x:6.2f}" for x in row))
    return "\n".join(lines)


def run_pizza(data: Path, variants: tuple[tuple[str, dict], ...] = VARIANTS, affinity_of: str | None = None) -> dict:
    """Detect once, then reconstruct the still with each matching variant.

    Args:
        data: the ``pizza_5views`` folder.
        variants: (name, ``[matching]`` overrides) pairs; an override ``combination`` goes to the
            multi-way matcher's affinity settings instead.
        affinity_of: the name of a variant whose affinity blocks (:func:`affinity_blocks`) to add
            as ``"affinity"``; None: none.

    Returns:
        ``{"detect_s": float, "labels": per view labels, "variants": {name: {"groups": [[(view, det
        index, (u, v) box centre px of the frame)]], "positions_m": [(x, y, z)], "check": ...,
        "reconstruct_ms": float}}, "affinity": dict (with ``affinity_of``)}``; positions are each group's
        mean triangulated joint, metres; ``reconstruct_ms`` is wall time after one untimed warm-up run
        (lazy imports).

    Raises:
        CalibrationError, InputError: unreadable calibration or image; ConfigError: no cached model
        and no means to export it.
    """
    from capture.pipeline import FrameReconstructor

    rig = read_pizza_rig(data / "calibration.json")
    views, labels, detect_s = detect_views(data)
    cfg = Config()
    out = {"detect_s": detect_s, "labels": labels, "variants": {}}
    for name, overrides in variants:
        fields = dict(overrides)
        combination = fields.pop("combination", None)
        m = dataclasses.replace(cfg.matching, **fields)
        kept = [_kept(d, m) for d in views]
        recs = [FrameReconstructor(rig, COCO17, m, cfg.triangulation, FusionConfig(filter="none")) for _ in range(2)]
        if combination is not None:
            for r in recs:
                r.matcher.affinity = dataclasses.replace(r.matcher.affinity, combination=combination)
        warm, rec = recs
        warm.process(views, 0)
        t0 = time.perf_counter()
        res = rec.process(views, 0)
        ms = (time.perf_counter() - t0) * 1e3
        groups, rows, pos = [], [], []
        for g, members in enumerate(res.groups):
            det = [(int(c), int(kept[c][i])) for c, i in members]
            groups.append(det)
            rows.append([(c, i, _box_centre_frame(views[c].boxes[i])) for c, i in det])
            ok = res.poses[g, :, 3] > 0
            pos.append(tuple(float(x) for x in res.poses[g, ok, :3].mean(axis=0)) if ok.any() else None)
        out["variants"][name] = {
            "groups": rows,
            "positions_m": pos,
            "check": check_groups(groups, labels, kept),
            "reconstruct_ms": ms,
        }
    if affinity_of is not None:
        out["affinity"] = affinity_blocks(rig, views, labels, dict(variants)[affinity_of])
    return out


def _box_centre_frame(box: np.ndarray) -> tuple[float, float]:
    """(u, v) centre of a calibration-pixel box, back in frame pixels."""
    u = (box[0] + box[2]) / 2 * IMAGE_MAP.scale_x + IMAGE_MAP.pad_x
    v = (box[1] + box[3]) / 2 * IMAGE_MAP.scale_y + IMAGE_MAP.pad_y
    return round(float(u), 1), round(float(v), 1)


def format_result(res: dict) -> str:
    """The printed report: per variant one line per group and a summary line."""
    lines = [f"detection + re-ID, 5 views: {res['detect_s']:.2f} s"]
    for name, r in res["variants"].items():
        lines.append(f"{name} ({r['reconstruct_ms']:.1f} ms):")
        for rows, p in zip(r["groups"], r["positions_m"], strict=True):
            lab = {res["labels"][c][i] or "?" for c, i, _ in rows}
            where = "?" if p is None else f"({p[0]:.2f}, {p[1]:.2f}, {p[2]:.2f})"
            views = ", ".join(str(c) for c, _, _ in rows)
            lines.append(f"  person at {where} m: views {views}  [{'/'.join(sorted(lab))}]")
        c = r["check"]
        per = ", ".join(f"{k} {a}/{b}" for k, (a, b) in c["matched_views"].items())
        n2 = sum(len(rows) >= 2 for rows in r["groups"])
        verdict = "PASS" if c["ok"] else "FAIL: " + "; ".join(c["problems"])
        lines.append(f"  {n2} people matched in >= 2 views; views matched / kept: {per}; {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``mvcap bench pizza [--data DIR]``: print each variant's groups and whether everyone matched."""
    import argparse
    import os
    import sys

    from capture.benchmarks.common import default_data_dir
    from core.errors import CaptureError

    p = argparse.ArgumentParser(prog="mvcap bench pizza", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(default_data_dir()), help="folder holding panoptic/pizza_5views")
    p.add_argument(
        "--affinity", action="store_true", help="also print the multi-way + appearance variant's affinity blocks"
    )
    args = p.parse_args(argv)
    data = Path(args.data) / "panoptic" / "pizza_5views"
    if not data.is_dir():
        print(f"mvcap bench pizza: error: {data}: dataset folder not found (see --data)", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        res = run_pizza(data, affinity_of="multiway + appearance" if args.affinity else None)
    except CaptureError as exc:
        print(f"mvcap bench pizza: error: {exc}", file=sys.stderr)
        return 2
    print(format_result(res))
    if "affinity" in res:
        print(format_blocks(res["affinity"]))
    return 0 if all(r["check"]["ok"] for r in res["variants"].values()) else 1
