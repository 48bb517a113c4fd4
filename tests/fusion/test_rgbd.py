"""RGB-D lifting (fusion.rgbd) and its fusion in the live tracker, on synthetic depth images of
known people (tests/synth_depth.py: sphere-swept bodies in a room, noise a z^2, flying pixels at
silhouettes, 5% holes)."""

from __future__ import annotations

import numpy as np
import pytest
from synth import look_at_camera, person
from synth_depth import detect, render_depth, room_depth, sensor_depth_mm

from calibration.camera import Camera, CameraRig
from core.config import FusionConfig, RGBDConfig, config_from_dict
from core.errors import ConfigError, ShapeError
from core.skeleton import COCO17
from fusion.live import LiveTracker
from fusion.rgbd import RGBDDetections, depth_noise_std, lift_joints, sample_depth
from triangulation.dlt import triangulate_robust

J = COCO17.n_joints
DT_NS = 33_333_333  # 30 fps
PIXEL_NOISE_PX = 2.0


def _cam(name: str, yaw_deg: float, r: float = 3.0) -> Camera:
    """A Kinect-like VGA camera (f = 525 px) on a circle of ``r`` m, ``yaw_deg`` from the person's front."""
    a = np.deg2rad(90.0 + yaw_deg)
    c = np.array([r * np.cos(a), r * np.sin(a), 1.3])
    return look_at_camera(name, c, np.array([0.0, 0.0, 0.9]), f=525.0, size=(640, 480))


def _disc_image(rng, holes: float = 0.2) -> np.ndarray:
    """60x60 mm image: background at 4 m, a disc of radius 10 px at 1.5 m centred at (30, 30),
    flying pixels on a 1 px rim around it and ``holes`` of the pixels dropped."""
    v, u = np.mgrid[0:60, 0:60]
    r = np.hypot(u - 30, v - 30)
    d = np.where(r <= 10, 1500, 4000).astype(np.float64)
    rim = (r > 10) & (r <= 11)
    d[rim] = 1500 + rng.random(rim.sum()) * 2500
    d[rng.random(d.shape) < holes] = 0
    return d.astype(np.uint16)


def test_sample_depth_rejects_holes_edges_and_flying_pixels(rng):
    depth = _disc_image(rng)
    cfg = RGBDConfig()
    uv = np.array([
        [30.0, 30.0],  # disc centre
        [39.0, 30.0],  # by the disc's edge: its window holds the rim's flying pixels and background
        [50.0, 50.0],  # background only
        [-10.0, 30.0],  # outside the image
        [np.nan, 3.0],  # not finite
    ])  # fmt: skip
    z = sample_depth(depth, uv, cfg)
    assert z[:2] == pytest.approx([1.5, 1.5], abs=1e-9)  # the foreground's median, never a mixture
    assert z[2] == pytest.approx(4.0, abs=1e-9)
    assert z[3:].tolist() == [0.0, 0.0]
    # The surface nearest a given depth instead of the nearest to the camera.
    halves = np.full((20, 20), 2000, np.uint16)
    halves[:, 10:] = 3000
    edge = np.array([[10.0, 10.0]] * 3)
    assert sample_depth(halves, edge, cfg, np.array([0.0, 2.9, 2.2])).tolist() == [2.0, 3.0, 2.0]
    # Holes everywhere, or readings beyond max_depth_m: nothing to lift.
    assert sample_depth(np.zeros((60, 60), np.uint16), uv[:1], cfg)[0] == 0.0
    assert sample_depth(np.full((60, 60), 12000, np.uint16), uv[:1], cfg)[0] == 0.0
    # A window with too little of any surface (80% holes) is not lifted.
    sparse = np.where(rng.random((60, 60)) < 0.8, 0, 2000).astype(np.uint16)
    assert sample_depth(sparse, uv[:1], RGBDConfig(min_valid_frac=0.5))[0] == 0.0


def test_sample_depth_checks_its_inputs():
    with pytest.raises(ShapeError, match="uint16"):
        sample_depth(np.zeros((4, 4), np.float32), np.zeros((1, 2)), RGBDConfig())
    with pytest.raises(ShapeError, match=r"\(N, 2\)"):
        sample_depth(np.zeros((4, 4), np.uint16), np.zeros((1, 3)), RGBDConfig())


def test_lift_is_exact_on_a_plane_for_a_distorted_rotated_camera(rng):
    """Noise-free: a fronto-parallel plane at 2.5 m; the lifted points reproject onto their pixels
    (the camera's own projection, with distortion) and lie at 2.5 m depth, within 1e-6."""
    cam = look_at_camera("d", np.array([1.0, -2.0, 1.4]), np.array([0.3, 0.5, 1.0]), f=525.0, size=(640, 480),
                         dist=np.array([-0.1, 0.02, 0.001, -0.001, 0.0]))  # fmt: skip
    depth = np.full((480, 640), 2500, np.uint16)
    poses = np.concatenate([rng.uniform([40, 40], [600, 440], (2, J, 2)), np.ones((2, J, 1))], axis=-1)
    out = lift_joints(cam, depth, poses, RGBDConfig(joint_offset_m=0.0), PIXEL_NOISE_PX)
    X = out.joints[..., :3].reshape(-1, 3)
    assert (out.joints[..., 3] == 1.0).all()
    assert np.abs(cam.to_camera(X)[:, 2] - 2.5).max() < 1e-9
    assert np.abs(cam.project(X) - poses[..., :2].reshape(-1, 2)).max() < 1e-6
    # The joint lies joint_offset_m behind the surface, along the ray.
    back = lift_joints(cam, depth, poses, RGBDConfig(joint_offset_m=0.05), PIXEL_NOISE_PX).joints[..., :3]
    rng_m = np.linalg.norm(back.reshape(-1, 3) - cam.center, axis=1) - np.linalg.norm(X - cam.center, axis=1)
    assert np.abs(rng_m - 0.05).max() < 1e-9
    # Half-resolution depth registered to the same view gives the same points.
    half = lift_joints(cam, np.full((240, 320), 2500, np.uint16), poses, RGBDConfig(joint_offset_m=0.0), 2.0)
    assert np.abs(half.joints - out.joints).max() < 1e-9


def test_missing_2d_joints_and_holes_are_not_lifted():
    cam = _cam("d", 0.0)
    depth = np.full((480, 640), 3000, np.uint16)
    depth[:, :320] = 0  # the left half is a hole
    poses = np.array([[[400.0, 240.0, 0.8], [100.0, 240.0, 0.9], [400.0, 300.0, 0.0]]])
    out = lift_joints(cam, depth, poses, RGBDConfig(), PIXEL_NOISE_PX)
    assert out.joints[0, :, 3].tolist() == [0.8, 0.0, 0.0]
    assert not out.joints[0, 1:].any() and not out.cov[0, 1:].any()
    with pytest.raises(ShapeError, match=r"\(P, J, 3\)"):
        lift_joints(cam, depth, poses[0], RGBDConfig(), PIXEL_NOISE_PX)


def test_covariance_matches_monte_carlo(rng):
    """The first-order covariance equals the spread of lifted points under pixel noise sigma_px / conf
    and depth noise a z^2 (offset spread off), within 8% (4000 samples: ~2% sampling error)."""
    cam = look_at_camera("d", np.array([2.0, -2.0, 1.5]), np.array([0.0, 0.0, 1.0]), f=525.0, size=(640, 480))
    cfg = RGBDConfig(window_px=1, joint_offset_m=0.0, joint_offset_std_m=0.0, depth_noise_a_per_m=0.004)
    uv0, z0, conf, n = np.array([500.0, 100.0]), 3.2, 0.5, 4000
    pred = lift_joints(cam, np.full((3, 4), int(z0 * 1000), np.uint16), np.array([[[*uv0, conf]]]), cfg, 2.0).cov
    samples = np.empty((n, 3))
    sigma_z = depth_noise_std(z0, cfg.depth_noise_a_per_m)
    for i in range(n):  # depth on a 4x3 grid registered to the 640x480 view; 1 mm quantisation is negligible
        depth = np.full((3, 4), int(round((z0 + rng.normal(0, sigma_z)) * 1000)), np.uint16)
        uv = uv0 + rng.normal(0, 2.0 / conf, 2)
        samples[i] = lift_joints(cam, depth, np.array([[[*uv, conf]]]), cfg, 2.0).joints[0, 0, :3]
    emp = np.cov(samples.T)
    assert np.linalg.norm(emp - pred[0, 0]) < 0.08 * np.linalg.norm(pred[0, 0])
    # The axial part grows with the square of the depth.
    far = lift_joints(cam, np.full((3, 4), 6400, np.uint16), np.array([[[*uv0, 1.0]]]), cfg, 1e-6).cov[0, 0]
    near = lift_joints(cam, np.full((3, 4), 3200, np.uint16), np.array([[[*uv0, 1.0]]]), cfg, 1e-6).cov[0, 0]
    assert np.sqrt(np.trace(far) / np.trace(near)) == pytest.approx(4.0, rel=1e-3)


def test_rgbd_detections_check_shapes():
    poses, boxes = np.zeros((2, J, 3)), np.zeros((2, 5))
    d = RGBDDetections("c", 0, 0, poses, boxes, np.zeros((2, J, 4)), np.zeros((2, J, 3, 3)))
    assert d.joints3d.dtype == np.float32 and not d.joints3d.flags.writeable and d.n_people == 2
    with pytest.raises(ShapeError, match="joints3d_cov"):
        RGBDDetections("c", 0, 0, poses, boxes, np.zeros((2, J, 4)), np.zeros((1, J, 3, 3)))
    with pytest.raises(ShapeError, match="finite"):
        RGBDDetections("c", 0, 0, poses, boxes, np.full((2, J, 4), np.nan), np.zeros((2, J, 3, 3)))


def test_rgbd_config_is_checked():
    assert config_from_dict({"rgbd": {"window_px": 7}}).rgbd.window_px == 7
    for bad in ({"window_px": 4}, {"min_valid_frac": 0.0}, {"min_depth_m": 5.0, "max_depth_m": 2.0},
                {"depth_noise_a_per_m": -1.0}, {"window_size": 3}):  # fmt: skip
        with pytest.raises(ConfigError, match="rgbd"):
            config_from_dict({"rgbd": bad})


def test_one_camera_lifts_each_joint_of_a_rendered_person_within_tolerance(rng):
    """A person facing one RGB-D camera at 3 m (sensor noise a z^2 = 1.35 cm, flying pixels, 5%
    holes, 1.5 px 2D noise): every joint but one is lifted, each within 8 cm (the joint lies a limb
    radius, 3.5-10 cm, behind the surface; the model takes 5 +- 3 cm), median under 4 cm. The
    left ear, on the head's silhouette with the wall behind, is not lifted rather than put on the wall."""
    cam = _cam("d", 0.0)
    room = room_depth(cam)
    errors, lifted = [], []
    for k in range(5):
        X = person((0.3 * k - 0.6, 0.0), 0.0)
        depth = sensor_depth_mm(render_depth(cam, [X], room), rng)
        out = lift_joints(cam, depth, detect(cam, [X], rng), RGBDConfig(), PIXEL_NOISE_PX)
        ok = out.joints[0, :, 3] > 0
        lifted.append(ok)
        errors.append(np.where(ok, np.linalg.norm(out.joints[0, :, :3] - X, axis=1), np.nan))
    E, L = np.array(errors), np.array(lifted)
    assert L.sum() >= 0.9 * L.size
    assert np.nanmax(E) < 0.08 and np.nanmedian(E) < 0.04


def _frame_inputs(rig: CameraRig, X: np.ndarray, rng, rooms: list[np.ndarray]) -> tuple:
    """One group for the tracker: the person's 2D joints in every view, its lifted joints (every view
    is RGB-D), and its pose: triangulated with two views or more, else the lifted joints."""
    C = len(rig)
    obs_px, obs_conf = np.zeros((1, C, J, 2)), np.zeros((1, C, J))
    obs3, cov3 = np.zeros((1, C, J, 4)), np.zeros((1, C, J, 3, 3))
    for c, cam in enumerate(rig):
        det = detect(cam, [X], rng)
        depth = sensor_depth_mm(render_depth(cam, [X], rooms[c]), rng)
        lift = lift_joints(cam, depth, det, RGBDConfig(), PIXEL_NOISE_PX)
        obs_px[0, c], obs_conf[0, c] = det[0, :, :2], det[0, :, 2]
        obs3[0, c], cov3[0, c] = lift.joints[0], lift.cov[0]
    if C >= 2:
        tri = triangulate_robust(rig.projections(), obs_px[0], obs_conf[0], 0.3, 15.0, 2)
        poses, used = np.concatenate([tri.points, tri.conf[:, None]], axis=1)[None], tri.used[None]
    else:
        poses, used = obs3[:, 0].copy(), obs3[..., 3] > 0
    return poses, obs_px, obs_conf, used, obs3, cov3


def _track(rig: CameraRig, n_frames: int, seed: int = 1) -> tuple[set[int], np.ndarray]:
    """Ids and (frames, J) joint errors, metres (NaN: not published), of a walker (0.9 m/s) tracked
    with RGB-D views; the first 5 frames (tentative track, filter settling) are left out."""
    rng = np.random.default_rng(seed)
    tr = LiveTracker(rig.projections(), COCO17, FusionConfig(pixel_noise_px=PIXEL_NOISE_PX))
    rooms = [room_depth(cam) for cam in rig]
    ids, errors = set(), []
    for f in range(n_frames):
        X = person((-0.4 + 0.03 * f, 0.0), 0.0)
        poses, obs_px, obs_conf, used, obs3, cov3 = _frame_inputs(rig, X, rng, rooms)
        out = tr.update(poses, obs_px, obs_conf, f * DT_NS, None, used, obs3, cov3)
        ids |= set(out.track_ids.tolist())
        if f >= 5:
            ok = out.poses[0, :, 3] > 0
            errors.append(np.where(ok, np.linalg.norm(out.poses[0, :, :3] - X, axis=1), np.nan))
    return ids, np.array(errors)


def test_one_rgbd_camera_alone_tracks_in_3d_and_two_do_better():
    """The acceptance test of issue 11's RGB-D part, through the live tracker (20 frames at 30 fps).

    One camera in front (a single view: no triangulation, all depth from the sensor): one id, every
    joint published, each joint's median error under 6 cm, overall median under 3 cm. Two cameras
    90 degrees apart (each one's depth axis is the other's precise lateral axis): each joint's
    median under 3 cm and the overall median under 0.7 times the single camera's.
    """
    ids1, E1 = _track(CameraRig((_cam("front", 0.0),)), 20)
    ids2, E2 = _track(CameraRig((_cam("front", 0.0), _cam("side", 90.0))), 20)
    assert ids1 == {1} and ids2 == {1}
    assert np.isfinite(E1).all() and np.isfinite(E2).all()
    assert np.median(E1, axis=0).max() < 0.06 and np.median(E1) < 0.03
    assert np.median(E2, axis=0).max() < 0.03 and np.median(E2) < 0.7 * np.median(E1)
