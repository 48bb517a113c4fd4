"""Run configuration: frozen dataclasses, one section per package, read from TOML.

Defaults live only here. Unknown sections or keys raise :class:`ConfigError`. ``configs/demo.toml``
documents every key with its unit.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError

__all__ = [
    "CameraSource",
    "Config",
    "DEVICES",
    "FILTERS",
    "DetectorConfig",
    "FusionConfig",
    "ImageMap",
    "MatchingConfig",
    "NodeConfig",
    "RGBDConfig",
    "ROTATIONS",
    "SmoothingConfig",
    "TriangulationConfig",
    "load_config",
]


DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")
"""Where the detectors' ONNX models may run (``[detector] device``)."""


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """2D detector run by each worker.

    The network input follows each camera's frames: its long side is ``input_long_px`` along the
    frame's long side, and its short side the frame's short side scaled alike, rounded up to a
    multiple of the model stride (32). A 1920x1080 landscape frame gets 640 x 384 (width x height), a
    1088x1920 portrait frame 384 x 640: the same effective resolution either way
    (:func:`capture.detectors.input_hw_for_frame`). ``input_h`` and ``input_w`` both set (non-zero)
    fix the input for every camera instead (older configs; a portrait input applied to landscape
    frames leaves them a third of the pixels).

    Attributes:
        name: registered detector name (``mvcap`` lists them); ``"file"`` replays detections.
        input_long_px: network input's long side, pixels (a multiple of 32).
        input_h: fixed network input height, pixels (a multiple of 32); 0 follows the frame.
        input_w: fixed network input width, pixels (a multiple of 32); 0 follows the frame.
        score_threshold: minimum person score in [0, 1].
        threads: onnxruntime intra-op threads per worker.
        model: a model file of the user's, for the detectors that run one (``yolo-pose``: an
            Ultralytics ``.onnx`` or ``.pt``; ``rtmo``, ``rtmpose``: MMPose/rtmlib ONNX exports;
            ``movenet``: a ``.tflite``, default the pinned MoveNet MultiPose); checked before any
            worker starts. Empty: none.
        box_detector: ``rtmpose`` only: the registry name of the detector whose person boxes it
            refines (top-down).
        reid: each worker computes a re-ID appearance descriptor per detection
            (:mod:`capture.detect.reid`) and sends it with the detections.
        rois: 3D-guided regions of interest: the node sends each worker the predicted boxes of its
            tracked people (``[node] feedback_endpoint``) and the worker detects on crops around them
            (:mod:`capture.detect.crops`), with a full-frame pass when the node asks for one, without
            a hint, and every ``roi_full_every`` frames. ``yolo11n-pose``, ``yolo-pose`` and ``rtmo``.
        roi_full_every: a full-frame pass at least every this many frames (>= 1; 1: always full).
        roi_lag_frames: offline runs detect frame f with the hint of node frame f - this (>= 1), so
            workers and node overlap and the output does not depend on the machine's load.
        roi_input_h: crop network input height, pixels (a multiple of 32).
        roi_input_w: crop network input width, pixels (a multiple of 32).
        refine: a second, top-down pass on each person's box cut from the full-resolution frame
            (:mod:`capture.detect.refine`): ``""`` off, ``"yolo"`` (YOLO11n-pose at the crop input),
            ``"rtmpose"`` (the RTMPose ONNX file of ``model``); its keypoints are fused with the first pass's.
        refine_input_h: refinement network input height, pixels (a multiple of 32; ``"yolo"``).
        refine_input_w: refinement network input width, pixels (a multiple of 32; ``"yolo"``).
        refine_flip: the refinement also runs on the mirrored crop and averages (flip test-time
            augmentation; twice the refinement's cost).
        refine_fuse: per joint, ``"average"`` (the more confident estimate, or where both are
            confident and close, their confidence-weighted mean) or ``"replace"`` (the more confident).
        device: where the ONNX models run: ``"cpu"`` (default, the tested path), ``"cuda"``
            (onnxruntime's CUDA execution provider; an error before any worker starts when the
            installed onnxruntime has none: the ``gpu`` extra) or ``"auto"`` (CUDA when present).
            MoveNet (LiteRT) always runs on the CPU.

    Raises:
        ConfigError: a size that is not a positive multiple of 32, or only one of input_h, input_w;
            roi_full_every or roi_lag_frames below 1; an unknown refine, refine_fuse or device.
    """

    name: str = "yolo11n-pose"
    input_long_px: int = 640
    input_h: int = 0
    input_w: int = 0
    score_threshold: float = 0.5
    threads: int = 1
    model: str = ""
    box_detector: str = "yolo11n-pose"
    reid: bool = True
    rois: bool = False
    roi_full_every: int = 30
    roi_lag_frames: int = 2
    roi_input_h: int = 256
    roi_input_w: int = 160
    refine: str = ""
    refine_input_h: int = 256
    refine_input_w: int = 192
    refine_flip: bool = False
    refine_fuse: str = "average"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"detector.device must be one of {DEVICES}; got {self.device!r}")
        if self.refine not in ("", "yolo", "rtmpose") or self.refine_fuse not in ("average", "replace"):
            raise ConfigError(
                f'detector.refine must be "", "yolo" or "rtmpose" and refine_fuse "average" or "replace"; got '
                f"{self.refine!r}, {self.refine_fuse!r}"
            )
        if min(self.refine_input_h, self.refine_input_w) <= 0 or self.refine_input_h % 32 or self.refine_input_w % 32:
            raise ConfigError(
                f"detector.refine_input_h and refine_input_w must be positive multiples of 32; got "
                f"{self.refine_input_h}, {self.refine_input_w}"
            )
        if self.roi_full_every < 1 or self.roi_lag_frames < 1:
            raise ConfigError(
                f"detector.roi_full_every and roi_lag_frames must be >= 1; got {self.roi_full_every}, "
                f"{self.roi_lag_frames}"
            )
        if min(self.roi_input_h, self.roi_input_w) <= 0 or self.roi_input_h % 32 or self.roi_input_w % 32:
            raise ConfigError(
                f"detector.roi_input_h and roi_input_w must be positive multiples of 32; got {self.roi_input_h}, "
                f"{self.roi_input_w}"
            )
        if self.input_long_px <= 0 or self.input_long_px % 32:
            raise ConfigError(f"detector.input_long_px must be a positive multiple of 32; got {self.input_long_px}")
        if (self.input_h == 0) != (self.input_w == 0):
            raise ConfigError(
                f"detector: set both input_h and input_w (a fixed input) or neither; got {self.input_h}, {self.input_w}"
            )
        if self.input_h and (self.input_h < 0 or self.input_w < 0 or self.input_h % 32 or self.input_w % 32):
            raise ConfigError(
                f"detector.input_h and input_w must be positive multiples of 32; got {self.input_h}, {self.input_w}"
            )

    @property
    def fixed_input_hw(self) -> tuple[int, int] | None:
        """(height, width) of a fixed network input, pixels, or None when the input follows the frame."""
        return (self.input_h, self.input_w) if self.input_h else None


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


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Central node sockets and frame assembly.

    Attributes:
        input_endpoint: ZeroMQ endpoint the node binds for worker detections.
        output_endpoint: ZeroMQ endpoint the node binds to publish 3D poses.
        rcvhwm: receive high-water mark, messages (bounded memory; the oldest are dropped beyond).
        frame_timeout_s: a frame still missing views after this long (seconds) is processed anyway.
        heartbeat_timeout_s: a camera silent for this long (seconds) is reported dead.
        sync_window_ms: 0 groups views by frame index (synchronised cameras); otherwise views are
            grouped by capture time within this window, milliseconds (unsynchronised cameras,
            different frame rates).
        clock_offsets_ms: per-camera clock offset, milliseconds, subtracted from its stamps
            (``mvcap sync`` estimates them from recorded detections).
        status_every_s: period of the node's status line (per-camera fps, drops, latency,
            tracks), seconds; 0 disables it.
        lossless: offline runs (every source a file): a frame is released only when every camera
            has delivered it, moved past it, ended or died; no timeout decides what goes into the
            output. ``mvcap run``/``demo`` set it for file sources.
        start_timeout_s: the node starts its frame clock when every configured camera is ready
            (source and model open), or after this long, seconds, naming the cameras it started
            without.
        max_ahead_frames: live runs: frames lying more than this many frames (or sync windows)
            ahead of the rig's clock (the low median of the cameras' latest frames) are rejected
            and counted. 0 disables the check.
        max_people_per_view: at most this many people of one view enter reconstruction (the most
            confident); the rest are dropped and counted, so work per frame stays bounded.
        max_backlog_s: live runs: a frame captured more than this long ago (seconds, wall-clock
            stamps) is skipped and counted when newer frames are ready too, so a node slower than
            the stream stays current; 0 processes every frame.
        curve_secret_key: the node's CURVE secret key file (``mvcap keys``); set, the input accepts
            only the cameras whose public keys are in ``curve_clients_dir``, each for its own name.
        curve_clients_dir: folder of the cameras' public keys, ``<camera>.key``.
        curve_output_clients_dir: folder of the public keys of the viewers and recorders allowed to
            read the 3D output; empty leaves the output open (to loopback, by default).
        feedback_endpoint: ZeroMQ endpoint the node binds to send each worker its regions of
            interest (:mod:`capture.service.feedback`), when ``[detector] rois`` is on; beyond
            loopback only with ``curve_secret_key`` (the workers' keys then read it).

    Raises:
        ConfigError: a feedback endpoint that is not ``tcp://``, ``ipc://`` or ``inproc://``.
    """

    input_endpoint: str = "tcp://127.0.0.1:5555"
    output_endpoint: str = "tcp://127.0.0.1:5556"
    rcvhwm: int = 10000
    frame_timeout_s: float = 2.0
    heartbeat_timeout_s: float = 3.0
    sync_window_ms: float = 0.0
    clock_offsets_ms: dict[str, float] = field(default_factory=dict)
    status_every_s: float = 5.0
    lossless: bool = False
    start_timeout_s: float = 30.0
    max_ahead_frames: int = 120
    max_people_per_view: int = 64
    max_backlog_s: float = 2.0
    curve_secret_key: str = ""
    curve_clients_dir: str = ""
    curve_output_clients_dir: str = ""
    feedback_endpoint: str = "tcp://127.0.0.1:5557"

    def __post_init__(self) -> None:
        if self.feedback_endpoint.partition("://")[0] not in ("tcp", "ipc", "inproc"):
            raise ConfigError(
                f"node.feedback_endpoint must be tcp://, ipc:// or inproc://; got {self.feedback_endpoint!r}"
            )


ROTATIONS: tuple[int, ...] = (0, 90, 180, 270)
"""The frame rotations a camera may give (``[[cameras]] rotate``), degrees clockwise."""


@dataclass(frozen=True, slots=True)
class ImageMap:
    """How a camera's frames relate to its calibration's image, when they differ in size.

    ``calibration pixel = (frame pixel - pad) / scale``, per axis: the frames are the calibrated
    images scaled by ``scale_x``, ``scale_y``, then shifted by ``pad_x``, ``pad_y`` pixels (padding
    when positive, e.g. black bars; cropping when negative). Written in a config as
    ``image_map = {scale = 0.5, pad_x = 0, pad_y = -14}`` (``scale`` sets both axes), or with
    ``scale_x`` and ``scale_y``. Workers map their detections with it, so detections on the wire
    are in calibration pixels.

    Attributes:
        scale_x: frame pixels per calibration pixel along x (> 0).
        scale_y: frame pixels per calibration pixel along y (> 0).
        pad_x: frame x of the calibration image's x = 0, frame pixels.
        pad_y: frame y of the calibration image's y = 0, frame pixels.

    Raises:
        ConfigError: a scale that is not a positive finite number, or a non-finite pad.
    """

    scale_x: float = 1.0
    scale_y: float = 1.0
    pad_x: float = 0.0
    pad_y: float = 0.0

    def __post_init__(self) -> None:
        scales_ok = all(math.isfinite(v) and v > 0 for v in (self.scale_x, self.scale_y))
        if not scales_ok or not all(math.isfinite(v) for v in (self.pad_x, self.pad_y)):
            raise ConfigError(
                f"image_map: scales must be positive and pads finite; got scale {self.scale_x}, {self.scale_y}, "
                f"pad {self.pad_x}, {self.pad_y}"
            )


@dataclass(frozen=True, slots=True)
class CameraSource:
    """One camera of a run: its calibration name and its frame source.

    Attributes:
        name: camera name in the calibration.
        source: video file, image folder, webcam index, or a detections file (``*.json[.gz]``).
        image_size: (width, height) of its images, pixels, for calibrations that store none
            (VoxelPose); None takes the calibration's. Where both exist they must agree.
        depth: an RGB-D camera's depth source, registered to its colour frames: a folder of 16-bit
            PNG images (uint16 millimetres, 0 = no reading) numbered as the colour frames, or a
            ``.npy`` (T, H, W) uint16 recording; "" for a colour-only camera. Its worker lifts the
            2D joints to 3D (``[rgbd]``).
        image_map: frames of another size than the calibration's image: how frame pixels map to
            calibration pixels (:class:`ImageMap`); None: frames must have the calibrated size.
        stills: the source is an image folder of independent moments (photo sets, benchmark
            frames): each image is reconstructed on its own, no track carried from one to the next.
        rotate: degrees (0, 90, 180 or 270) the worker turns each frame clockwise before detection,
            for a camera mounted on its side or upside down, so that the 2D detector (trained on
            upright people) sees people upright; the detections are turned back into the frame's
            own pixels, so the calibration and ``image_map`` stay those of the frames as recorded.
    """

    name: str
    source: str
    image_size: tuple[int, int] | None = None
    depth: str = ""
    image_map: ImageMap | None = None
    stills: bool = False
    rotate: int = 0

    def __post_init__(self) -> None:
        if self.rotate not in ROTATIONS:
            raise ConfigError(
                f"camera {self.name}: rotate must be one of {ROTATIONS} (degrees clockwise); got {self.rotate!r}"
            )


@dataclass(frozen=True, slots=True)
class Config:
    """A full run configuration."""

    calibration: str = ""
    cameras: tuple[CameraSource, ...] = ()
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    rgbd: RGBDConfig = field(default_factory=RGBDConfig)


_SECTIONS: dict[str, type] = {
    "detector": DetectorConfig,
    "matching": MatchingConfig,
    "triangulation": TriangulationConfig,
    "fusion": FusionConfig,
    "smoothing": SmoothingConfig,
    "node": NodeConfig,
    "rgbd": RGBDConfig,
}
_CAMERA_KEYS = {"name", "source", "image_size", "depth", "image_map", "stills", "rotate"}
_IMAGE_MAP_KEYS = {"scale", "scale_x", "scale_y", "pad_x", "pad_y"}


def _section(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [{cls.__name__}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    out = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is an int subclass: an int must not pass for a bool, nor a bool for an int.
        if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(f"{where}: {key} must be {type(default).__name__}; got {value!r}")
        out[key] = value
    return cls(**out)


def _image_size(value: Any, where: str) -> tuple[int, int] | None:
    """A camera's ``image_size = [width, height]`` (two positive integers, pixels), or None."""
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == 2
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"{where}: image_size must be [width, height], two positive integers (pixels); got {value!r}")
    return int(value[0]), int(value[1])


def _image_map(value: Any, where: str) -> ImageMap | None:
    """A camera's ``image_map = {scale = s, pad_x = px, pad_y = py}`` (or ``scale_x``, ``scale_y``), or None."""
    if value is None:
        return None
    if not isinstance(value, dict) or not set(value) <= _IMAGE_MAP_KEYS:
        raise ConfigError(f"{where}: image_map must be a table of {sorted(_IMAGE_MAP_KEYS)}; got {value!r}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
        raise ConfigError(f"{where}: image_map values must be numbers; got {value!r}")
    has_xy = "scale_x" in value or "scale_y" in value
    if ("scale" in value) == has_xy or (has_xy and not {"scale_x", "scale_y"} <= set(value)):
        raise ConfigError(f"{where}: image_map needs scale, or both scale_x and scale_y; got {value!r}")
    sx = float(value.get("scale", value.get("scale_x", 1.0)))
    sy = float(value.get("scale", value.get("scale_y", 1.0)))
    try:
        return ImageMap(sx, sy, float(value.get("pad_x", 0.0)), float(value.get("pad_y", 0.0)))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def config_from_dict(data: dict[str, Any], where: str = "config") -> Config:
    """Build a :class:`Config` from a parsed TOML table.

    Raises:
        ConfigError: unknown section or key, or a value of the wrong type.
    """
    known = {"calibration", "cameras", *_SECTIONS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; valid: {sorted(known)}")
    kwargs: dict[str, Any] = {
        name: _section(cls, data.get(name, {}), f"{where} [{name}]") for name, cls in _SECTIONS.items()
    }
    calibration = data.get("calibration", "")
    if not isinstance(calibration, str):
        raise ConfigError(f"{where}: calibration must be a path string")
    cams = data.get("cameras", [])
    if not isinstance(cams, list) or not all(
        isinstance(c, dict) and {"name", "source"} <= set(c) <= _CAMERA_KEYS for c in cams
    ):
        raise ConfigError(
            f"{where}: cameras must be a list of {{name = ..., source = ..., and optional image_size = [w, h], "
            "depth = ..., image_map = {{scale = ..., pad_x = ..., pad_y = ...}}, stills = true, rotate = 90}} tables"
        )
    for c in cams:
        if not isinstance(c.get("depth", ""), str):
            raise ConfigError(f"{where}: [[cameras]] {c['name']}: depth must be a path string; got {c['depth']!r}")
        if not isinstance(c.get("stills", False), bool):
            raise ConfigError(f"{where}: [[cameras]] {c['name']}: stills must be true or false; got {c['stills']!r}")
        rotate = c.get("rotate", 0)
        if not isinstance(rotate, int) or isinstance(rotate, bool) or rotate not in ROTATIONS:
            raise ConfigError(f"{where}: [[cameras]] {c['name']}: rotate must be one of {ROTATIONS}; got {rotate!r}")
    cameras = tuple(
        CameraSource(
            str(c["name"]),
            str(c["source"]),
            _image_size(c.get("image_size"), f"{where} [[cameras]] {c['name']}"),
            c.get("depth", ""),
            _image_map(c.get("image_map"), f"{where} [[cameras]] {c['name']}"),
            c.get("stills", False),
            c.get("rotate", 0),
        )
        for c in cams
    )
    return Config(calibration=calibration, cameras=cameras, **kwargs)


def load_config(path: str | Path) -> Config:
    """Read a TOML run configuration; relative paths in it are resolved against its folder.

    Raises:
        ConfigError: missing or unparseable file, unknown keys, wrong types.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    cfg = config_from_dict(data, where=str(path))

    def resolve(p: str) -> str:
        return p if (not p or p.isdigit() or Path(p).is_absolute()) else str((path.parent / p).resolve())

    return dataclasses.replace(
        cfg,
        calibration=resolve(cfg.calibration),
        cameras=tuple(dataclasses.replace(c, source=resolve(c.source), depth=resolve(c.depth)) for c in cfg.cameras),
        detector=dataclasses.replace(cfg.detector, model=resolve(cfg.detector.model)),
    )
