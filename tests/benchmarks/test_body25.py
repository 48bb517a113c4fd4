"""OpenPose BODY_25 detections of 4D Association: parser, greedy PAF assembly, COCO-17 mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capture.benchmarks.body25 import (
    BODY25_FOOT,
    BODY25_JOINTS,
    BODY25_PAF_PAIRS,
    SHELF_FIRST_FRAME,
    SHELF_IMAGE_SIZE,
    Body25Frame,
    assemble_people,
    body25_to_coco17,
    read_4da_detections,
    shelf_detections,
)
from core.errors import InputError, ShapeError
from core.skeleton import COCO17

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "shelf"
DETECTIONS = DATA / "4d_association" / "detection"
N_FRAMES = 301


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data {path} is absent")
    return path


# --- a hand-made frame ------------------------------------------------------------------------------


def _frame(candidates: dict[str, list[tuple[float, float, float]]], pafs: dict[tuple[str, str], list]) -> Body25Frame:
    """A frame from candidates per joint name and PAF matrices per (joint a, joint b) name pair."""
    cands = [np.array(candidates.get(name, []), dtype=float).reshape(-1, 3) for name in BODY25_JOINTS]
    mats = []
    for a, b in BODY25_PAF_PAIRS:
        key = (BODY25_JOINTS[a], BODY25_JOINTS[b])
        mats.append(np.array(pafs[key], dtype=float) if key in pafs else np.zeros((len(cands[a]), len(cands[b]))))
    return Body25Frame(tuple(cands), tuple(mats))


def _two_arms(elbow_wrist: list[list[float]]) -> Body25Frame:
    """Two people (left one at x ~ 0.2, right one at x ~ 0.7) with a neck-shoulder-elbow-wrist chain.

    Candidate i of each joint belongs to person i, except the wrists, which are listed as
    [wrist near person 1, wrist near person 0], so the correct elbow-wrist pairing is crossed.
    """
    cands = {
        "Neck": [(0.2, 0.2, 0.9), (0.7, 0.2, 0.9)],
        "RShoulder": [(0.15, 0.25, 0.8), (0.65, 0.25, 0.8)],
        "RElbow": [(0.15, 0.35, 0.7), (0.65, 0.35, 0.7)],
        "RWrist": [(0.66, 0.45, 0.6), (0.16, 0.45, 0.5)],
    }
    diag = [[0.9, 0.0], [0.0, 0.9]]
    pafs = {("Neck", "RShoulder"): diag, ("RShoulder", "RElbow"): diag, ("RElbow", "RWrist"): elbow_wrist}
    return _frame(cands, pafs)


def _index(name: str) -> int:
    return BODY25_JOINTS.index(name)


def test_pair_order_matches_the_readme():
    a = [1, 9, 10, 8, 8, 12, 13, 1, 2, 3, 2, 1, 5, 6, 5, 1, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11]
    b = [8, 10, 11, 9, 12, 13, 14, 2, 3, 4, 17, 5, 6, 7, 18, 0, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]
    assert BODY25_PAF_PAIRS == tuple(zip(a, b, strict=True))
    assert [BODY25_JOINTS[j] for j in BODY25_FOOT] == [
        "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel"
    ]  # fmt: skip


def test_greedy_takes_the_highest_paf_even_when_the_sum_would_prefer_another_pairing():
    # elbow 0 - wrist 1 (its own wrist) 0.9 is taken first; that blocks elbow 0 - wrist 0 (0.85) and
    # elbow 1 - wrist 1 (0.84), so elbow 1 gets wrist 0 (0.1). A max-sum assignment would instead
    # pick 0.85 + 0.84 = 1.69 > 0.9 + 0.1.
    people = assemble_people(_two_arms([[0.85, 0.9], [0.1, 0.84]]), (1001, 501))
    assert people.shape == (2, 25, 3)
    neck_x = people[:, _index("Neck"), 0]
    p0, p1 = int(np.argmin(neck_x)), int(np.argmax(neck_x))
    wrist = _index("RWrist")
    assert people[p0, wrist].tolist() == pytest.approx([0.16 * 1000, 0.45 * 500, 0.5])
    assert people[p1, wrist].tolist() == pytest.approx([0.66 * 1000, 0.45 * 500, 0.6])


def test_crossing_pafs_pair_each_elbow_with_its_high_score_wrist():
    people = assemble_people(_two_arms([[0.2, 0.95], [0.8, 0.3]]), (1001, 501))
    for pose in people:
        elbow, wrist = pose[_index("RElbow")], pose[_index("RWrist")]
        assert abs(elbow[0] - wrist[0]) < 20  # the wrist hangs below its own elbow
    assert sorted(people[:, _index("RWrist"), 2].tolist()) == [0.5, 0.6]


def test_low_paf_is_no_connection_and_global_order_agrees_here():
    frame = _two_arms([[0.04, 0.95], [0.8, 0.04]])
    limb = assemble_people(frame, (1001, 501), order="limb")
    glob = assemble_people(frame, (1001, 501), order="global")
    assert limb.shape == glob.shape == (2, 25, 3)
    np.testing.assert_array_equal(limb[np.argsort(limb[:, 1, 0])], glob[np.argsort(glob[:, 1, 0])])
    # PAF scores at or below the threshold are no connection: the wrists are left out
    weak = _two_arms([[0.04, 0.0], [0.0, 0.04]])
    assert (assemble_people(weak, (1001, 501))[:, _index("RWrist"), 2] == 0).all()
    assert (assemble_people(weak, (1001, 501), min_paf_score=0.01)[:, _index("RWrist"), 2] > 0).all()


def _full_person(x0: float) -> tuple[dict, dict]:
    """One person's 25 candidates (one each) at horizontal offset x0, and all-0.8 PAFs."""
    rng = np.random.default_rng(int(x0 * 100))
    cands = {n: [(x0 + 0.1 * rng.random(), 0.1 + 0.03 * j, 0.7)] for j, n in enumerate(BODY25_JOINTS)}
    pafs = {(BODY25_JOINTS[a], BODY25_JOINTS[b]): [[0.8]] for a, b in BODY25_PAF_PAIRS}
    return cands, pafs


@pytest.mark.parametrize("order", ["limb", "global"])
def test_subsets_built_from_separate_limbs_are_merged_into_one_person(order):
    # In PAF order, Neck-MidHip makes a person and RHip-RKnee a second one (no end assigned yet);
    # MidHip-RHip then joins two people that share no joint: they must be merged.
    cands, pafs = _full_person(0.3)
    people = assemble_people(_frame(cands, pafs), order=order)
    assert people.shape == (1, 25, 3)
    np.testing.assert_allclose(people[0, :, 2], 0.7)
    expected_u = np.array([c[0][0] for c in cands.values()]) * (SHELF_IMAGE_SIZE[0] - 1)
    np.testing.assert_allclose(people[0, :, 0], expected_u)


@pytest.mark.parametrize("order", ["limb", "global"])
def test_subsets_sharing_a_joint_are_not_merged(order):
    # A = Neck0-MidHip0 (0.99); B = Neck1-RShoulder0 (0.98) + RShoulder0-RElbow0 (0.97). The weak
    # Neck0-RShoulder0 link (0.5) joins two people that both have a neck: in global order it reaches
    # case 5 and must not merge them; in limb order the per-limb greedy already blocks it.
    cands = {
        "Neck": [(0.2, 0.2, 0.9), (0.6, 0.2, 0.9)],
        "MidHip": [(0.2, 0.5, 0.9)],
        "RShoulder": [(0.55, 0.25, 0.9)],
        "RElbow": [(0.55, 0.35, 0.9)],
    }
    pafs = {
        ("Neck", "MidHip"): [[0.99], [0.0]],
        ("Neck", "RShoulder"): [[0.5], [0.98]],
        ("RShoulder", "RElbow"): [[0.97]],
    }
    people = assemble_people(_frame(cands, pafs), order=order, min_parts=2)
    assert sorted((p[:, 2] > 0).sum() for p in people) == [2, 3]
    a = next(p for p in people if p[_index("MidHip"), 2] > 0)
    assert a[_index("Neck"), 0] == pytest.approx(0.2 * 1031) and a[_index("RShoulder"), 2] == 0


def test_people_with_too_few_non_foot_parts_or_low_score_are_dropped():
    cands = {n: [(0.5, 0.5 + 0.01 * i, 0.9)] for i, n in enumerate(("LAnkle", "LBigToe", "LSmallToe", "LHeel"))}
    pafs = {("LAnkle", "LBigToe"): [[0.9]], ("LBigToe", "LSmallToe"): [[0.9]], ("LAnkle", "LHeel"): [[0.9]]}
    frame = _frame(cands, pafs)
    assert assemble_people(frame).shape == (0, 25, 3)  # 4 parts, but only one counts (feet do not)
    assert assemble_people(frame, min_parts=1).shape == (1, 25, 3)
    weak = _two_arms([[0.0, 0.9], [0.9, 0.0]])
    assert len(assemble_people(weak, min_mean_score=5.0)) == 0


def test_bad_options_raise():
    with pytest.raises(ValueError, match="valid: limb, global"):
        assemble_people(_two_arms([[0.0, 0.9], [0.9, 0.0]]), order="best")
    with pytest.raises(ShapeError, match="pafs"):
        Body25Frame(tuple(np.zeros((1, 3)) for _ in range(25)), tuple(np.zeros((2, 1)) for _ in range(26)))


def test_body25_to_coco17_maps_by_name():
    poses = np.zeros((2, 25, 3))
    poses[:, :, 0] = np.arange(25)
    out = body25_to_coco17(poses)
    assert out.shape == (2, 17, 3)
    names = {
        "nose": "Nose", "left_eye": "LEye", "right_eye": "REye", "left_ear": "LEar", "right_ear": "REar",
        "left_shoulder": "LShoulder", "right_shoulder": "RShoulder", "left_elbow": "LElbow",
        "right_elbow": "RElbow", "left_wrist": "LWrist", "right_wrist": "RWrist", "left_hip": "LHip",
        "right_hip": "RHip", "left_knee": "LKnee", "right_knee": "RKnee", "left_ankle": "LAnkle",
        "right_ankle": "RAnkle",
    }  # fmt: skip
    for coco, body in names.items():
        assert out[0, COCO17.index(coco), 0] == BODY25_JOINTS.index(body)
    with pytest.raises(ShapeError, match=r"\(P, 25, C\)"):
        body25_to_coco17(np.zeros((1, 17, 3)))


# --- the file format --------------------------------------------------------------------------------


def _write(path: Path, frames: list[Body25Frame], header: str = "4\t{n}") -> None:
    """Write frames the way 4D Association's SerializeDetections does (empty matrix = empty line)."""
    lines = [header.format(n=len(frames))]
    for f in frames:
        for c in f.candidates:
            lines.append(str(len(c)))
            lines += [" ".join(f"{v:g}" for v in row) for row in c.T] if len(c) else [""]
        for m in f.pafs:
            lines += [" ".join(f"{v:g}" for v in row) for row in m] if m.size else [""]
    path.write_text("\n".join(lines) + "\n")


def test_parser_round_trip_with_empty_matrices(tmp_path):
    frames = [_two_arms([[0.85, 0.9], [0.1, 0.84]]), _frame(*_full_person(0.1)), _frame({}, {})]
    _write(tmp_path / "0.txt", frames)
    back = read_4da_detections(tmp_path / "0.txt")
    assert len(back) == 3
    for a, b in zip(frames, back, strict=True):
        assert a.counts == b.counts
        for x, y in zip(a.candidates + a.pafs, b.candidates + b.pafs, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace("4\t", "3\t", 1), "not BODY25"),
        (lambda t: t + "0.5\n", "values left after"),
        (lambda t: t[: len(t) // 2].rsplit("\n", 2)[0], "file ends inside frame 0"),
        (lambda t: t.replace("\n2\n", "\n2.5\n", 1), "frame 0 joint 1 candidate count"),
        (lambda t: t.replace("\n2\n", "\n-2\n", 1), "non-negative integer"),
        (lambda t: t.replace("0.9", "abc", 1), "non-numeric"),
        (lambda t: t.replace("0.9", "nan", 1), "NaN"),
        (lambda t: "", "header"),
    ],
)
def test_parser_errors_name_the_file_and_frame(tmp_path, edit, match):
    path = tmp_path / "1.txt"
    _write(path, [_two_arms([[0.85, 0.9], [0.1, 0.84]])])
    path.write_text(edit(path.read_text()))
    with pytest.raises(InputError, match=match) as info:
        read_4da_detections(path)
    assert "1.txt" in str(info.value)


def test_missing_file_raises(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_4da_detections(tmp_path / "9.txt")


# --- the real files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cam", range(5))
def test_real_file_is_read_completely(cam):
    path = _need(DETECTIONS / f"{cam}.txt")
    frames = read_4da_detections(path)
    assert len(frames) == N_FRAMES
    tokens = path.read_text().split()
    assert tokens[:2] == ["4", str(N_FRAMES)]
    # the token count the counts imply is exactly the file's: nothing skipped, nothing left over
    implied = 2 + sum(
        25 + 3 * sum(f.counts) + sum(f.counts[a] * f.counts[b] for a, b in BODY25_PAF_PAIRS) for f in frames
    )
    assert implied == len(tokens)
    xy = np.concatenate([c[:, :2] for f in frames for c in f.candidates])
    assert (xy >= 0).all() and (xy <= 1).all()


def test_real_file_first_frame_counts():
    frame = read_4da_detections(_need(DETECTIONS / "0.txt"))[0]
    assert frame.counts[0] == 1  # one nose
    np.testing.assert_allclose(frame.candidates[0], [[0.638639, 0.209176, 0.912332]])
    assert frame.counts[1] == 2  # two necks, the first Neck-MidHip matrix is 2 x 2
    np.testing.assert_allclose(frame.pafs[0], [[0.0, 0.827266], [0.787566, 0.0]])


@pytest.fixture(scope="module")
def shelf():
    _need(DETECTIONS)
    return shelf_detections(DETECTIONS, ["0", "1", "2", "3", "4"])


def test_shelf_detections_types_and_frames(shelf):
    assert list(shelf) == ["0", "1", "2", "3", "4"]
    for dets in shelf.values():
        assert [d.frame_idx for d in dets] == list(range(SHELF_FIRST_FRAME, SHELF_FIRST_FRAME + N_FRAMES))
        assert dets[1].stamp_ns - dets[0].stamp_ns == 40_000_000
        for d in dets:
            assert d.poses.dtype == np.float32 and d.poses.shape[1:] == (17, 3)
            conf = d.poses[..., 2]
            assert (conf >= 0).all() and (conf <= 1).all() and (conf > 0).any(axis=1).all()
            assert (d.poses[..., :2][conf == 0] == 0).all()
            vis = conf > 0
            lo = np.where(vis[..., None], d.poses[..., :2], np.inf).min(axis=1)
            np.testing.assert_allclose(d.boxes[:, :2], lo)
            np.testing.assert_allclose(d.boxes[:, 4], conf.sum(1) / vis.sum(1), rtol=1e-6)


def test_shelf_people_per_frame_is_plausible(shelf):
    """Shelf has at most 4 actors; OpenPose adds a few fragments (3-7 part people)."""
    for name, dets in shelf.items():
        counts = np.array([d.n_people for d in dets])
        hist = np.bincount(counts, minlength=8)
        assert counts.max() <= 8, (name, hist)
        assert (counts >= 1).all(), (name, hist)
        assert ((counts >= 2) & (counts <= 5)).mean() >= 0.9, (name, hist)
        whole = np.array([((d.poses[..., 2] > 0).sum(axis=1) >= 8).sum() for d in dets])
        assert whole.max() <= 5 and np.median(whole) in (2, 3, 4), (name, np.bincount(whole))


def test_shelf_detections_lie_on_the_projected_ground_truth(shelf):
    """Scaling (x (W-1), y (H-1)), frame offset 300 and file i = Shelf camera i, checked against GT."""
    pytest.importorskip("scipy.io")
    from calibration.io import read_voxelpose_json
    from capture.benchmarks.datasets import read_shelf_gt

    gt = read_shelf_gt(_need(DATA / "original" / "actorsGT.mat"))
    rig = read_voxelpose_json(_need(DATA / "calibration_shelf.json"), size=SHELF_IMAGE_SIZE)
    limbs = [COCO17.index(n) for n in ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee",
                                       "left_ankle", "right_wrist", "right_elbow", "right_shoulder",
                                       "left_shoulder", "left_elbow", "left_wrist")]  # fmt: skip
    for cam in rig:
        found, total = 0, 0
        for det in shelf[cam.name][::3]:
            for poses in gt.values():
                if det.frame_idx not in poses:
                    continue
                uv = cam.project(poses[det.frame_idx][:12])
                if not ((uv >= 0) & (uv < SHELF_IMAGE_SIZE)).all():
                    continue
                total += 1
                for p in det.poses[:, limbs]:
                    seen = p[:, 2] > 0
                    if seen.sum() >= 6 and np.linalg.norm(p[seen, :2] - uv[seen], axis=1).mean() < 40:
                        found += 1
                        break
        assert total > 50 and found / total > 0.8, (cam.name, found, total)
