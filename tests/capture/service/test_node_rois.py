"""The node's region-of-interest feedback, on the demo's real YOLO11n-pose detections over inproc.

With ``[detector] rois`` on, the node sends every camera one hint per processed frame, and the
boxes hold the people the camera's detector found in that frame; off, it binds no feedback socket.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from pathlib import Path

import numpy as np
import zmq
from procs import inproc_config

from calibration.io import read_calibration
from capture.service.feedback import RoiSubscriber
from capture.service.node import Node, main
from capture.service.worker import Worker
from capture.sources.detection_files import read_detections_json
from core.config import Config

DETS = Path(__file__).resolve().parents[2] / "data" / "demo_yolo11n"
CAMS = ("cam01", "cam02", "cam03", "cam04")
CALIB = "pose2sim_demo_multiperson/calibration/Calib.qca.txt"


def _config(rois: bool, feedback_endpoint: str) -> Config:
    cfg = inproc_config()
    return dataclasses.replace(
        cfg,
        detector=dataclasses.replace(cfg.detector, rois=rois),
        node=dataclasses.replace(cfg.node, feedback_endpoint=feedback_endpoint, status_every_s=0.0, lossless=True),
    )


def _run(shared_data: Path, out: Path, cfg: Config, n_frames: int, listen: str | None) -> tuple[dict, dict]:
    """Node + 4 recorded-detection workers in threads; a collector subscribed to ``listen`` as each
    camera. Returns the summary and, per camera, its hints by frame index."""
    rig = read_calibration(shared_data / CALIB)
    ctx = zmq.Context()
    node = Node(rig, cfg, out)
    result: dict = {}
    hints: dict[str, dict] = {}
    ready, stop = threading.Event(), threading.Event()

    def collect() -> None:
        subs = [RoiSubscriber(ctx, listen, c) for c in CAMS] if listen else []
        ready.set()
        while not stop.is_set():
            for s in subs:
                s.poll()
            stop.wait(0.01)
        for s in subs:
            s.poll()
            hints[s.camera] = {f: h for f in range(-1, n_frames + 1) if (h := s.wait_for(f, 0.0)) is not None}
            hints[s.camera]["dropped"] = s.dropped
            s.close()

    t_collect = threading.Thread(target=collect)
    t_collect.start()
    assert ready.wait(10)
    t_node = threading.Thread(target=lambda: result.update(node.run(ctx)))
    t_node.start()
    workers = [Worker(c, str(DETS / f"{c}.json.gz"), cfg.node.input_endpoint, max_frames=n_frames) for c in CAMS]
    threads = [threading.Thread(target=w.run, args=(ctx,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    t_node.join(60)
    stop.set()
    t_collect.join(30)
    assert not t_node.is_alive() and not t_collect.is_alive()
    ctx.term()
    return result, hints


def _inside(uv: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N,) whether each pixel point lies in one of the boxes (K, 4)."""
    lo, hi = boxes[None, :, :2], boxes[None, :, 2:]
    return ((uv[:, None] >= lo) & (uv[:, None] <= hi)).all(-1).any(-1)


def test_node_sends_each_camera_one_hint_per_frame_around_its_people(shared_data, tmp_path):
    n = 30
    endpoint = f"inproc://feedback-{uuid.uuid4().hex}"
    summary, hints = _run(shared_data, tmp_path, _config(True, endpoint), n, endpoint)
    assert summary["frames"] == n and summary["roi_feedback"]["hints"] == 4 * n
    rig = read_calibration(shared_data / CALIB)
    full_frames = 0
    for cam in CAMS:
        assert hints[cam].pop("dropped") == 0
        assert sorted(hints[cam]) == list(range(n)), cam  # one per frame, by the camera's frame index
        w, h = rig[cam].size
        dets = {d.frame_idx: d for d in read_detections_json(DETS / f"{cam}.json.gz")}
        held, total = 0, 0
        for f, hint in hints[cam].items():
            assert hint.camera == cam and hint.boxes.shape == (len(hint.track_ids), 4)
            assert (hint.boxes[:, :2] >= 0).all() and (hint.boxes[:, 2] <= w).all() and (hint.boxes[:, 3] <= h).all()
            full_frames += hint.full
            joints = dets[f].poses[dets[f].boxes[:, 4] >= 0.5]
            uv = joints[joints[..., 2] >= 0.5][:, :2]
            held += int(_inside(uv, hint.boxes).sum())
            total += len(uv)
        # The boxes come from the tracked 3D people of the same frame: they hold nearly all the
        # confident joints the camera's detector found (the rest: people the node does not track).
        assert held >= 0.9 * total, (cam, held, total)
    # The demo's people are tracked from the first frames: most hints ask for no full frame.
    assert full_frames < 4 * n / 2, full_frames
    assert summary["roi_feedback"]["full"] == full_frames


def test_node_binds_no_feedback_socket_when_rois_are_off(shared_data, tmp_path):
    """The feedback endpoint is held by this test: a node that bound it would fail to start."""
    ctx = zmq.Context()
    holder = ctx.socket(zmq.PUB)
    port = holder.bind_to_random_port("tcp://127.0.0.1")
    summary, _ = _run(shared_data, tmp_path, _config(False, f"tcp://127.0.0.1:{port}"), 5, None)
    assert summary["frames"] == 5 and summary["roi_feedback"] is None
    holder.close(0)
    ctx.term()


def test_exposed_feedback_endpoint_is_a_one_line_config_error(shared_data, tmp_path, capfd):
    cfg = tmp_path / "exposed.toml"
    cfg.write_text(
        f'calibration = "{shared_data / CALIB}"\n[detector]\nrois = true\n'
        '[node]\nfeedback_endpoint = "tcp://0.0.0.0:5557"\n'
    )
    assert main(["--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = [line for line in capfd.readouterr().err.splitlines() if " INFO " not in line]  # log lines aside
    assert len(err) == 1 and "ERROR" in err[0] and "feedback_endpoint tcp://0.0.0.0:5557 is reachable" in err[0]
    assert not (tmp_path / "out").exists()  # refused before anything was bound or written
