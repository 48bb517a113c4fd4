"""BVH export: constant bone lengths, rotations solved from 3D joints, read back by bvhio and by our own FK."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from capture.outputs import PosesWriter
from capture.outputs.bvh import (
    BvhExporter,
    BvhWriter,
    PersonRig,
    bvh_hierarchy,
    parse_up_axis,
    up_axis_from_text,
    yup_from_world,
    zup_from_world,
)
from capture.outputs.bvh_solve import RIG, PoseSolver, RestEstimator, RestPose, coco_positions, forward_kinematics
from capture.outputs.export import export_take
from core.errors import InputError, ShapeError
from core.skeleton import COCO17
from core.types import Poses3D

NAMES = [j.name for j in RIG]
LENGTHS = {
    "hip": 0.11, "thigh": 0.43, "shin": 0.40, "torso": 0.52, "clav": 0.19, "upper": 0.30, "fore": 0.25, "neck": 0.22,
}  # fmt: skip
FACE = {
    "nose": (0.0, -0.02, 0.10), "left_eye": (0.03, 0.015, 0.08), "right_eye": (-0.03, 0.015, 0.08),
    "left_ear": (0.07, 0.0, 0.0), "right_ear": (-0.07, 0.0, 0.0),
}  # fmt: skip


def _dirs(rng: np.random.Generator, base: tuple[float, float, float], n: int, amp: float = 0.8) -> np.ndarray:
    """Smoothly varying unit directions around ``base``."""
    t = np.arange(n)[:, None]
    d = np.asarray(base) + amp * np.sin(rng.uniform(0.05, 0.2, 3) * t + rng.uniform(0, 6, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def synthetic_take(rng: np.random.Generator, n: int = 40) -> np.ndarray:
    """(T, 17, 4) COCO-17 joints, Y up, with constant bone lengths and a rigid face, built without the rig.

    Each bone direction moves on its own (any angle between hip line, spine and shoulders), so the
    solver meets poses a human body would not make; only the lengths are constant.
    """
    j: dict[str, np.ndarray] = {}
    root = np.stack([np.linspace(0, 1, n), 0.9 + 0.05 * np.sin(np.arange(n) * 0.3), np.sin(np.arange(n) * 0.1)], 1)
    hip, spine, shoulders = _dirs(rng, (1, 0, 0), n), _dirs(rng, (0, 1, 0), n), _dirs(rng, (1, 0, 0.2), n)
    j["left_hip"], j["right_hip"] = root + LENGTHS["hip"] * hip, root - LENGTHS["hip"] * hip
    neck = root + LENGTHS["torso"] * spine
    j["left_shoulder"], j["right_shoulder"] = neck + LENGTHS["clav"] * shoulders, neck - LENGTHS["clav"] * shoulders
    for s in ("left", "right"):
        j[f"{s}_elbow"] = j[f"{s}_shoulder"] + LENGTHS["upper"] * _dirs(rng, (0, -1, 0), n)
        j[f"{s}_wrist"] = j[f"{s}_elbow"] + LENGTHS["fore"] * _dirs(rng, (0, -1, 0.5), n)
        j[f"{s}_knee"] = j[f"{s}_hip"] + LENGTHS["thigh"] * _dirs(rng, (0, -1, 0), n)
        j[f"{s}_ankle"] = j[f"{s}_knee"] + LENGTHS["shin"] * _dirs(rng, (0, -1, -0.3), n)
    head = neck + LENGTHS["neck"] * _dirs(rng, (0, 1, 0), n, amp=0.4)
    rot = Rotation.from_rotvec(np.cumsum(rng.normal(0, 0.05, (n, 3)), axis=0)).as_matrix()
    for name, offset in FACE.items():
        j[name] = head + rot @ np.asarray(offset)
    pts = np.ones((n, 17, 4))
    for k, name in enumerate(COCO17.joints):
        pts[:, k, :3] = j[name]
    return pts


def _fk_coco(motion, rest: RestPose) -> np.ndarray:
    pos, _ = forward_kinematics(motion.root, motion.local, rest)
    return coco_positions(pos)


def read_bvh_with_own_fk(path: Path) -> tuple[list[str], np.ndarray, float]:
    """Our own reading of a BVH file: joint names, FK positions (T, K, 3) in file units, frame time."""
    head, motion = path.read_text().split("MOTION\n")
    tok = head.split()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    stack: list[int] = []  # open blocks: a joint's index, -1 for an End Site
    pending, i = -1, 1
    while i < len(tok):
        if tok[i] in ("ROOT", "JOINT"):
            parents.append(stack[-1] if stack else -1)
            names.append(tok[i + 1])
            pending, i = len(names) - 1, i + 2
        elif tok[i] == "End":
            pending, i = -1, i + 2
        elif tok[i] == "{":
            stack.append(pending)
            i += 1
        elif tok[i] == "}":
            stack.pop()
            i += 1
        elif tok[i] == "OFFSET":
            if stack[-1] >= 0:
                offsets.append([float(x) for x in tok[i + 1 : i + 4]])
            i += 4
        else:
            assert tok[i] == "CHANNELS", tok[i]
            i += 2 + int(tok[i + 1])
    lines = motion.splitlines()
    n_frames, frame_time = int(lines[0].split()[1]), float(lines[1].split()[2])
    data = np.loadtxt(lines[2:], ndmin=2)
    assert data.shape == (n_frames, 3 + 3 * len(names))
    local = Rotation.from_euler("ZXY", data[:, 3:].reshape(-1, 3), degrees=True).as_matrix()
    local = local.reshape(n_frames, len(names), 3, 3)
    world = np.empty_like(local)
    pos = np.empty((n_frames, len(names), 3))
    for k, p in enumerate(parents):
        if p < 0:
            world[:, k], pos[:, k] = local[:, k], data[:, :3] + offsets[k]
        else:
            world[:, k] = world[:, p] @ local[:, k]
            pos[:, k] = pos[:, p] + world[:, p] @ np.asarray(offsets[k])
    return names, pos, frame_time


def read_bvh_with_bvhio(path: Path) -> np.ndarray:
    """World joint positions (T, K, 3), file units, as the bvhio reader computes them."""
    bvhio = pytest.importorskip("bvhio")
    root = bvhio.readAsHierarchy(str(path))
    layout = root.layout()
    assert [j.Name for j, _, _ in layout] == NAMES
    n = len(root.Keyframes)
    out = np.empty((n, len(layout), 3))
    for f in range(n):
        root.loadPose(f)
        out[f] = [tuple(j.PositionWorld) for j, _, _ in layout]
    return out


@pytest.mark.parametrize("seed", range(3))
def test_solver_reproduces_a_constant_length_take_exactly(seed):
    pts = synthetic_take(np.random.default_rng(seed))
    est = RestEstimator()
    est.add(pts)
    rest = est.rest()
    assert rest.lengths["thigh_l"] == pytest.approx(LENGTHS["thigh"], abs=1e-6)
    assert rest.lengths["clavicle"] == pytest.approx(LENGTHS["clav"], abs=1e-6)
    assert rest.lengths["neck"] == pytest.approx(LENGTHS["neck"], abs=1e-6)
    motion = PoseSolver(rest).solve(pts)
    assert not motion.held.any()
    assert np.abs(_fk_coco(motion, rest) - pts[..., :3]).max() < 1e-5
    # Rotations are proper and the root sits at the mid-hip.
    assert np.allclose(np.linalg.det(motion.local), 1.0)
    assert np.allclose(motion.root, (pts[:, 11, :3] + pts[:, 12, :3]) / 2)


@pytest.mark.parametrize("units,scale", [("m", 1.0), ("cm", 100.0)])
def test_written_bvh_reads_back_within_a_centimetre_with_bvhio_and_own_fk(tmp_path, units, scale):
    pts = synthetic_take(np.random.default_rng(7), n=30)
    est = RestEstimator()
    est.add(pts)
    rest = est.rest()
    motion = PoseSolver(rest).solve(pts)
    w = BvhWriter(tmp_path / "p.bvh", rest, 25.0, units)
    w.write(motion.root[:10], motion.local[:10])
    w.write(motion.root[10:], motion.local[10:])
    path = w.close()
    names, own, frame_time = read_bvh_with_own_fk(path)
    assert names == NAMES and frame_time == pytest.approx(0.04)
    by_bvhio = read_bvh_with_bvhio(path)
    for pos in (own, by_bvhio):
        err = np.linalg.norm(coco_positions(pos / scale) - pts[..., :3], axis=-1)
        assert err.max() < 0.01  # the acceptance: within 1 cm
        assert err.max() < 1e-4  # in fact only the file's decimals are lost
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT Hips\n{\n") and "\nMOTION\nFrames: 30" in text
    assert text.count("End Site") == 9 and text.count("JOINT") == len(RIG) - 1
    assert "#" not in text  # BVH has no comments: units and axes go to export.json


def test_hierarchy_is_a_t_pose_facing_plus_z_in_the_stated_units():
    rest = RestPose.from_lengths({"upper_arm_l": 0.3, "thigh_r": 0.45}, {})
    cm = bvh_hierarchy(rest, "cm").splitlines()
    offset = {
        cm[i - 2].split()[1]: [float(x) for x in cm[i].split()[1:]] for i in range(2, len(cm)) if "OFFSET" in cm[i]
    }
    assert offset["LeftForeArm"] == [30.0, 0.0, 0.0]  # upper arm along +X (the person's left)
    assert offset["RightLeg"] == [0.0, -45.0, 0.0]  # thigh down
    assert offset["RightForeArm"][0] < 0 and offset["Nose"][2] > 0  # right arm along -X, nose forward (+Z)
    with pytest.raises(ValueError, match="units"):
        bvh_hierarchy(rest, "inch")


def test_missing_joints_and_absent_frames_hold_the_last_pose():
    pts = synthetic_take(np.random.default_rng(3), n=30)
    est = RestEstimator()
    est.add(pts)
    rest = est.rest()
    gappy = pts.copy()
    wrist, fore = COCO17.index("left_wrist"), NAMES.index("LeftForeArm")
    gappy[10:15, wrist] = 0.0  # the left wrist is lost for 5 frames
    gappy[20:23] = 0.0  # the whole person is absent for 3 frames
    solver = PoseSolver(rest)
    motion = solver.solve(gappy[:12])  # two calls: the held rotation carries over
    second = solver.solve(gappy[12:])
    local = np.concatenate([motion.local, second.local])
    root = np.concatenate([motion.root, second.root])
    held = np.concatenate([motion.held, second.held])
    assert held[10:15, fore].all() and not held[:10, fore].any() and not held[15:20, fore].any()
    assert np.allclose(local[10:15, fore], local[9, fore])  # the forearm keeps frame 9's rotation
    assert held[20:23].sum(1).tolist() == [14, 14, 14]  # every solved joint held
    assert np.allclose(local[20:23], local[19]) and np.allclose(root[20:23], root[19])
    fk = coco_positions(forward_kinematics(root, local, rest)[0])
    seen = gappy[..., 3] > 0
    assert np.abs(fk - pts[..., :3])[seen].max() < 1e-5  # every seen joint is still exact
    assert np.abs(fk - pts[..., :3])[15:20].max() < 1e-5  # and the solve resumes when they come back


def test_pelvis_and_root_without_a_hip_come_from_the_torso():
    """Regression: a person whose right hip is never seen (a seated Panoptic musician) was placed
    at the origin with a rest-pose pelvis, 0.8 m away. The torso fit now turns the pelvis and the seen
    hip places it: that leg stays exact, the rest within centimetres (this synthetic torso bends and
    twists freely, which a rigid torso cannot follow)."""
    pts = synthetic_take(np.random.default_rng(5), n=20)
    est = RestEstimator()
    est.add(pts)
    rest = est.rest()
    hipless = pts.copy()
    hipless[:, COCO17.index("right_hip")] = 0.0
    motion = PoseSolver(rest).solve(hipless)
    fk = coco_positions(forward_kinematics(motion.root, motion.local, rest)[0])
    err = np.linalg.norm(fk - pts[..., :3], axis=-1)
    left_leg = [COCO17.index(j) for j in ("left_hip", "left_knee", "left_ankle")]
    assert err[:, left_leg].max() < 1e-5 and not motion.held[:, 0].any()
    seen = err[:, hipless[0, :, 3] > 0]
    assert np.median(seen) < 0.02 and seen.max() < 0.3


def test_elbow_is_a_hinge_in_the_upper_arm_frame():
    """The upper arm's twist follows the elbow's bend: the forearm turns about the arm's local y only."""
    pts = synthetic_take(np.random.default_rng(11), n=40)
    est = RestEstimator()
    est.add(pts)
    motion = PoseSolver(est.rest()).solve(pts)
    for name, s in (("LeftForeArm", "left"), ("RightForeArm", "right")):
        upper = pts[:, COCO17.index(f"{s}_elbow"), :3] - pts[:, COCO17.index(f"{s}_shoulder"), :3]
        fore = pts[:, COCO17.index(f"{s}_wrist"), :3] - pts[:, COCO17.index(f"{s}_elbow"), :3]
        cos = (upper * fore).sum(1) / np.linalg.norm(upper, axis=1) / np.linalg.norm(fore, axis=1)
        bent = cos < np.cos(np.radians(30))
        rotvec = Rotation.from_matrix(motion.local[bent, NAMES.index(name)]).as_rotvec()
        assert bent.sum() > 5 and np.abs(rotvec[:, [0, 2]]).max() < 1e-6


def test_frames_and_up_axes():
    assert parse_up_axis("+Z") == "z" and parse_up_axis(" -Y ") == "-y"
    with pytest.raises(InputError, match="valid: z, -z, y, -y, x, -x"):
        parse_up_axis("up")
    for axis in ("z", "-z", "y", "-y", "x", "-x"):
        rot = zup_from_world(axis)
        up = np.zeros(3)
        up["xyz".index(axis[-1])] = -1.0 if axis.startswith("-") else 1.0
        assert np.allclose(rot @ up, [0, 0, 1]) and np.isclose(np.linalg.det(rot), 1.0)
    assert np.allclose(yup_from_world("-y") @ [0, -1, 0], [0, 1, 0])
    assert up_axis_from_text("right-handed, z up, metres") == "z"
    assert up_axis_from_text("Y down (CMU Panoptic)") == "-y" and up_axis_from_text("-x up") == "-x"
    assert up_axis_from_text("metres, origin on the floor") is None


def test_writer_rejects_misuse(tmp_path):
    rest = RestPose.default()
    with pytest.raises(ValueError, match="rate"):
        BvhWriter(tmp_path / "a.bvh", rest, 0.0)
    w = BvhWriter(tmp_path / "a.bvh", rest, 30.0)
    with pytest.raises(ShapeError):
        w.write(np.zeros((2, 3)), np.zeros((2, 5, 3, 3)))
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(np.zeros((1, 3)), np.tile(np.eye(3), (1, len(RIG), 1, 1)))
    with pytest.raises(ShapeError):
        PoseSolver(rest).solve(np.zeros((3, 17, 3)))


def test_exporter_writes_one_line_per_frame_index_of_each_span(tmp_path):
    pts = synthetic_take(np.random.default_rng(2), n=30)
    zup = pts.copy()
    zup[..., :3] = pts[..., :3] @ yup_from_world("z")  # the inverse map: Y-up points back to a z-up world
    est = RestEstimator()
    est.add(pts)
    rigs = {4: PersonRig(3, 32, est.rest()), 9: PersonRig(10, 12, RestPose.default())}
    exp = BvhExporter(tmp_path, rigs, 30.0, chunk=7)
    for f in range(30):
        if f in (5, 6):  # indices the take skips: rows are still written (held)
            continue
        ids = [4] + ([9] if 10 <= f + 3 <= 12 else [])
        poses = np.stack([zup[f]] * len(ids))
        exp.write(Poses3D(f + 3, f, np.array(ids), poses))
    with pytest.raises(ValueError, match="increasing"):
        exp.write(Poses3D(0, 0, np.array([4]), zup[:1]))
    paths = exp.close()
    assert [p.name for p in paths] == ["person_4.bvh", "person_9.bvh"]
    _, own, _ = read_bvh_with_own_fk(paths[0])
    assert own.shape[0] == 30 and len(read_bvh_with_own_fk(paths[1])[1]) == 3
    keep = [f for f in range(30) if f not in (5, 6)]
    assert np.abs(coco_positions(own)[keep] - pts[keep, :, :3]).max() < 1e-4
    assert np.allclose(own[5], own[4], atol=1e-5) and np.allclose(own[6], own[4], atol=1e-5)


PANOPTIC_COCO19 = {  # COCO-17 joint -> Panoptic COCO-19 index
    "nose": 1, "left_eye": 15, "right_eye": 17, "left_ear": 16, "right_ear": 18, "left_shoulder": 3,
    "right_shoulder": 9, "left_elbow": 4, "right_elbow": 10, "left_wrist": 5, "right_wrist": 11, "left_hip": 6,
    "right_hip": 12, "left_knee": 7, "right_knee": 13, "left_ankle": 8, "right_ankle": 14,
}  # fmt: skip


def panoptic_take(shared_data: Path, out: Path) -> list[Poses3D]:
    """CMU Panoptic band1 ground truth (20 frames, 3 people, cm, y down) as an mvcap take."""
    files = sorted((shared_data / "panoptic/160906_band1/hdPose3d_stage1_coco19").glob("*.json"))
    assert len(files) == 20
    frames = []
    with PosesWriter(out / "poses3d.jsonl", COCO17) as w:
        for i, f in enumerate(files):
            data = json.loads(f.read_text())
            ids, poses = [], []
            for body in data["bodies"]:
                j19 = np.array(body["joints19"]).reshape(19, 4)
                pose = np.zeros((17, 4))
                for k, name in enumerate(COCO17.joints):
                    x, y, z, c = j19[PANOPTIC_COCO19[name]]
                    if c > 0.1:  # the VoxelPose protocol's visibility threshold
                        pose[k] = (x / 100, y / 100, z / 100, min(c, 1.0))
                ids.append(body["id"])
                poses.append(pose)
            frame = Poses3D(i, int(round(data["univTime"] * 1e6)), np.array(ids), np.array(poses))
            frames.append(frame)
            w.write(frame)
    return frames


def test_real_panoptic_take_exports_upright_and_close(shared_data, tmp_path):
    """Real motion (bone lengths not constant, joints missing): the BVH, read by bvhio, stays within a
    centimetre of the input for the median joint and stands upright with --up -y."""
    frames = panoptic_take(shared_data, tmp_path)
    res = export_take(tmp_path / "poses3d.jsonl", tmp_path, ["bvh"], up="-y", bvh_units="cm")
    assert res.people == (0, 1, 2) and res.rate_hz == pytest.approx(29.97, abs=0.05)
    to_yup = yup_from_world("-y")
    for tid, path in zip(res.people, res.files["bvh"], strict=True):
        pos = coco_positions(read_bvh_with_bvhio(path) / 100)
        errs = []
        for f, fr in enumerate(frames):
            pose = fr.poses[fr.track_ids.tolist().index(tid)]
            seen = pose[:, 3] > 0
            errs.append(np.linalg.norm(pos[f, seen] - pose[seen, :3] @ to_yup.T, axis=1))
        err = np.concatenate(errs)
        assert np.median(err) < 0.01 and np.percentile(err, 75) < 0.03, (tid, np.median(err))
        nose, ankles = pos[:, COCO17.index("nose"), 1], pos[:, [COCO17.index("left_ankle")], 1]
        assert (nose[:, None] - ankles > 0.5).all()  # Y up: the head is well above the feet


def test_a_limb_folded_onto_its_parent_bone_is_still_reached():
    """A forearm pointing exactly back along the upper arm (the half-turn case of the shortest arc)."""
    pts = synthetic_take(np.random.default_rng(8), n=5)
    s, e, w = (COCO17.index(f"left_{j}") for j in ("shoulder", "elbow", "wrist"))
    upper = pts[:, e, :3] - pts[:, s, :3]
    pts[:, w, :3] = pts[:, e, :3] - LENGTHS["fore"] * upper / np.linalg.norm(upper, axis=1, keepdims=True)
    est = RestEstimator()
    est.add(pts)
    motion = PoseSolver(est.rest()).solve(pts)
    assert not motion.held.any()
    assert np.abs(_fk_coco(motion, est.rest()) - pts[..., :3]).max() < 1e-5
