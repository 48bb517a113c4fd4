"""Camera calibration from the people in the scene: bundle adjustment on body keypoints.

Refines the extrinsics (optionally the focal lengths) of a roughly known rig from 2D human poses
seen by several cameras: no board, no markers. Each round (thresholds shrinking from coarse to fine):
associate each frame's detections across views by epipolar distance under the current rig,
triangulate the joints seen twice or more and link the people over frames
(:mod:`calibration.people_association`); then bundle-adjust camera poses, 3D joints and per-track
bone lengths jointly with ``scipy.optimize.least_squares`` (trust-region reflective, sparse analytic
Jacobian, soft-L1 loss): reprojection residuals in pixels weighted by the 2D confidence, plus
limb-length residuals ``(|X_a - X_b| - L_track,limb) / sigma`` tying each person's skeleton over time.
A camera in too few groups is held out of the round and then re-posed by RANSAC resection against
the people the others triangulate (:func:`calibration.people_resection.resect_camera`). The
least-squares problem itself is :class:`calibration.people_bundle.PeopleBundle`.

Gauge (Triggs et al. 2000, §9): the reference camera's pose is held fixed (6 dof) and a stiff
residual holds the distance from it to the farthest camera (1 dof; without it the focal lengths
converge 3-5 times less well, measured); the scale is then set once, after the adjustment, from a
known distance between two camera centres or from a subject's height, by scaling the world about
the reference camera's centre (reprojections do not change).

Bone lengths: identities are not given, so each frame-to-frame track (nearest 3D centroid, gated)
gets its own bone-length unknowns: exact for the few people of a calibration take, never mixing two
people unless they come within the gate; a population prior (average adult bones) would be biased by
each person's build and by the detector's keypoint definition, so none is used.

References: Triggs et al. 2000, "Bundle adjustment — a modern synthesis"; Hartley & Zisserman,
Multiple View Geometry, 2nd ed., §18.1, §A6. People as the calibration pattern: Takahashi et al.
2018, "Human pose as calibration pattern: 3D human pose estimation with multiple unsynchronized and
uncalibrated cameras" (CVPR workshops); Puwein et al. 2014, "Joint camera pose estimation and 3D
human pose estimation in a multi-camera setup" (ACCV).

Measured (2-core machine shared with other jobs, BLAS limited to one thread): CMU Panoptic ground
truth (3 people, 20 frames) through 5 real HD cameras, 2 px noise and 2% outliers, every camera but
the reference 5 deg and 20 cm off: within 0.13 deg and 7.4 mm for 6 of 6 random starts, 1-6 s
(10 deg / 50 cm and 20 deg / 1 m: 5 of 6; the failure is a wrong rig that reprojects well, so it is
not flagged). Pose2Sim demo (4 real cameras, 100 frames, real YOLO11n-pose 2D), 5 deg / 20 cm: 5 of
5 starts converge to the same rig (0.15 deg, 1 cm apart), 3-8 s; it reprojects the detections at a
median 9.1 px where the Qualisys reference calibration gives 13.7 px, and lies 0.7-3.0 deg and
5-13 cm from that reference (10 deg / 50 cm: 2 of 5 on that rig, 1 within 0.5 deg, 2 wrong).
Precision on that take (two people over a treadmill, ~10 px 2D noise, errors correlated over
frames): 1-sigma 0.9-1.1 deg and 5.6-6.0 cm per camera by a bootstrap over 10-frame blocks (the
Jacobian's covariance, which assumes independent errors, says 0.3-0.4 deg and 1.6-2.3 cm); halves
of the take differ by up to 1.9 deg and 12 cm, and detections at 1152x640 instead of 640x384 move
the rig by up to 4 deg and 29 cm while both rigs reproject either detection set within 0.3 px of
each other (rotation and translation of a camera are coupled: correlation 0.97 for cam03). The
reference's cam03 does not fit the take: the three others triangulate the people at a uniform
-33 px horizontal offset in it (every joint -21 to -46 px), and its pose alone makes up most of
the reference's excess error (13.7 -> 10.8 px with the refined cam03 swapped in).

Convention: cameras as :mod:`calibration.camera` (``x_cam = R @ x_world + t``); poses (P, J, 3)
[u_px, v_px, conf] in distorted pixels, joints in the skeleton's order, missing joints conf 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from calibration.camera import Camera, CameraRig
from calibration.people_association import PeopleObservations, build_observations
from calibration.people_bundle import CameraReprojection, PeopleBundle, ReprojectionStats, reprojection_errors
from calibration.people_resection import resect_camera
from core.errors import CalibrationError, ShapeError
from core.skeleton import Skeleton

__all__ = [
    "CameraReprojection",
    "KnownDistance",
    "PeopleCalibrationOptions",
    "PeopleCalibrationResult",
    "ReprojectionStats",
    "SubjectHeight",
    "calibrate_from_people",
]

log = logging.getLogger(__name__)

_SUSPECT_RATIO = 2.5  # a camera reprojecting this many times worse than the others' median did not converge
_LEG_TRUNK_FRACTION = 0.779  # (shoulder - ankle height) / stature, Drillis & Contini 1966 (Winter 2009, Fig. 4.1)


@dataclass(frozen=True, slots=True)
class KnownDistance:
    """Scale from the distance between two camera centres.

    Attributes:
        cam_a: name of the first camera.
        cam_b: name of the second camera.
        metres: distance between their centres, metres.

    Raises:
        CalibrationError: the same camera twice, or a distance that is not a positive finite number.
    """

    cam_a: str
    cam_b: str
    metres: float

    def __post_init__(self) -> None:
        if self.cam_a == self.cam_b:
            raise CalibrationError(f"a known distance needs two different cameras; got {self.cam_a!r} twice")
        if not (np.isfinite(self.metres) and self.metres > 0):
            raise CalibrationError(f"the known distance must be a positive number of metres; got {self.metres}")


@dataclass(frozen=True, slots=True)
class SubjectHeight:
    """Scale from the stature of the people seen (the average when several are).

    The stature is estimated as (ankle-knee + knee-hip + hip-shoulder) / 0.779 per side, the
    fraction of stature between the lateral malleolus (0.039) and the acromion (0.818) in Drillis &
    Contini 1966 (as tabulated in Winter 2009, "Biomechanics and Motor Control of Human Movement",
    Fig. 4.1); a few per cent from the truth for most adults and keypoint detectors.

    Attributes:
        metres: standing height, metres.

    Raises:
        CalibrationError: a height that is not a positive finite number.
    """

    metres: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.metres) and self.metres > 0):
            raise CalibrationError(f"the subject height must be a positive number of metres; got {self.metres}")


@dataclass(frozen=True, slots=True)
class PeopleCalibrationOptions:
    """Settings of :func:`calibrate_from_people` (defaults suit 2-6 people, cameras 2-8 m away).

    Attributes:
        reference: camera whose pose is held fixed (the world frame); None: the rig's first.
        refine_focal: also refine one focal scale per camera (fx and fy together).
        max_frames: at most this many frames, evenly spread over the take, are used.
        coarse_frames: at most this many of them in the first round (it only has to come near).
        min_conf: 2D confidence below which a joint is ignored.
        min_joints: fewest joints two detections share to be compared, and per person-frame.
        coarse_threshold_px: association threshold of the first round, median epipolar distance,
            pixels; generous: a few degrees of error move epipolar lines by about focal x angle.
        threshold_px: association threshold of the last round, pixels (the rounds between shrink
            geometrically); loose enough that rigs near the optimum all group the same detections.
        rounds: associate-and-adjust rounds.
        coarse_robust_px: soft-L1 scale of the first round's reprojection residuals, pixels.
        robust_px: soft-L1 scale of the last round, pixels (geometric in between).
        bone_sigma_m: a bone-length deviation of this many metres weighs like 1 px of reprojection.
        track_gate_m: largest centroid jump between consecutive used frames of a track, metres.
        min_groups: fewest multi-view person-frames needed, else CalibrationError.
        max_nfev: most residual evaluations per round.
    """

    reference: str | None = None
    refine_focal: bool = False
    max_frames: int = 300
    coarse_frames: int = 40
    min_conf: float = 0.3
    min_joints: int = 5
    coarse_threshold_px: float = 120.0
    threshold_px: float = 50.0
    rounds: int = 3
    coarse_robust_px: float = 20.0
    robust_px: float = 5.0
    bone_sigma_m: float = 0.02
    track_gate_m: float = 0.5
    min_groups: int = 10
    max_nfev: int = 100

    def __post_init__(self) -> None:
        positive = ("max_frames", "coarse_frames", "coarse_threshold_px", "threshold_px", "rounds", "coarse_robust_px",
                    "robust_px", "bone_sigma_m", "track_gate_m", "max_nfev", "min_joints")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise CalibrationError(f"option {name} must be positive; got {value}")


@dataclass(frozen=True, slots=True)
class PeopleCalibrationResult:
    """The outcome of :func:`calibrate_from_people`.

    Attributes:
        rig: refined rig (names, sizes, distortion and principal points as given).
        before: reprojection error of the initial rig on the final association.
        after: reprojection error of the refined rig on the same.
        n_frames: frames with at least one multi-view person in the last round.
        n_groups: person-frames (multi-view groups) in the last round.
        n_tracks: person-tracks (bone-length sets) in the last round.
        n_points: 3D joints adjusted in the last round.
        n_observations: 2D joints in the last round.
        iterations: least-squares residual evaluations, all rounds together.
        scale_factor: factor applied to the adjusted world to fix the scale.
        suspect: cameras whose median reprojection error is over 2.5 times the median of the other
            cameras' (a start too far off that converged to a wrong pose); check or redo them.
        seconds: wall time of the whole calibration, seconds.
    """

    rig: CameraRig
    before: ReprojectionStats
    after: ReprojectionStats
    n_frames: int
    n_groups: int
    n_tracks: int
    n_points: int
    n_observations: int
    iterations: int
    scale_factor: float
    suspect: tuple[str, ...] = ()
    seconds: float = 0.0


def _select_frames(frames: Sequence[Sequence[np.ndarray]], n_cams: int, n_joints: int, max_frames: int) -> list:
    """At most ``max_frames`` frames evenly spread over the take, shapes checked."""
    for k, frame in enumerate(frames):
        if len(frame) != n_cams:
            raise ShapeError(f"frame {k}: need one pose array per camera ({n_cams}); got {len(frame)}")
        for c, p in enumerate(frame):
            shape = np.shape(p)
            if len(shape) != 3 or shape[1:] != (n_joints, 3):
                raise ShapeError(f"frame {k}, camera {c}: poses must be (P, {n_joints}, 3); got {shape}")
    keep = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int))
    return [frames[k] for k in keep] if len(frames) else []


def _suspects(stats: ReprojectionStats) -> tuple[str, ...]:
    """Cameras whose median reprojection error is over ``_SUSPECT_RATIO`` times the others' median."""
    med = np.array([c.median_px for c in stats.per_camera])
    return tuple(
        c.name for i, c in enumerate(stats.per_camera) if med[i] > _SUSPECT_RATIO * np.median(np.delete(med, i))
    )


def _people_per_frame(obs: PeopleObservations, points: np.ndarray, n_frames: int, n_joints: int) -> list[np.ndarray]:
    """Per frame, (Q, J, 4) [x, y, z, valid] of the adjusted 3D people (groups) of that frame."""
    table = np.zeros((obs.n_groups, n_joints, 4))
    table[obs.point_group, obs.point_joint] = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    return [table[obs.group_frame == k] for k in range(n_frames)]


def _rescale(rig: CameraRig, ref: int, s: float) -> CameraRig:
    """Scale the world by ``s`` about the reference camera's centre (rotations unchanged)."""
    c_ref = rig[ref].center
    centres = [c_ref + s * (cam.center - c_ref) for cam in rig]
    return CameraRig(
        tuple(Camera(c.name, c.K, c.dist, c.R, -c.R @ x, c.size) for c, x in zip(rig, centres, strict=True))
    )


def _stature(points: np.ndarray, obs: PeopleObservations, skeleton: Skeleton) -> float:
    """Median estimated stature over person-frames and sides (see :class:`SubjectHeight`), metres."""
    try:
        chains = [
            [skeleton.index(f"{side}_{j}") for j in ("ankle", "knee", "hip", "shoulder")] for side in ("left", "right")
        ]
    except KeyError as exc:
        raise CalibrationError(f"a subject height needs ankle, knee, hip and shoulder joints: {exc}") from None
    table = np.full((obs.n_groups, skeleton.n_joints), -1)
    table[obs.point_group, obs.point_joint] = np.arange(len(points))
    idx = table[:, chains].reshape(-1, 4)  # (G * 2, 4) point indices of each chain
    idx = idx[(idx >= 0).all(axis=1)]
    if not len(idx):
        raise CalibrationError("no person-frame shows a whole ankle-knee-hip-shoulder chain: cannot use a height")
    return float(np.median(np.linalg.norm(np.diff(points[idx], axis=1), axis=-1).sum(axis=1)) / _LEG_TRUNK_FRACTION)


def calibrate_from_people(
    rig: CameraRig,
    frames: Sequence[Sequence[np.ndarray]],
    skeleton: Skeleton,
    scale: KnownDistance | SubjectHeight,
    options: PeopleCalibrationOptions | None = None,
) -> PeopleCalibrationResult:
    """Refine a rig's extrinsics from people seen by several cameras (bundle adjustment on keypoints).

    See the module docstring for the method. Intrinsics are trusted (only a focal scale per camera
    is refined with ``options.refine_focal``); the detections must be synchronised across cameras
    (same frame index = same instant).

    Args:
        rig: initial cameras (extrinsics may be several degrees and tens of cm off), metres.
        frames: per frame, per camera in rig order, (P, J, 3) [u_px, v_px, conf] distorted pixels;
            J = ``skeleton.n_joints``, P may differ per camera and be 0.
        skeleton: joint set; its limbs get per-track constant lengths.
        scale: :class:`KnownDistance` between two camera centres or :class:`SubjectHeight`.
        options: settings (:class:`PeopleCalibrationOptions`).

    Returns:
        The refined rig (reference camera unchanged) with reprojection errors before/after and
        counts of what was used.

    Raises:
        CalibrationError: fewer than 2 cameras, an unknown camera name (reference or known
            distance), fewer than ``options.min_groups`` multi-view person-frames overall or for
            some camera in the last round (a camera that far off is not refined), or a height
            scale without a complete leg-and-trunk chain.
        ShapeError: frames without one (P, J, 3) array per camera.
    """
    start = time.perf_counter()
    opt = options or PeopleCalibrationOptions()
    if len(rig) < 2:
        raise CalibrationError(f"calibration from people needs at least 2 cameras; got {len(rig)}")
    ref = rig.index(opt.reference) if opt.reference is not None else 0
    for name in (scale.cam_a, scale.cam_b) if isinstance(scale, KnownDistance) else ():
        rig.index(name)  # raises CalibrationError naming the rig's cameras
    sel = _select_frames(frames, len(rig), skeleton.n_joints, opt.max_frames)
    current, nfev = rig, 0
    for rnd in range(opt.rounds):
        frac = rnd / max(opt.rounds - 1, 1)  # thresholds and robust scales shrink geometrically
        threshold = opt.coarse_threshold_px ** (1 - frac) * opt.threshold_px**frac
        robust = opt.coarse_robust_px ** (1 - frac) * opt.robust_px**frac
        used = _select_frames(sel, len(rig), skeleton.n_joints, opt.coarse_frames) if rnd == 0 else sel
        obs = build_observations(
            current, used, threshold, skeleton.limbs, opt.min_conf, opt.min_joints, opt.track_gate_m
        )
        if obs.n_groups < opt.min_groups:
            raise CalibrationError(
                f"found {obs.n_groups} people seen by 2 cameras or more in {len(used)} frames; "
                f"need at least {opt.min_groups}"
            )
        groups = np.array([np.unique(obs.point_group[obs.point_idx[obs.cam_idx == c]]).size for c in range(len(rig))])
        # a camera in few groups is held this round, lest scant or wrong groups carry it away (measured:
        # 90 degrees on Panoptic from a 3-degree start); in the last round only the absolute minimum counts
        least = opt.min_groups if rnd == opt.rounds - 1 else max(opt.min_groups, 0.5 * np.median(groups))
        held = [c for c in range(len(rig)) if groups[c] < least]
        bundle = PeopleBundle(current, obs, ref, held, opt.refine_focal, opt.bone_sigma_m)
        res = least_squares(
            bundle.residuals, bundle.x0(), jac=bundle.jacobian, method="trf", x_scale="jac",
            loss="soft_l1", f_scale=robust,
            tr_solver="lsmr", max_nfev=opt.max_nfev, ftol=1e-6, xtol=1e-8,
        )  # fmt: skip
        nfev += int(res.nfev)
        cams = [bundle.camera(res.x, c) for c in range(len(rig))]
        points = bundle.unpack(res.x)[3]
        if rnd < opt.rounds - 1:  # re-pose held or stray cameras from the people the others triangulate
            stray = _suspects(reprojection_errors(CameraRig(tuple(cams)), obs))
            people = _people_per_frame(obs, points, len(used), skeleton.n_joints)
            for c in sorted(set(held) | {rig.index(n) for n in stray} - {ref}):
                cams[c] = resect_camera(cams[c], [f[c] for f in used], people, opt.min_conf) or cams[c]
        current = CameraRig(tuple(cams))
        log.info(
            "round %d: %d person-frames, %d tracks, %d joints, %d observations, %d evaluations, cost %.4g, held %s",
            rnd, obs.n_groups, obs.n_tracks, len(obs.points), len(obs.cam_idx), res.nfev, res.cost, held,
        )  # fmt: skip
    lonely = [f"{name} ({n})" for name, n, c in zip(rig.names, groups, range(len(rig)), strict=True) if c in held]
    if lonely:
        raise CalibrationError(
            f"cameras in fewer than {opt.min_groups} person-frames seen with other cameras: {', '.join(lonely)}; "
            "their start is too far off (more than a few degrees) or they see too few people"
        )
    if isinstance(scale, KnownDistance):
        s = scale.metres / float(np.linalg.norm(current[scale.cam_a].center - current[scale.cam_b].center))
    else:
        s = scale.metres / _stature(points, obs, skeleton)
    current = _rescale(current, ref, s)
    after = reprojection_errors(current, obs)
    before = reprojection_errors(rig, obs)
    suspect = _suspects(after)
    if suspect:
        log.warning("cameras %s reproject %.1fx worse than the others: probably not converged", suspect, _SUSPECT_RATIO)
    return PeopleCalibrationResult(
        rig=current, before=before, after=after, n_frames=int(np.unique(obs.group_frame).size),
        n_groups=obs.n_groups, n_tracks=obs.n_tracks, n_points=len(obs.points),
        n_observations=len(obs.cam_idx), iterations=nfev, scale_factor=s, suspect=suspect,
        seconds=time.perf_counter() - start,
    )  # fmt: skip
