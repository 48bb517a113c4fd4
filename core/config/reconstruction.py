"""The reconstruction sections: ``[matching]``, ``[triangulation]``, ``[fusion]``, ``[rgbd]`` and ``[smoothing]``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from core.errors import ConfigError

MATCHING_METHODS: tuple[str, ...] = ("auto", "epipolar", "pairwise", "multiway")
"""Valid values of ``MatchingConfig.method``."""
TRIANGULATION_METHODS: tuple[str, ...] = ("dlt", "pictorial")
"""Valid values of ``TriangulationConfig.method``."""


@dataclass(frozen=True, slots=True)
class MatchingConfig:
    """Cross-view association (epipolar geometry).

    Attributes:
        min_joint_conf: 2D joints below this confidence are ignored.
        min_common_joints: fewer joints seen in both views make two detections unmatchable.
        max_epipolar_px: largest mean symmetric point-to-epipolar-line distance (pixels) of a match.
        min_box_score: detections with a lower person score are ignored.
        min_valid_joints: detections with fewer confident joints are ignored.
        track_gate_m: largest mean distance between a detection and a live track projected into its
            view, in metres at the track's depth (converted to pixels per view and track).
        merge_m: a newly grouped person whose 3D pose lies within this median joint distance
            (metres) of a tracked person of the same frame, seen by other views, is merged into it.
        single_view_updates: a track seen by one view only in a frame is still updated: its
            predicted joints move onto that view's rays (depth kept from the prediction), as in
            the incremental cross-view tracking of Chen et al. 2020.
        method: how detections no live track claimed are grouped across views: ``"auto"`` (the
            default: ``"multiway"`` for stills, where every moment starts cold and a photo set has
            time for it; ``"epipolar"`` for video, where the track-driven association does most of
            the work and SVT would cost a start-up frame 0.2-0.4 s on a large rig), ``"epipolar"``
            (pairwise epipolar distances, greedy grouping), ``"pairwise"`` (Dong et al. 2019's
            affinity, with appearance, and its mutual-best pairs) or ``"multiway"`` (the same, and
            where the pairs are not cycle-consistent, SVT multi-way matching;
            :class:`matching.multiway.MultiwayMatcher`).
        appearance_weight: weight of the re-ID appearance affinity against the epipolar one, in
            [0, 1] (their weighted geometric mean; 0.5 is Dong et al.'s); 0 turns appearance off
            (rigs where people look alike: uniforms). Used by ``"pairwise"`` and ``"multiway"`` when the workers send
            descriptors (``[detector] reid``).
        appearance_floor: the descriptors' cosine similarity mapped to appearance affinity 0 (the
            typical cosine of two different people), in [-1, 1).
    """

    min_joint_conf: float = 0.3
    min_common_joints: int = 5
    max_epipolar_px: float = 30.0
    min_box_score: float = 0.5
    min_valid_joints: int = 6
    track_gate_m: float = 0.3
    merge_m: float = 0.3
    single_view_updates: bool = True
    method: str = "auto"
    appearance_weight: float = 0.0
    appearance_floor: float = 0.3

    def __post_init__(self) -> None:
        if self.method not in MATCHING_METHODS:
            raise ConfigError(f"matching.method must be one of {', '.join(MATCHING_METHODS)}; got {self.method!r}")
        if not 0.0 <= self.appearance_weight <= 1.0 or not -1.0 <= self.appearance_floor < 1.0:
            raise ConfigError(
                "matching.appearance_weight must lie in [0, 1] and appearance_floor in [-1, 1); got "
                f"{self.appearance_weight}, {self.appearance_floor}"
            )

    def resolved(self, stills: bool) -> MatchingConfig:
        """This config with ``method = "auto"`` made concrete: ``"multiway"`` for a run of stills,
        ``"epipolar"`` otherwise (measured by ``mvcap bench ablation``: multi-way matching finds every
        person of ``pizza_5views`` in all their views where epipolar grouping misses two, and ties on
        Shelf and the demo, whose tracks do the matching)."""
        if self.method != "auto":
            return self
        return dataclasses.replace(self, method="multiway" if stills else "epipolar")


@dataclass(frozen=True, slots=True)
class TriangulationConfig:
    """Confidence-weighted DLT with per-joint view rejection.

    Attributes:
        min_joint_conf: 2D joints below this confidence are not used.
        max_reproj_px: views whose reprojection error exceeds this (pixels) are dropped per joint.
        min_views: joints seen by fewer views are reported missing (conf 0).
        method: ``"dlt"`` (the weighted DLT with per-joint view rejection,
            :func:`triangulation.dlt.triangulate_robust`) or ``"pictorial"`` (3D pictorial
            structures on a limb-length tree, :func:`triangulation.pictorial.triangulate_pictorial`).
    """

    min_joint_conf: float = 0.3
    max_reproj_px: float = 15.0
    min_views: int = 2
    method: str = "dlt"

    def __post_init__(self) -> None:
        if self.method not in TRIANGULATION_METHODS:
            raise ConfigError(
                f"triangulation.method must be one of {', '.join(TRIANGULATION_METHODS)}; got {self.method!r}"
            )


FILTERS: tuple[str, ...] = ("ukf", "none")
"""Valid values of ``FusionConfig.filter``."""


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """Identity tracking over frames, and the live filter of each person's joints.

    Attributes:
        filter: ``"ukf"``: the live multi-person tracker of :mod:`fusion.live` (every joint's
            position and velocity filtered by an unscented Kalman filter on the views' 2D joints,
            Mahalanobis-gated association, tentative/confirmed/lost/deleted tracks, bone lengths,
            left/right consistency); the node publishes its filtered poses. ``"none"``: constant
            velocity prediction and a 3D distance gate (:mod:`fusion.tracking`); the node publishes
            the per-frame triangulations.
        gate_m: ``"none"``: largest median joint distance (metres) between a track's prediction
            and a new pose. ``"ukf"``: a group that no track's Mahalanobis gate admits still goes to
            a free track within this median joint distance (metres; its disagreeing joints
            restart), and a Mahalanobis match farther than this plus three times the track's
            position standard deviation is refused.
        max_missed_s: a track unseen for longer (seconds) is ended (``"ukf"``: a lost track is
            deleted; one seen again within this time keeps its id).
        min_joints: poses with fewer valid joints start no track.
        fill_missing_s: a joint missing in a frame is reported from its track if observed within
            this many seconds (``"none"``: predicted position, decayed confidence; ``"ukf"``: the
            filter's position, confidence from its covariance); 0 reports it missing.
        confirm_after: ``"ukf"``: a tentative track is confirmed after this many frames with a
            detection (OpenPTrack's ``detections_to_validate``, 3).
        max_tentative_s: ``"ukf"``: a track not confirmed within this many seconds of its first
            detection is deleted (OpenPTrack's ``sec_before_fake``).
        accel_noise_mps2: ``"ukf"``: standard deviation of a joint's white-noise acceleration,
            metres/second^2 (larger follows fast motion sooner, smooths less), times 1.5 for wrists
            and ankles, 1 for elbows and knees, 0.5 for the head and trunk (:mod:`fusion.live`).
        pixel_noise_px: ``"ukf"``: standard deviation of a 2D joint of confidence 1, pixels (a joint
            of confidence c gets pixel_noise_px / c); it also sets the Mahalanobis gate's width.
        bone_std_m: ``"ukf"``: standard deviation of the bone-length pseudo-measurement, metres
            (smaller is stiffer); 0 turns the bone constraint off.
        reid_max_s: ``"ukf"``: a confirmed track deleted after ``max_missed_s`` can still be
            re-identified (:mod:`fusion.reid`: bone lengths, reach, optional appearance) by a person
            seen again within this many seconds of its last detection; 0 turns re-identification off.
        reid_speed_mps: ``"ukf"``: largest plausible walking speed of a person while unseen,
            metres/second (a re-identified person is at most ``gate_m`` plus this times the time away
            from where it was last seen).
        reid_min_cosine: ``"ukf"``: smallest cosine similarity of two appearance descriptors of a
            re-identified person (used only when the worker sends descriptors).
    """

    filter: str = "ukf"
    gate_m: float = 0.5
    max_missed_s: float = 1.0
    min_joints: int = 8
    fill_missing_s: float = 0.0
    confirm_after: int = 3
    max_tentative_s: float = 1.0
    accel_noise_mps2: float = 20.0
    pixel_noise_px: float = 6.0
    bone_std_m: float = 0.02
    reid_max_s: float = 10.0
    reid_speed_mps: float = 1.5
    reid_min_cosine: float = 0.7

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise ConfigError(f"fusion.filter must be one of {list(FILTERS)}; got {self.filter!r}")
        for name in ("accel_noise_mps2", "pixel_noise_px"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"fusion.{name} must be positive; got {getattr(self, name)!r}")
        if self.reid_max_s < 0 or self.reid_speed_mps < 0:
            raise ConfigError(
                f"fusion.reid_max_s and reid_speed_mps must be >= 0; got {self.reid_max_s}, {self.reid_speed_mps}"
            )
        if self.confirm_after < 1 or self.bone_std_m < 0:
            raise ConfigError(
                f"fusion.confirm_after must be >= 1 and bone_std_m >= 0; got {self.confirm_after}, {self.bone_std_m}"
            )


@dataclass(frozen=True, slots=True)
class RGBDConfig:
    """Lifting of an RGB-D camera's 2D joints to 3D with its registered depth image (:mod:`fusion.rgbd`).

    Used only for cameras with a ``depth`` source. The depth image is registered to the colour
    image (same pixel grid, or the same field of view at another resolution), uint16 millimetres,
    0 = no reading; a reading is the z coordinate in the camera frame, not the range.

    Attributes:
        window_px: side of the square window sampled around each keypoint, pixels (odd).
        depth_noise_a_per_m: axial noise model ``sigma_z = a * z^2`` (metres, ``z`` in metres) of a
            structured-light or time-of-flight sensor (Khoshelham & Elberink 2012 measure about
            4 cm at 5 m for the Kinect, a = 1.6e-3 per metre; Nguyen et al. 2012: 1.2e-3 + 1.9e-3
            (z - 0.4)^2). ToF sensors (Kinect v2, Azure Kinect) do better: a smaller ``a``.
        edge_tol_m: samples within this depth of the window's foreground surface (plus three times
            the sensor noise at that depth) belong to it, metres; farther ones (background, flying
            pixels at silhouettes) are rejected.
        min_valid_frac: a keypoint is lifted only if at least this fraction of its window lies on
            the foreground surface (holes and other surfaces excluded), in (0, 1].
        max_body_depth_m: a keypoint whose sample lies farther than this in depth from its
            person's median sample (e.g. the wall behind an ear at the head's silhouette) is
            sampled again on its window's surface nearest that median, and not lifted if still
            farther, metres.
        min_depth_m: readings nearer than this are invalid, metres.
        max_depth_m: readings farther than this are invalid, metres.
        joint_offset_m: the joint centre lies this far behind the visible body surface along the
            viewing ray, metres: about a limb's radius (3-5 cm for arms, 5-7 cm for legs, more for
            hips and shoulders inside the torso; Shotton et al. 2011 push surface modes back by a
            learned 0.039 m).
        joint_offset_std_m: standard deviation of that offset over joints and people, metres (added
            to the axial uncertainty).
    """

    window_px: int = 5
    depth_noise_a_per_m: float = 0.0015
    edge_tol_m: float = 0.05
    min_valid_frac: float = 0.3
    max_body_depth_m: float = 1.0
    min_depth_m: float = 0.3
    max_depth_m: float = 10.0
    joint_offset_m: float = 0.05
    joint_offset_std_m: float = 0.03

    def __post_init__(self) -> None:
        if self.window_px < 1 or self.window_px % 2 == 0 or self.window_px > 31:
            raise ConfigError(f"rgbd.window_px must be an odd number of pixels in [1, 31]; got {self.window_px}")
        if not 0 < self.min_valid_frac <= 1:
            raise ConfigError(f"rgbd.min_valid_frac must lie in (0, 1]; got {self.min_valid_frac}")
        if not 0 <= self.min_depth_m < self.max_depth_m:
            raise ConfigError(f"rgbd: need 0 <= min_depth_m < max_depth_m; got {self.min_depth_m}, {self.max_depth_m}")
        for name in ("depth_noise_a_per_m", "edge_tol_m", "joint_offset_std_m", "max_body_depth_m"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"rgbd.{name} must be >= 0; got {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class SmoothingConfig:
    """Temporal fusion of each track's joints by an unscented Kalman filter (:mod:`fusion.smoothing`).

    Attributes:
        enabled: smooth recorded sequences (benchmarks, offline runs); off by default, so the live
            node publishes per-frame reconstructions.
        rts: also run the Rauch-Tung-Striebel backward pass (offline only); False keeps the causal
            forward filter.
        accel_noise_mps2: standard deviation of the white-noise acceleration of a joint, m/s^2.
        pixel_noise_px: standard deviation of a 2D joint of confidence 1, pixels (a joint of
            confidence c gets pixel_noise_px / c).
        gate_px: a view whose 2D joint lies farther than this from the joint's 3D reference (the
            frame's triangulated joint, else the filter's prediction) is not used, pixels.
        max_gap_s: a joint unobserved for longer starts a new filter, seconds.
    """

    enabled: bool = False
    rts: bool = True
    accel_noise_mps2: float = 5.0
    pixel_noise_px: float = 8.0
    gate_px: float = 20.0
    max_gap_s: float = 1.0
