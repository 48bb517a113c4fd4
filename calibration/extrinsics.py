"""Camera poses (extrinsics) from a calibration board seen by overlapping cameras.

Steps: (a) the board's pose in each camera per view by PnP (IPPE for a planar board, Collins &
Bartoli 2014, then Levenberg-Marquardt refinement), rejecting views whose reprojection error is
high; (b) a pose graph whose nodes are cameras and whose edges join cameras that saw the board in
the same frame, each edge's relative pose a robust average over those frames (chordal L2 mean of
rotations, Hartley, Trumpf, Dai & Li 2013, after discarding outlying frames; median translation),
chained from the reference camera along a maximum spanning tree, so that a board never seen by all
cameras at once still calibrates the rig; (c) bundle adjustment of every camera pose and every
board pose, the board's corner layout rigid, with a robust loss (:mod:`calibration.bundle`), views
left with a high error dropped and the adjustment run again; (d) the world frame. A symmetric
board's corners may be numbered from either end (OpenCV's checkerboards): each view's labellings
under the board's in-plane symmetries are candidates, and the pose graph and each frame keep the
ones that agree (with a checkerboard on the floor, which corner is the origin is then that of the
first camera's view in that frame).

Convention: poses are camera-from-world (``x_cam = R @ x_world + t``, OpenCV axes, metres). The
board frame is the one its ``object_m`` corners are given in (OpenCV boards: x along the rows, y
down the columns of the printed board, z = x cross y pointing *into* the board, away from a camera
that sees its face). The world is either the reference camera's frame (default: the first
camera; origin at its optical centre, x right, y down, z forward), or, with ``floor_frame``, the
board as it lay on the floor in that frame: origin at the board frame's origin, x along the
board's x, y opposite the board's y and z opposite the board's z, so z points up out of the
board's face and the frame stays right-handed (a rotation by pi about the board's x axis).

Example:
    >>> # views: BoardViews from calibration.board.detect_board; rig: cameras with intrinsics
    >>> result = calibrate_extrinsics(views, rig, reference="cam0")  # doctest: +SKIP
    >>> result.rig["cam1"].center, result.per_camera_rms_px  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import networkx as nx
import numpy as np
from scipy.spatial.transform import Rotation

from calibration.board import BoardView
from calibration.bundle import BundleProblem, BundleResult, Observations, bundle_adjust, rms_px
from calibration.camera import Camera, CameraRig
from core.errors import CalibrationError

__all__ = ["ExtrinsicsResult", "PoseGraphEdge", "RejectedView", "calibrate_extrinsics", "board_pose_pnp"]

log = logging.getLogger(__name__)

_FLIP: Final = np.diag([1.0, -1.0, -1.0])  # board frame -> z-up floor frame (rotation by pi about x)
_MIN_CORNERS: Final = 6


@dataclass(frozen=True, slots=True)
class RejectedView:
    """A board view left out, and why ("pnp", "collinear", "too few corners", "bundle")."""

    camera: str
    frame: int
    reason: str


@dataclass(frozen=True, slots=True)
class PoseGraphEdge:
    """Two cameras that saw the board in the same frames.

    Attributes:
        camera_a: first camera (rig order).
        camera_b: second camera.
        n_frames: frames where both had an accepted view.
        n_inliers: frames kept by the robust average of the relative pose.
        weight: sum over the shared frames of the corner count of the weaker view.
        spread_deg: median angle between a frame's relative rotation and the average, degrees.
        in_tree: whether the edge is on the spanning tree that gave the initial poses.
    """

    camera_a: str
    camera_b: str
    n_frames: int
    n_inliers: int
    weight: float
    spread_deg: float
    in_tree: bool


@dataclass(frozen=True, slots=True)
class ExtrinsicsResult:
    """The outcome of :func:`calibrate_extrinsics`.

    Attributes:
        rig: the calibrated cameras (intrinsics unchanged, R and t set), in the intrinsics' order.
        reference: the camera whose pose was held during the adjustment.
        world_frame: description of the world frame (for ``calibration.io.write_json``).
        per_camera_rms_px: camera name -> final RMS reprojection error of its board corners, pixels.
        per_camera_views: camera name -> views used in the final adjustment.
        edges: the pose graph's edges.
        frames: (Q,) int64 frame indices whose board pose was adjusted.
        R_board: (Q, 3, 3) world-from-board rotation in those frames.
        t_board: (Q, 3) world-from-board translation, metres.
        rms_initial_px: RMS reprojection error of the pose-graph initialisation, pixels.
        rms_final_px: RMS after bundle adjustment (views rejected by it excluded), pixels.
        rejected: views left out, and why.
        bundle: the last bundle adjustment's result (iterations, status).
    """

    rig: CameraRig
    reference: str
    world_frame: str
    per_camera_rms_px: dict[str, float]
    per_camera_views: dict[str, int]
    edges: tuple[PoseGraphEdge, ...]
    frames: np.ndarray
    R_board: np.ndarray
    t_board: np.ndarray
    rms_initial_px: float
    rms_final_px: float
    rejected: tuple[RejectedView, ...]
    bundle: BundleResult


def board_pose_pnp(view: BoardView, camera: Camera) -> tuple[np.ndarray, np.ndarray, float]:
    """The board's pose in the camera from one view (IPPE for a planar board, then LM refinement).

    Args:
        view: the board's corners in one image (at least 4; planar boards have ``object_m`` z = 0).
        camera: the camera's intrinsics (K, dist; R, t ignored).

    Returns:
        ``(R, t, rms_px)``: (3, 3) rotation and (3,) translation camera-from-board (metres) and the
        view's RMS reprojection error, pixels. The planar ambiguity of IPPE (Collins & Bartoli 2014)
        is resolved by the lower reprojection error; a distant, fronto-parallel board can still
        flip, which the pose graph's robust average absorbs.

    Raises:
        CalibrationError: fewer than 4 corners, or OpenCV finds no pose.
    """
    obj = np.ascontiguousarray(view.object_m, dtype=np.float64)
    img = np.ascontiguousarray(view.image_px, dtype=np.float64)
    if len(view) < 4:
        raise CalibrationError(f"board view {view.camera!r} frame {view.frame}: PnP needs 4 corners; got {len(view)}")
    planar = bool(np.all(np.abs(obj[:, 2]) < 1e-9))
    flags = cv2.SOLVEPNP_IPPE if planar else cv2.SOLVEPNP_SQPNP
    n, rvecs, tvecs, _ = cv2.solvePnPGeneric(obj, img, camera.K, camera.dist, flags=flags)
    if n == 0:
        raise CalibrationError(f"board view {view.camera!r} frame {view.frame}: OpenCV found no board pose")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera.K, camera.dist, rvecs[0].copy(), tvecs[0].copy())
    R = cv2.Rodrigues(rvec)[0]
    t = tvec.reshape(3)
    proj = cv2.projectPoints(obj, rvec, tvec, camera.K, camera.dist)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - img) ** 2, axis=1))))
    return R, t, rms


def _collinear(object_m: np.ndarray) -> bool:
    """Whether the corners are (nearly) on one line: their second principal axis is < 5% of the first."""
    s = np.linalg.svd(object_m - object_m.mean(axis=0), compute_uv=False)
    return bool(s[1] < 0.05 * s[0])


def _average_relative(R_ba: np.ndarray, t_ba: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Robust average of relative poses (F, 3, 3), (F, 3): chordal mean, outliers > max(2 deg, 3 x median) out."""
    rot = Rotation.from_matrix(R_ba)
    mean = rot.mean()
    dev = np.degrees((mean.inv() * rot).magnitude())
    keep = dev <= max(2.0, 3.0 * float(np.median(dev)))
    mean = rot[keep].mean()
    dev = np.degrees((mean.inv() * rot).magnitude())
    return mean.as_matrix(), np.median(t_ba[keep], axis=0), int(keep.sum()), float(np.median(dev))


def _target_cameras(
    views: Sequence[BoardView], intrinsics: CameraRig | Mapping[str, Camera], cameras: Sequence[str] | None
) -> list[Camera]:
    known = dict(intrinsics.items()) if isinstance(intrinsics, Mapping) else {c.name: c for c in intrinsics}
    seen = {v.camera for v in views}
    names = sorted(seen - set(known)) if cameras is None else [n for n in cameras if n not in known]
    if names:
        raise CalibrationError(f"no intrinsics for camera(s) {', '.join(names)}; have {', '.join(known)}")
    names = [n for n in known if n in seen] if cameras is None else list(cameras)
    if len(names) < 2:
        raise CalibrationError(f"extrinsics need board views of at least 2 cameras; got {names}")
    return [known[n] for n in names]


_Alt = tuple[BoardView, np.ndarray, np.ndarray]  # a labelling of a view and its board pose (R, t camera-from-board)


def _alternatives(view: BoardView, R: np.ndarray, t: np.ndarray) -> list[_Alt]:
    """The view as detected, then relabelled by each in-plane rotation that maps its corners onto themselves.

    A checkerboard's labelling is only defined up to such symmetries (OpenCV may start from either
    end), so two cameras can label the same corners differently; the pose graph and the per-frame
    labelling pick the consistent alternative. Relabelling by S (x -> Rz (x - c) + c) turns the
    board pose T into T S^-1.
    """
    obj = view.object_m
    out: list[_Alt] = [(view, R, t)]
    if np.any(np.abs(obj[:, 2]) > 1e-9):
        return out
    c = obj.mean(axis=0)
    tol = 1e-6 * max(1.0, float(np.ptp(obj[:, :2])))
    for k in (2, 1, 3):
        Rk = Rotation.from_euler("z", 90.0 * k, degrees=True).as_matrix().round()
        moved = (obj - c) @ Rk.T + c
        dist = np.linalg.norm(moved[:, None, :] - obj[None, :, :], axis=2)
        perm = dist.argmin(axis=1)
        if dist[np.arange(len(obj)), perm].max() > tol or len(set(perm.tolist())) != len(obj):
            continue
        relabelled = BoardView(view.camera, view.frame, view.ids[perm], view.image_px, obj[perm])
        R_new = R @ Rk.T
        out.append((relabelled, R_new, t - R_new @ (c - Rk @ c)))
    return out


def _reject_and_solve(
    cams: list[Camera], views: Sequence[BoardView], rejected: list[RejectedView], max_pnp_rms_px: float
) -> dict[int, dict[int, list[_Alt]]]:
    """Step (a): frame -> camera index -> the labellings of its accepted view (as detected first)."""
    index = {c.name: i for i, c in enumerate(cams)}
    out: dict[int, dict[int, list[_Alt]]] = defaultdict(dict)
    for v in views:
        if v.camera not in index:
            continue
        if len(v) < _MIN_CORNERS:
            rejected.append(RejectedView(v.camera, v.frame, "too few corners"))
            continue
        if _collinear(v.object_m):
            rejected.append(RejectedView(v.camera, v.frame, "collinear"))
            continue
        if v.frame in out and index[v.camera] in out[v.frame]:
            raise CalibrationError(f"two board views of camera {v.camera!r} in frame {v.frame}")
        R, t, rms = board_pose_pnp(v, cams[index[v.camera]])
        if not rms <= max_pnp_rms_px:
            rejected.append(RejectedView(v.camera, v.frame, "pnp"))
            log.info("board view %s frame %d rejected: PnP RMS %.2f px > %.2f", v.camera, v.frame, rms, max_pnp_rms_px)
            continue
        out[v.frame][index[v.camera]] = _alternatives(v, R, t)
    return out


def _edge_candidates(rel: list[list[tuple[np.ndarray, np.ndarray]]]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the relative pose among its labelling combinations that most frames agree with."""
    frame_of = np.concatenate([[f] * len(c) for f, c in enumerate(rel)])
    R = np.array([r for c in rel for r, _ in c])
    t = np.array([t for c in rel for _, t in c])
    if len(frame_of) == len(rel):  # one candidate per frame: nothing to choose
        return R, t
    rot = Rotation.from_matrix(R)
    close = np.array([(rot[i].inv() * rot).magnitude() < np.radians(3.0) for i in range(len(R))])
    support = np.array([len(set(frame_of[row].tolist())) for row in close])
    anchor = rot[int(support.argmax())]
    angle = (anchor.inv() * rot).magnitude()
    pick = [int(np.flatnonzero(frame_of == f)[angle[frame_of == f].argmin()]) for f in range(len(rel))]
    return R[pick], t[pick]


def _pose_graph(
    cams: list[Camera], seen: Mapping[int, Mapping[int, list[_Alt]]], ref: int
) -> tuple[np.ndarray, np.ndarray, list[PoseGraphEdge]]:
    """Step (b): initial camera-from-reference poses (C, 3, 3), (C, 3) by chaining averaged edges."""
    pairs: dict[tuple[int, int], list[list[tuple[np.ndarray, np.ndarray]]]] = defaultdict(list)
    weights: dict[tuple[int, int], float] = defaultdict(float)
    for per_cam in seen.values():
        for a in per_cam:
            for b in per_cam:
                if a < b:
                    combos = [(Rb @ Ra.T, tb - Rb @ Ra.T @ ta) for _, Ra, ta in per_cam[a] for _, Rb, tb in per_cam[b]]
                    pairs[a, b].append(combos)
                    weights[a, b] += min(len(per_cam[a][0][0]), len(per_cam[b][0][0]))
    graph = nx.Graph()
    graph.add_nodes_from(range(len(cams)))
    for (a, b), rel in pairs.items():
        R, t, n_in, spread = _average_relative(*_edge_candidates(rel))
        graph.add_edge(a, b, R=R, t=t, n=len(rel), n_in=n_in, spread=spread, weight=weights[a, b])
    connected = nx.node_connected_component(graph, ref)
    if len(connected) < len(cams):
        lost = [cams[i].name for i in range(len(cams)) if i not in connected]
        group = [cams[i].name for i in sorted(connected)]
        raise CalibrationError(
            f"camera(s) {', '.join(lost)} share no board frame (with an accepted view) with the reference "
            f"{cams[ref].name!r}'s group ({', '.join(group)}); record frames where one camera of each sees the board"
        )
    tree = nx.maximum_spanning_tree(graph, weight="weight")
    R_init, t_init = np.zeros((len(cams), 3, 3)), np.zeros((len(cams), 3))
    R_init[ref] = np.eye(3)
    for a, b in nx.bfs_edges(tree, ref):
        e = graph.edges[a, b]
        R_ba, t_ba = (e["R"], e["t"]) if a < b else (e["R"].T, -e["R"].T @ e["t"])
        R_init[b] = R_ba @ R_init[a]
        t_init[b] = R_ba @ t_init[a] + t_ba
    edges = [
        PoseGraphEdge(cams[a].name, cams[b].name, d["n"], d["n_in"], d["weight"], d["spread"], tree.has_edge(a, b))
        for a, b, d in sorted(graph.edges(data=True), key=lambda e: (min(e[:2]), max(e[:2])))
    ]
    return R_init, t_init, edges


def _label_frames(seen: Mapping[int, Mapping[int, list[_Alt]]], R_cam: np.ndarray) -> dict[int, dict[int, _Alt]]:
    """One labelling per view, consistent within each frame seen by >= 2 cameras (the first camera's as detected)."""
    out: dict[int, dict[int, _Alt]] = {}
    for f, per_cam in sorted(seen.items()):
        if len(per_cam) < 2:
            continue
        first = min(per_cam)
        anchor = Rotation.from_matrix(R_cam[first].T @ per_cam[first][0][1])
        out[f] = {}
        for c, alts in sorted(per_cam.items()):
            angle = [(anchor.inv() * Rotation.from_matrix(R_cam[c].T @ R)).magnitude() for _, R, _ in alts]
            out[f][c] = alts[int(np.argmin(angle))]
    return out


def _board_problem(
    chosen: Mapping[int, Mapping[int, _Alt]], R_cam: np.ndarray, t_cam: np.ndarray
) -> tuple[list[int], list[tuple[int, BoardView]], np.ndarray, Observations, np.ndarray, np.ndarray]:
    """Frames, their (camera, view)s, the board's corners (N, 3), the observations and initial board poses."""
    frames = [f for f in sorted(chosen) if len(chosen[f]) >= 2]
    used = [(c, alt[0]) for f in frames for c, alt in sorted(chosen[f].items())]
    corners: dict[int, np.ndarray] = {}
    for _, v in used:
        for i, X in zip(v.ids.tolist(), v.object_m, strict=True):
            if i in corners and not np.allclose(corners[i], X, atol=1e-9):
                raise CalibrationError(f"board views disagree on corner {i}'s position: one board per calibration")
            corners.setdefault(i, X)
    ids = sorted(corners)
    point_of = {i: k for k, i in enumerate(ids)}
    q_of = {f: q for q, f in enumerate(frames)}
    obs = Observations(
        cam_idx=np.concatenate([np.full(len(v), c) for c, v in used]),
        point_idx=np.concatenate([[point_of[i] for i in v.ids.tolist()] for _, v in used]),
        uv_px=np.concatenate([v.image_px for _, v in used]),
        pose_idx=np.concatenate([np.full(len(v), q_of[v.frame]) for _, v in used]),
    )
    # initial board poses, world(= reference)-from-board: chordal mean and median over the cameras
    R_b, t_b = np.zeros((len(frames), 3, 3)), np.zeros((len(frames), 3))
    for q, f in enumerate(frames):
        Rs = np.array([R_cam[c].T @ R for c, (_, R, _) in chosen[f].items()])
        ts = np.array([R_cam[c].T @ (t - t_cam[c]) for c, (_, _, t) in chosen[f].items()])
        R_b[q], t_b[q] = Rotation.from_matrix(Rs).mean().as_matrix(), np.median(ts, axis=0)
    return frames, used, np.array([corners[i] for i in ids]).reshape(-1, 3), obs, R_b, t_b


def calibrate_extrinsics(
    views: Sequence[BoardView],
    intrinsics: CameraRig | Mapping[str, Camera],
    reference: str | None = None,
    floor_frame: int | None = None,
    *,
    cameras: Sequence[str] | None = None,
    max_pnp_rms_px: float = 3.0,
    max_view_rms_px: float = 2.0,
    loss: str = "soft_l1",
    f_scale_px: float = 1.0,
) -> ExtrinsicsResult:
    """Calibrate camera poses from a board seen in simultaneous frames of overlapping cameras.

    See the module docstring for the method and the Convention. Frame ``k`` of every camera must be
    the same instant (the board may move between frames but not within one).

    Args:
        views: the board's detections, any cameras and frames (at most one view per camera and frame).
        intrinsics: per camera K, dist and size (a rig or name -> Camera; R and t are ignored).
        reference: camera held at the origin of the adjustment and of the world unless
            ``floor_frame`` is given; default the first camera calibrated.
        floor_frame: frame index in which the board lay flat on the floor: it defines the world
            (board plane z = 0, z up). Default: the reference camera's frame is the world.
        cameras: names of the cameras to calibrate, in output order; default every camera of
            ``intrinsics`` that has board views.
        max_pnp_rms_px: views whose PnP reprojection RMS exceeds this are rejected, pixels.
        max_view_rms_px: after a first adjustment, views whose RMS exceeds this and 5 times the
            median view RMS are dropped and the adjustment is run again, pixels.
        loss: robust loss of the adjustment (see :func:`calibration.bundle.bundle_adjust`).
        f_scale_px: its inlier scale, pixels.

    Returns:
        The rig and the figures of the calibration (:class:`ExtrinsicsResult`).

    Raises:
        CalibrationError: views of cameras without intrinsics, fewer than 2 cameras, cameras not
            connected to the reference by shared board frames (named), an unknown reference, or a
            ``floor_frame`` without a board pose.
    """
    cams = _target_cameras(views, intrinsics, cameras)
    names = [c.name for c in cams]
    if reference is not None and reference not in names:
        raise CalibrationError(f"reference camera {reference!r} is not among the cameras {', '.join(names)}")
    ref = 0 if reference is None else names.index(reference)
    rejected: list[RejectedView] = []
    seen = _reject_and_solve(cams, views, rejected, max_pnp_rms_px)
    R_cam, t_cam, edges = _pose_graph(cams, seen, ref)
    start = [Camera(c.name, c.K, c.dist, R, t, c.size) for c, R, t in zip(cams, R_cam, t_cam, strict=True)]
    chosen = _label_frames(seen, R_cam)
    frames, used, corners, obs, R_b, t_b = _board_problem(chosen, R_cam, t_cam)
    held = {"fixed_cameras": [ref], "fixed_points": True}  # the gauge; the board's layout is known
    problem = BundleProblem(start, obs, corners, R_b, t_b, **held)
    result = bundle_adjust(problem, loss=loss, f_scale_px=f_scale_px)
    rms_initial = result.rms_initial_px
    # drop the views the adjustment cannot explain, then adjust again from where it got to
    err = np.sum(result.residuals_px**2, axis=1)
    bounds = np.cumsum([0] + [len(v) for _, v in used])
    view_rms = np.array([np.sqrt(err[a:b].mean()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    bad = view_rms > max(max_view_rms_px, 5.0 * float(np.median(view_rms)))
    if bad.any():
        for (_, v), r in zip([u for u, b in zip(used, bad, strict=True) if b], view_rms[bad], strict=True):
            log.info("board view %s frame %d rejected after adjustment: RMS %.2f px", v.camera, v.frame, r)
            rejected.append(RejectedView(v.camera, v.frame, "bundle"))
        drop = {(c, v.frame) for (c, v), b in zip(used, bad, strict=True) if b}
        chosen = {f: {c: alt for c, alt in per.items() if (c, f) not in drop} for f, per in chosen.items()}
        R_cam = np.array([c.R for c in result.cameras])
        t_cam = np.array([c.t for c in result.cameras])
        frames, used, corners, obs, R_b, t_b = _board_problem(chosen, R_cam, t_cam)
        linked = nx.Graph()
        linked.add_nodes_from(range(len(names)))
        for f in frames:
            nx.add_path(linked, [c for c, v in used if v.frame == f])
        lost = [n for i, n in enumerate(names) if i not in nx.node_connected_component(linked, ref)]
        if lost:
            raise CalibrationError(
                f"camera(s) {', '.join(lost)}: no link to {names[ref]!r} left once views with a high error are dropped"
            )
        problem = BundleProblem(result.cameras, obs, corners, R_b, t_b, **held)
        result = bundle_adjust(problem, loss=loss, f_scale_px=f_scale_px)
    rig_cams, R_b, t_b, world = _world(result, frames, floor_frame, names[ref])
    per_rms = {n: rms_px(result.residuals_px[obs.cam_idx == i]) for i, n in enumerate(names)}
    per_views = {n: sum(c == i for c, _ in used) for i, n in enumerate(names)}
    log.info("extrinsics: RMS %.3f -> %.3f px; per camera %s", rms_initial, result.rms_final_px, per_rms)
    for n in names:
        if per_views[n] < 3 or per_rms[n] > max_view_rms_px:
            log.warning("camera %s: pose rests on %d board views (RMS %.2f px); check it", n, per_views[n], per_rms[n])
    return ExtrinsicsResult(
        rig=CameraRig(rig_cams),
        reference=names[ref],
        world_frame=world,
        per_camera_rms_px=per_rms,
        per_camera_views=per_views,
        edges=tuple(edges),
        frames=np.array(frames, dtype=np.int64),
        R_board=R_b,
        t_board=t_b,
        rms_initial_px=rms_initial,
        rms_final_px=result.rms_final_px,
        rejected=tuple(rejected),
        bundle=result,
    )


def _world(
    result: BundleResult, frames: list[int], floor_frame: int | None, reference: str
) -> tuple[tuple[Camera, ...], np.ndarray, np.ndarray, str]:
    """Step (d): cameras and board poses in the chosen world frame, and its description."""
    if floor_frame is None:
        world = f"camera {reference!r}: origin at its optical centre, x right, y down, z forward (OpenCV), metres"
        return result.cameras, result.R_pose, result.t_pose, world
    if floor_frame not in frames:
        raise CalibrationError(
            f"floor frame {floor_frame}: no board pose (the board must be seen by 2 cameras); frames with one: "
            f"{', '.join(map(str, frames[:20]))}{' ...' if len(frames) > 20 else ''}"
        )
    q = frames.index(floor_frame)
    # x_ref = R_f @ F @ x_world + t_f, with F = F^T = F^-1 the flip of the board's y and z axes
    R_f, t_f = result.R_pose[q], result.t_pose[q]
    cams = tuple(Camera(c.name, c.K, c.dist, c.R @ R_f @ _FLIP, c.R @ t_f + c.t, c.size) for c in result.cameras)
    R_b = _FLIP @ R_f.T @ result.R_pose
    t_b = (result.t_pose - t_f) @ R_f @ _FLIP
    if sum(c.center[2] < 0 for c in cams) > len(cams) / 2:
        log.warning("floor frame %d: most cameras are below the board (z < 0); was it seen from below?", floor_frame)
    world = (
        f"board on the floor in frame {floor_frame}: origin at the board's origin, x along the board's x, "
        "y opposite the board's y, z up (out of the board's face), right-handed, metres"
    )
    return cams, R_b, t_b, world
