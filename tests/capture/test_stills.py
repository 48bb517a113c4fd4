"""Stills: images of independent moments are reconstructed each on its own, no track carried over."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from synth import project_people

from capture.benchmarks.synthetic import person, ring_rig
from capture.pipeline import FrameReconstructor
from capture.sources.frames import open_source
from core.config import FusionConfig
from core.skeleton import COCO17
from core.types import Detections2D


def _stamps(tmp_path: Path, n: int, stills: bool) -> list[int]:
    folder = tmp_path / "moments"
    folder.mkdir(exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"m{i}.png"), np.zeros((8, 8, 3), np.uint8))
    with open_source(str(folder), stills=stills) as src:
        return [stamp for _, stamp, _ in src]


def _run(stamps: list[int], moments: list[list[np.ndarray]], filt: str) -> list:
    rig = ring_rig()
    rec = FrameReconstructor(rig, COCO17, fusion=FusionConfig(filter=filt))
    out = []
    for k, (stamp, people) in enumerate(zip(stamps, moments, strict=True)):
        views = [
            Detections2D(cam.name, k, stamp, d.astype(np.float32), np.tile([0, 0, 1, 1, 0.9], (len(people), 1)))
            for cam, d in zip(rig, project_people(rig, people), strict=True)
        ]
        out.append(rec.process(views, stamp))
    return out


def test_stills_carry_no_track_between_moments(tmp_path: Path) -> None:
    # Three moments: two people who, read as video, would move 0.2 m between frames (inside the
    # tracker's gates); in the last moment one of them is gone.
    moments = [
        [person((0.0, 0.0)), person((1.2, 0.3), 1.0)],
        [person((0.2, 0.0)), person((1.0, 0.3), 1.0)],
        [person((0.4, 0.1))],
    ]
    for filt in ("ukf", "none"):
        video = _run(_stamps(tmp_path, 3, stills=False), moments, filt)
        assert set(video[1].track_ids) == set(video[0].track_ids)  # as video: tracks carried over
        stills = _run(_stamps(tmp_path, 3, stills=True), moments, filt)
        ids = [set(r.track_ids.tolist()) for r in stills]
        assert [len(s) for s in ids] == [2, 2, 1], (filt, ids)  # everybody published at their own moment
        assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
        for r, people in zip(stills, moments, strict=True):
            # each moment's output is its own triangulation, nothing filtered in from another moment
            truth = np.array(people)[:, :, :3]
            got = r.poses[:, :, :3]
            err = np.linalg.norm(got[:, None] - truth[None], axis=-1).mean(axis=-1).min(axis=1)
            assert (err < 1e-3).all(), (filt, err)


def test_stills_are_matched_multi_way_and_video_by_epipolar_grouping(tmp_path: Path) -> None:
    """[matching] method "auto" (the default) is resolved by the run: multi-way matching for stills,
    epipolar grouping otherwise; an explicit method is kept."""
    from capture.service.node import Node
    from core.config import CameraSource, Config, MatchingConfig
    from matching.epipolar import EpipolarMatcher
    from matching.multiway import MultiwayMatcher

    assert MatchingConfig().method == "auto"
    assert MatchingConfig().resolved(stills=True).method == "multiway"
    assert MatchingConfig().resolved(stills=False).method == "epipolar"
    assert MatchingConfig(method="pairwise").resolved(stills=True).method == "pairwise"
    rig = ring_rig(3)
    for stills, kind in ((True, MultiwayMatcher), (False, EpipolarMatcher)):
        cams = tuple(CameraSource(c.name, f"{c.name}.json", stills=stills) for c in rig)
        node = Node(rig, Config(calibration="rig.json", cameras=cams), tmp_path / f"run{stills}")
        assert isinstance(node.reconstructor.matcher, kind)
