"""Calibration from people: association, triangulation, tracks, the bundle's Jacobian, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from synth import project_people, ring_rig

from calibration.camera import Camera, CameraRig
from calibration.people import (
    KnownDistance,
    PeopleCalibrationOptions,
    SubjectHeight,
    calibrate_from_people,
)
from calibration.people_association import (
    associate_people,
    build_observations,
    fundamental_matrices,
    link_tracks,
    triangulate_weighted,
    undistort_poses,
)
from calibration.people_bundle import PeopleBundle, reprojection_errors
from capture.benchmarks.synthetic import walking_people
from capture.calibrate.people import blas_threads
from core.errors import CalibrationError, ShapeError
from core.skeleton import COCO17

DIST = np.array([-0.08, 0.03, 0.0005, -0.0005, 0.0])


def _scene(rig: CameraRig, n_frames: int, rng: np.random.Generator, noise_px: float = 0.0, n_people: int = 3):
    """Per frame, per camera, the shuffled (P, 17, 3) detections of walking people; and the permutations."""
    frames, perms = [], []
    for f in range(n_frames):
        people = walking_people(n_people, 0.5 * f)
        per_cam, per_perm = [], []
        for poses in project_people(rig, people, rng, noise_px):
            order = rng.permutation(len(poses))
            per_cam.append(poses[order])
            per_perm.append(order)
        frames.append(per_cam)
        perms.append(per_perm)
    return frames, perms


def _perturb(rig: CameraRig, deg: float, metres: float, seed: int, scale: float = 1.0) -> CameraRig:
    """Every camera but the first rotated by ``deg`` about a random axis and moved by ``metres``."""
    rng = np.random.default_rng(seed)
    c0 = rig[0].center
    cams = [rig[0]]
    for cam in list(rig)[1:]:
        axis = rng.normal(size=3)
        dR = Rotation.from_rotvec(np.deg2rad(deg) * axis / np.linalg.norm(axis)).as_matrix()
        move = rng.normal(size=3)
        centre = c0 + scale * (cam.center - c0) + metres * move / np.linalg.norm(move)
        R = dR @ cam.R
        cams.append(Camera(cam.name, cam.K, cam.dist, R, -R @ centre, cam.size))
    return CameraRig(tuple(cams))


def _pose_errors(a: CameraRig, b: CameraRig) -> tuple[np.ndarray, np.ndarray]:
    """Per camera: rotation difference (degrees) and centre distance (metres)."""
    deg = [
        np.rad2deg(np.linalg.norm(Rotation.from_matrix(ca.R @ cb.R.T).as_rotvec())) for ca, cb in zip(a, b, strict=True)
    ]
    dist = [np.linalg.norm(ca.center - cb.center) for ca, cb in zip(a, b, strict=True)]
    return np.array(deg), np.array(dist)


def _distance(rig: CameraRig, a: str, b: str) -> KnownDistance:
    return KnownDistance(a, b, float(np.linalg.norm(rig[a].center - rig[b].center)))


def test_association_groups_the_same_person_across_views(rng):
    rig = ring_rig(dist=DIST)
    frames, perms = _scene(rig, 1, rng)
    poses = [p.copy() for p in frames[0]]
    poses[2] = poses[2][1:]  # camera 2 misses one person
    groups = associate_people(fundamental_matrices(rig), undistort_poses(rig, poses), threshold_px=5.0)
    assert len(groups) == 3
    for group in groups:
        people = {int(perms[0][c][d + (c == 2)]) for c, d in group}
        assert len(people) == 1, f"group {group} mixes people {people}"
    sizes = sorted(len(g) for g in groups)
    assert sizes == [3, 4, 4]
    assert all(len({c for c, _ in g}) == len(g) for g in groups)


def test_association_threshold_separates_wrong_geometry(rng):
    rig = ring_rig()
    frames, _ = _scene(rig, 1, rng)
    wrong = _perturb(rig, 8.0, 0.5, seed=3)
    assert associate_people(fundamental_matrices(wrong), undistort_poses(wrong, frames[0]), threshold_px=2.0) == []


def test_triangulate_weighted_exact_and_missing_views(rng):
    rig = ring_rig(dist=DIST)
    X = rng.uniform(-1, 1, size=(50, 3)) + [0, 0, 1]
    uv = np.stack([cam.undistort_px(cam.project(X)) for cam in rig])
    w = rng.uniform(0.2, 1.0, size=(len(rig), len(X)))
    w[:2, :10] = 0.0  # points 0-9 seen by two views only
    w[1:, 40:] = 0.0  # points 40-49 by one view: not triangulated
    out = triangulate_weighted(rig.projections(), uv, w)
    np.testing.assert_allclose(out[:40], X[:40], atol=1e-6)
    assert np.all(out[40:] == 0)
    with pytest.raises(ShapeError):
        triangulate_weighted(rig.projections(), uv[:, :3], w)


def test_link_tracks_gate_and_gap():
    a, b = np.array([0.0, 0, 1]), np.array([3.0, 0, 1])
    frames = [np.stack([a, b]), np.stack([b + 0.1]), np.zeros((0, 3)), np.stack([a + 0.2, b + 0.9])]
    ids = link_tracks(frames, gate_m=0.5, max_gap=3)
    assert [i.tolist() for i in ids] == [[0, 1], [1], [], [0, 2]]  # b jumped 0.8 m: a new track
    ids = link_tracks(frames, gate_m=0.5, max_gap=2)
    assert [i.tolist() for i in ids][3] == [2, 3]  # a unseen for 3 frames: a new track too


def test_bundle_jacobian_matches_finite_differences(rng):
    rig = ring_rig(dist=DIST)
    frames, _ = _scene(rig, 3, rng, noise_px=0.5, n_people=2)
    obs = build_observations(rig, frames, 30.0, COCO17.limbs)
    assert obs.n_groups == 6 and len(obs.bone_a) > 0
    for refine_focal in (False, True):
        bundle = PeopleBundle(rig, obs, 1, [3] if refine_focal else [], refine_focal, 0.02)
        x = bundle.x0() + rng.normal(scale=0.05, size=bundle.n_params)
        J = bundle.jacobian(x).toarray()
        num = np.empty_like(J)
        for i in range(bundle.n_params):
            step = np.zeros(bundle.n_params)
            step[i] = 1e-6
            num[:, i] = (bundle.residuals(x + step) - bundle.residuals(x - step)) / 2e-6
        np.testing.assert_allclose(J, num, atol=1e-4 * np.abs(num).max())


def test_perfect_data_and_start_stay_put(rng):
    rig = ring_rig(dist=DIST)
    frames, _ = _scene(rig, 12, rng)
    res = calibrate_from_people(rig, frames, COCO17, _distance(rig, "cam0", "cam2"))
    deg, dist = _pose_errors(res.rig, rig)
    assert deg.max() < 1e-6 and dist.max() < 1e-6
    assert res.after.median_px < 1e-6 and res.before.median_px < 1e-6
    assert res.n_groups == 36 and res.n_tracks == 3 and res.n_frames == 12
    assert abs(res.scale_factor - 1) < 1e-9 and res.suspect == ()


@pytest.mark.parametrize("scale_kind", ["distance", "height"])
def test_recovers_perturbed_rig_and_scale(rng, scale_kind):
    rig = ring_rig(dist=DIST)
    frames, _ = _scene(rig, 20, rng, noise_px=1.0)
    start = _perturb(rig, 5.0, 0.2, seed=1, scale=1.15)
    if scale_kind == "distance":
        scale = _distance(rig, "cam1", "cam3")
    else:  # the stature the estimator gives for the synthetic people (ankle-knee-hip-shoulder / 0.779)
        X = walking_people(1, 0.0)[0]
        chain = [COCO17.index(f"left_{j}") for j in ("ankle", "knee", "hip", "shoulder")]
        scale = SubjectHeight(float(np.linalg.norm(np.diff(X[chain], axis=0), axis=1).sum() / 0.779))
    with blas_threads(1):
        res = calibrate_from_people(start, frames, COCO17, scale)
    deg, dist = _pose_errors(res.rig, rig)
    assert deg.max() < 0.2, deg
    assert dist.max() < (0.01 if scale_kind == "distance" else 0.02), dist  # the stature from noisy bones
    assert res.after.median_px < 1.5 < 10 < res.before.median_px
    assert [c.name for c in res.after.per_camera] == list(rig.names)


def test_refine_focal_recovers_focal_lengths(rng):
    rig = ring_rig(dist=DIST)
    frames, _ = _scene(rig, 20, rng, noise_px=1.0)
    cams = []
    for i, cam in enumerate(_perturb(rig, 3.0, 0.1, seed=1)):
        K = cam.K.copy()
        K[:2, :2] *= 1 + 0.03 * (-1) ** i  # focal lengths 3% off, up and down
        cams.append(Camera(cam.name, K, cam.dist, cam.R, cam.t, cam.size))
    opt = PeopleCalibrationOptions(refine_focal=True)
    with blas_threads(1):
        res = calibrate_from_people(CameraRig(tuple(cams)), frames, COCO17, _distance(rig, "cam1", "cam3"), opt)
    ratios = np.array([a.K[[0, 1], [0, 1]] / b.K[[0, 1], [0, 1]] for a, b in zip(res.rig, rig, strict=True)])
    np.testing.assert_allclose(ratios, 1.0, atol=0.005)
    deg, dist = _pose_errors(res.rig, rig)
    assert deg.max() < 0.2 and dist.max() < 0.01, (deg, dist)
    np.testing.assert_array_equal([c.K[:2, 2] for c in res.rig], [c.K[:2, 2] for c in rig])  # principal points kept


def test_reprojection_errors_rank_rigs_on_the_same_detections(rng):
    rig = ring_rig()
    frames, _ = _scene(rig, 6, rng, noise_px=1.0)
    obs = build_observations(rig, frames, 50.0, ())
    good = reprojection_errors(rig, obs)
    bad = reprojection_errors(_perturb(rig, 1.0, 0.05, seed=2), obs)
    assert good.n_observations == bad.n_observations == 6 * 3 * 17 * 4
    assert 0.5 < good.median_px < 2.0 < bad.median_px


def test_errors(rng):
    rig = ring_rig()
    frames, _ = _scene(rig, 3, rng)
    with pytest.raises(CalibrationError, match="people seen by 2 cameras"):
        calibrate_from_people(rig, frames, COCO17, _distance(rig, "cam0", "cam1"))
    with pytest.raises(CalibrationError, match="cam9"):
        calibrate_from_people(rig, frames, COCO17, KnownDistance("cam0", "cam9", 2.0))
    with pytest.raises(CalibrationError, match="two different cameras"):
        KnownDistance("cam0", "cam0", 2.0)
    with pytest.raises(CalibrationError, match="positive"):
        SubjectHeight(float("nan"))
    with pytest.raises(CalibrationError, match="rounds"):
        PeopleCalibrationOptions(rounds=0)
    with pytest.raises(CalibrationError, match="at least 2 cameras"):
        calibrate_from_people(rig.subset(["cam0"]), [[f[0]] for f in frames], COCO17, SubjectHeight(1.7))
    bad = [[p[:, :12] for p in f] for f in frames]
    with pytest.raises(ShapeError, match=r"\(P, 17, 3\)"):
        calibrate_from_people(rig, bad, COCO17, SubjectHeight(1.7))
    with pytest.raises(ShapeError, match="one pose array per camera"):
        calibrate_from_people(rig, [f[:3] for f in frames], COCO17, SubjectHeight(1.7))


@pytest.mark.parametrize("deg", [20.0, 30.0, 90.0, 180.0])
def test_camera_far_off_is_reposed_by_resection(rng, deg):
    """A camera far beyond the epipolar basin (even facing away) is re-posed from the people."""
    rig = ring_rig()
    frames, _ = _scene(rig, 12, rng, noise_px=1.0)
    cams = list(rig)
    R = Rotation.from_rotvec([0.0, np.deg2rad(deg), 0.0]).as_matrix() @ cams[2].R
    cams[2] = Camera("cam2", cams[2].K, cams[2].dist, R, -R @ (cams[2].center + [0.5, -0.3, 0.2]), cams[2].size)
    with blas_threads(1):
        res = calibrate_from_people(CameraRig(tuple(cams)), frames, COCO17, _distance(rig, "cam0", "cam1"))
    deg_err, dist = _pose_errors(res.rig, rig)
    assert deg_err.max() < 0.2 and dist.max() < 0.01, (deg_err, dist)
    assert res.suspect == ()


def test_unrecoverable_camera_is_reported(rng):
    """A camera that sees nobody its neighbours see cannot be placed: an error, not a silent start pose."""
    rig = ring_rig()
    frames, _ = _scene(rig, 12, rng, noise_px=1.0)
    for frame in frames:
        frame[2] = frame[2][:, :, :] * [1.0, 1.0, 0.0]  # camera 2: every joint missing
    with pytest.raises(CalibrationError, match=r"cam2 \(0\)"):
        calibrate_from_people(rig, frames, COCO17, _distance(rig, "cam0", "cam1"))


def _panoptic_frames(shared_data, rng, names):
    from calibration.io import read_panoptic_json
    from capture.benchmarks.datasets import read_panoptic_bodies
    from capture.benchmarks.noise import panoptic19_to_coco17

    folder = shared_data / "panoptic" / "160906_band1"
    rig = read_panoptic_json(folder / "calibration_160906_band1.json", names=names)
    bodies = read_panoptic_bodies(folder / "hdPose3d_stage1_coco19")
    frames = []
    for f in sorted(bodies):
        per_cam = []
        for cam in rig:
            poses = []
            for body in bodies[f]:
                X, valid = panoptic19_to_coco17(body)
                uv = cam.project(X) + rng.normal(scale=2.0, size=(len(X), 2))
                outlier = rng.random(len(X)) < 0.02
                uv[outlier] += rng.uniform(30, 80, (outlier.sum(), 2)) * rng.choice([-1, 1], (outlier.sum(), 2))
                w, h = cam.size
                inside = (
                    (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h) & (cam.to_camera(X)[:, 2] > 0)
                )
                conf = np.where(valid & inside, rng.uniform(0.5, 1.0, len(X)), 0.0)
                poses.append(np.concatenate([np.where(conf[:, None] > 0, uv, 0.0), conf[:, None]], axis=1))
            per_cam.append(np.array(poses).reshape(-1, len(COCO17.joints), 3))
        frames.append(per_cam)
    return rig, frames


def test_panoptic_real_motion_real_cameras(shared_data, rng):
    """Acceptance (b): CMU Panoptic ground truth (3 people, 20 frames) through 5 real HD cameras,
    2 px noise and 2% outliers of 30-80 px; start 5 degrees and 20 cm off: within 0.5 deg and 3 cm."""
    names = ["00_03", "00_06", "00_12", "00_13", "00_23"]
    rig, frames = _panoptic_frames(shared_data, rng, names)
    with blas_threads(1):
        res = calibrate_from_people(_perturb(rig, 5.0, 0.2, seed=0), frames, COCO17, _distance(rig, "00_03", "00_12"))
    deg, dist = _pose_errors(res.rig, rig)
    assert deg.max() < 0.5, deg
    assert dist.max() < 0.03, dist
    assert res.after.median_px < 3.0 and res.suspect == ()


@pytest.mark.slow
def test_pose2sim_demo_real_detections(shared_data):
    """Acceptance (a) on the Pose2Sim demo (4 real cameras, 100 frames = the whole take, real YOLO11n).

    From the Qualisys extrinsics perturbed by 5 degrees and 20 cm (cam02-04; scale from the cam01-cam03
    distance) the people calibration converges to the same rig as when started from the Qualisys
    extrinsics themselves, and reprojects the detections better than the Qualisys calibration does.
    That rig is NOT within 1 degree / 5 cm of Qualisys (0.7 / 3.0 / 1.55 degrees and 6 / 13 / 11 cm
    for cam02 / cam03 / cam04), for two reasons measured on this take: the reference's cam03 does
    not fit it (the refined cam03 alone, swapped into the Qualisys rig, takes the reference from
    13.7 to 10.8 px; swapping cam02 or cam04 makes it worse), and the take cannot resolve 1 degree
    / 5 cm (a bootstrap over 10-frame blocks gives 1-sigma 0.9-1.1 deg and 5.6-6 cm per camera).
    Intrinsics (checkerboard K, raw or /64 distortion) and time offsets (+-4 frames per camera) do
    not close the gap. The test bounds it so that a regression shows.
    """
    from pathlib import Path

    from calibration.io import read_calibration
    from capture.calibrate.offsets import read_detection_folder
    from capture.calibrate.people import align_frames

    qualisys = read_calibration(shared_data / "pose2sim_demo_multiperson" / "calibration" / "Calib.qca.txt")
    detections = read_detection_folder(Path(__file__).resolve().parents[1] / "data" / "demo_yolo11n", qualisys.names)
    frames = align_frames(detections, qualisys.names)
    scale = _distance(qualisys, "cam01", "cam03")
    with blas_threads(1):
        res = calibrate_from_people(_perturb(qualisys, 5.0, 0.2, seed=0), frames, COCO17, scale)
        from_ref = calibrate_from_people(qualisys, frames, COCO17, scale)
    obs = build_observations(res.rig, frames, 50.0, ())  # the same detections for every rig
    reference = reprojection_errors(qualisys, obs)
    assert res.after.median_px <= 1.1 * reference.median_px
    assert res.after.median_px < 0.8 * reference.median_px  # measured 9.1 vs 13.7 px
    deg, dist = _pose_errors(res.rig, from_ref.rig)
    assert deg.max() < 0.25 and dist.max() < 0.015, (deg, dist)  # measured 0.08 deg, 0.5 cm over 5 starts
    deg, dist = _pose_errors(res.rig, qualisys)
    assert deg.max() < 3.5 and dist.max() < 0.15, (deg, dist)  # measured 0.7-3.0 deg, 6-13 cm
    assert res.n_frames == 100 and res.n_groups >= 250 and res.suspect == ()
    swapped = {}  # the Qualisys rig with one camera replaced by the refined one
    for name in ("cam02", "cam03", "cam04"):
        cams = [res.rig[name] if c.name == name else c for c in qualisys]
        swapped[name] = reprojection_errors(CameraRig(tuple(cams)), obs)
    assert swapped["cam03"].median_px < 0.85 * reference.median_px  # measured 10.8 vs 13.7 px
    assert swapped["cam03"].median_px < min(swapped["cam02"].median_px, swapped["cam04"].median_px)
