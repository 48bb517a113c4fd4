"""Live VMC out: one performer's skeleton as Virtual Motion Capture (VMC) OSC messages over UDP.

The VMC protocol (protocol.vmc.info; read by Virtual Motion Capture, VSeeFace, Unity's EVMC4U and
Blender's VMC4B) drives a Unity humanoid avatar. Each frame is one OSC bundle (python-osc) of:

- ``/VMC/Ext/Root/Pos "root" px py pz qx qy qz qw``: the avatar root, at the origin, identity;
- ``/VMC/Ext/Bone/Pos <HumanBodyBones name> px py pz qx qy qz qw`` for each bone of
  :data:`~capture.outputs.bvh_solve.RIG` that has a Unity name (Hips, Spine, Neck, Head,
  shoulders, upper/lower arms, hands, upper/lower legs, feet): the local rotation from the same
  solver as the BVH export, and the local position (the rest offset; for Hips the hip position);
- ``/VMC/Ext/OK 1 3 0 <tracking>`` (loaded, calibrated, normal mode; tracking 1 when the performer
  is in this frame, 0 while its last pose is held);
- ``/VMC/Ext/T <seconds since the first frame>``.

Convention: Unity is left-handed and Y up, an avatar faces +Z with its left hand towards -X. From
the solver's right-handed Y-up frame (facing +Z, left along +X) the map is a mirror of X: position
(x, y, z) -> (-x, y, z) and quaternion (qx, qy, qz, qw) -> (qx, -qy, -qz, qw) (the rotation M R M with
M = diag(-1, 1, 1)), as glTF importers do. The rest pose (all local rotations identity) is the
T-pose of a VRM-normalised humanoid. Positions in metres.

Several people: one performer per :class:`VmcSender` (one ``--vmc`` target): a given track id,
or else the lowest id present that no other target has taken, kept while it is seen; after
``release_s`` without it the target takes the lowest free id again (and starts a fresh rest pose).

Example:
    >>> from scipy.spatial.transform import Rotation
    >>> yaw = Rotation.from_euler("y", 30, degrees=True)  # turning left, seen from above (solver frame)
    >>> np.round(unity_quaternions(yaw.as_matrix()[None]), 4).tolist()  # Unity: the same turn is -30 deg
    [[0.0, -0.2588, 0.0, 0.9659]]
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Final

import numpy as np
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient
from scipy.spatial.transform import Rotation

from capture.outputs.bvh import yup_from_world
from capture.outputs.bvh_solve import RIG, PoseSolver, RestEstimator
from core.errors import InputError
from core.skeleton import COCO17, Skeleton
from core.types import Poses3D

__all__ = [
    "UNITY_FROM_YUP",
    "VMC_BONES",
    "VmcPerformer",
    "VmcSender",
    "parse_host_port",
    "unity_positions",
    "unity_quaternions",
    "vmc_bundle",
]

log = logging.getLogger(__name__)

UNITY_FROM_YUP: Final = np.diag([-1.0, 1.0, 1.0])
"""Solver frame (right-handed, Y up) to Unity (left-handed, Y up): x mirrored."""

VMC_BONES: Final = tuple((k, j.unity) for k, j in enumerate(RIG) if j.unity is not None)
"""(rig index, Unity HumanBodyBones name) of the bones sent, parents first."""

DEFAULT_PORT: Final = 39539  # the VMC receivers' (Marionette's) default port


def unity_positions(points: np.ndarray) -> np.ndarray:
    """Solver-frame points (N, 3) as Unity positions (N, 3), metres."""
    return np.asarray(points, float) @ UNITY_FROM_YUP.T


def unity_quaternions(rotations: np.ndarray) -> np.ndarray:
    """Solver-frame rotations (N, 3, 3) as Unity quaternions (N, 4) [x, y, z, w] (see the module docstring)."""
    m = UNITY_FROM_YUP
    return Rotation.from_matrix(m @ np.asarray(rotations, float) @ m).as_quat()


def parse_host_port(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST``, ``[v6]:PORT``) as (host, port).

    Raises:
        InputError: no host or a port outside 1..65535.

    Example:
        >>> parse_host_port("127.0.0.1:39540"), parse_host_port("localhost")
        (('127.0.0.1', 39540), ('localhost', 39539))
    """
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port or (host.count(":") and not host.startswith("[")):
        host, port = text, str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"VMC target must be HOST:PORT with a port in 1..65535; got {text!r}")
    return host, int(port)


def _message(address: str, *args: str | int | float) -> OscMessageBuilder:
    msg = OscMessageBuilder(address=address)
    for a in args:
        msg.add_arg(a)
    return msg


def vmc_bundle(
    hips_position: np.ndarray, local: np.ndarray, offsets: np.ndarray, time_s: float, tracking: bool
) -> OscBundle:
    """One frame's VMC bundle.

    Args:
        hips_position: (3,) root (mid-hip) position, metres, solver frame.
        local: (K, 3, 3) local joint rotations, solver frame.
        offsets: (K, 3) rest offsets, metres, solver frame (the bones' local positions).
        time_s: seconds, sent as ``/VMC/Ext/T``.
        tracking: the performer was seen in this frame (``/VMC/Ext/OK`` tracking status).

    Returns:
        The bundle (Root/Pos, Bone/Pos for each of :data:`VMC_BONES`, OK, T).
    """
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(_message("/VMC/Ext/Root/Pos", "root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0).build())
    idx = [k for k, _ in VMC_BONES]
    quats = unity_quaternions(local[idx])
    pos = unity_positions(offsets[idx])
    pos[0] = unity_positions(hips_position[None])[0]
    for (_, name), p, q in zip(VMC_BONES, pos.tolist(), quats.tolist(), strict=True):
        bundle.add_content(_message("/VMC/Ext/Bone/Pos", name, *p, *q).build())
    bundle.add_content(_message("/VMC/Ext/OK", 1, 3, 0, int(tracking)).build())
    bundle.add_content(_message("/VMC/Ext/T", float(time_s)).build())
    return bundle.build()


class VmcPerformer:
    """One person's solver with a rest pose learnt live (medians of the last ``max_samples`` frames).

    Args:
        skeleton: the input joints.
        up: the world axis pointing up (see :func:`~capture.outputs.bvh.zup_from_world`).
        max_samples: frames kept per bone-length measure.
        refit_every: frames between rest-pose updates.

    Raises:
        InputError: unknown axis, or a skeleton without the COCO-17 joints.
    """

    def __init__(self, skeleton: Skeleton = COCO17, up: str = "z", max_samples: int = 900, refit_every: int = 30):
        self.to_yup = yup_from_world(up)
        self.skeleton = skeleton
        self.estimator = RestEstimator(skeleton, max_samples=max_samples)
        self.refit_every = refit_every
        self.solver = PoseSolver(self.estimator.rest(), skeleton)
        self._n = 0

    def update(self, pose: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Solve one frame (None: the performer is absent, hold its last pose).

        Args:
            pose: (J, 4) [x, y, z, conf] world joints, metres, or None.

        Returns:
            Hips position (3,) and local rotations (K, 3, 3), solver frame.
        """
        pts = np.zeros((1, self.skeleton.n_joints, 4))
        if pose is not None:
            pts[0, :, :3] = pose[:, :3] @ self.to_yup.T
            pts[0, :, 3] = pose[:, 3]
            self.estimator.add(pts)
            self._n += 1
            if self._n <= 3 or self._n % self.refit_every == 0:
                self.solver.set_rest(self.estimator.rest())
        motion = self.solver.solve(pts)
        return motion.root[0], motion.local[0]


class VmcSender:
    """Sends one performer of each frame to a VMC receiver over UDP.

    Args:
        host: receiver host.
        port: receiver UDP port.
        person: track id to send; None follows the lowest free id (see the module docstring).
        up: the world axis pointing up.
        skeleton: the frames' joints.
        release_s: seconds without its person before a following sender takes another one.

    Raises:
        InputError: the host cannot be resolved, unknown axis or skeleton.
    """

    def __init__(
        self,
        host: str,
        port: int,
        person: int | None = None,
        up: str = "z",
        skeleton: Skeleton = COCO17,
        release_s: float = 1.0,
    ):
        try:
            self.client = UDPClient(host, port)
        except OSError as exc:
            raise InputError(f"VMC target {host}:{port}: cannot resolve ({exc})") from None
        self.target = f"{host}:{port}"
        self.fixed = person
        self.person = person
        self.up, self.skeleton, self.release_s = up, skeleton, release_s
        self.performer = VmcPerformer(skeleton, up)
        self.sent = 0
        self.dropped = 0
        self._t0_ns: int | None = None
        self._seen_ns: int | None = None

    def _choose(self, ids: list[int], taken: Collection[int], stamp_ns: int) -> int | None:
        if self.fixed is not None:
            return self.fixed
        lost = self._seen_ns is not None and (stamp_ns - self._seen_ns) * 1e-9 > self.release_s
        if self.person is None or (self.person not in ids and lost):
            free = sorted(t for t in ids if t not in taken)
            new = free[0] if free else None
            if new is not None and new != self.person:
                if self.person is not None:
                    log.info("VMC %s: track %d lost; now sending track %d", self.target, self.person, new)
                self.person, self._seen_ns = new, None
                self.performer = VmcPerformer(self.skeleton, self.up)
        return self.person

    def send(self, frame: Poses3D, taken: Collection[int] = ()) -> int | None:
        """Send this frame's performer (its held pose while absent); returns its track id or None.

        Args:
            frame: world poses.
            taken: track ids other senders already send (a following sender skips them).
        """
        ids = frame.track_ids.tolist()
        tid = self._choose(ids, taken, frame.stamp_ns)
        if tid is None or (tid not in ids and self._seen_ns is None):
            return None  # nobody to send yet
        pose = frame.poses[ids.index(tid)] if tid in ids else None
        if pose is not None:
            self._seen_ns = frame.stamp_ns
        if self._t0_ns is None:
            self._t0_ns = frame.stamp_ns
        hips, local = self.performer.update(pose)
        bundle = vmc_bundle(
            hips, local, self.performer.solver.rest.offsets, (frame.stamp_ns - self._t0_ns) * 1e-9, pose is not None
        )
        try:
            self.client.send(bundle)
            self.sent += 1
        except OSError as exc:  # a full socket buffer or an unreachable network: drop the frame
            self.dropped += 1
            log.debug("VMC %s: frame %d dropped (%s)", self.target, frame.frame_idx, exc)
        return tid

    def close(self) -> None:
        """Close the UDP socket."""
        self.client.close()
