"""Live service: realtime replay, a worker killed and restarted mid-take, recording, status."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from procs import inproc_config, live_config, py, run_node_with_workers, wait_for_text
from synth import write_walking_scene

from capture.outputs import read_poses_jsonl

FPS = 30.0
N_FRAMES = 240  # 8 s


@pytest.mark.slow
@pytest.mark.parametrize("load", ["idle", "cores busy"])
def test_worker_killed_and_restarted_mid_take(tmp_path, request, load):
    if load == "cores busy":
        request.getfixturevalue("cpu_hogs")
    calib, cams = write_walking_scene(tmp_path, N_FRAMES, FPS)
    cfg, node_in, node_out = live_config(tmp_path, calib)
    out, take = tmp_path / "run", tmp_path / "take"
    node = py("capture.service.node", "--config", str(cfg), "--out", str(out), log=tmp_path / "node.log")
    recorder = py("capture.service.record", "--endpoint", node_out, "--out", str(take), log=tmp_path / "rec.log")
    # the node has the recorder's subscription (ZeroMQ's slow joiner: a connect is not yet a subscription)
    assert wait_for_text(tmp_path / "node.log", "output subscriber joined")
    epoch = time.time_ns() + int(4e9)

    def worker(cam: str) -> subprocess.Popen:
        src = str(tmp_path / f"{cam}.json.gz")
        args = [
            "--camera",
            cam,
            "--source",
            src,
            "--endpoint",
            node_in,
            "--epoch-ns",
            str(epoch),
            "--realtime",
        ]
        return py("capture.service.worker", *args, log=tmp_path / f"w_{cam}.log")

    workers = {c: worker(c) for c in cams}
    victim = cams[2]
    rec_file = take / "poses3d.jsonl"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not rec_file.exists() or len(rec_file.read_text().splitlines()) < 60):
            time.sleep(0.05)
        workers[victim].send_signal(signal.SIGKILL)  # crash: no end-of-stream message
        workers[victim].wait(10)
        time.sleep(0.5)
        workers[victim] = worker(victim)  # restarted: resumes at the current frame
        assert node.wait(60) == 0, (tmp_path / "node.log").read_text()[-3000:]
        time.sleep(0.5)
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(10) == 0
    finally:
        for p in [node, recorder, *workers.values()]:
            if p.poll() is None:
                p.kill()
    summary = json.loads((out / "summary.json").read_text())
    others = [c for c in cams if c != victim]
    # Every frame of a camera that stayed up is accounted for: filed, skipped at its source (a worker
    # behind real time on a loaded machine skips to the freshest frame) or late; none vanishes.
    for c in others:
        accounted = summary["frames_per_camera"][c] + summary["skipped_at_source"][c] + summary["late_per_camera"][c]
        assert accounted == N_FRAMES, (c, summary["frames_per_camera"], summary["skipped_at_source"])
        assert summary["frames_per_camera"][c] > N_FRAMES // 2
    assert 0 < summary["frames_per_camera"][victim] < N_FRAMES - 15
    assert summary["frames_missing_views"] >= 15  # the victim's gap: frames made of 3 views
    hellos = [e for e in summary["camera_events"] if e["event"] == "hello" and e["camera"] == victim]
    assert len(hellos) == 2
    _, node_frames = read_poses_jsonl(out / "poses3d.jsonl")
    _, rec_frames = read_poses_jsonl(rec_file)
    idx = [f.frame_idx for f in node_frames]
    assert [f.frame_idx for f in rec_frames] == idx == sorted(set(idx))  # the recording holds every output frame
    # A frame absent from the output was skipped by every camera that was up, or by a node behind.
    behind = summary["frames_skipped_behind"]
    assert N_FRAMES - len(idx) <= min(summary["skipped_at_source"][c] for c in others) + behind
    assert all(len(f.track_ids) == 2 for f in rec_frames[5:])
    ids = {tuple(sorted(f.track_ids.tolist())) for f in rec_frames[5:]}
    assert len(ids) == 1  # identities kept through the outage


class _SlowWorker:
    """A worker whose 'detector' takes three frame periods (it sleeps), as a slow model would."""

    @staticmethod
    def make(cam: str, source: str, endpoint: str, epoch_ns: int, period_s: float):
        from capture.service.worker import Worker

        class Slow(Worker):
            def _detect(self, frame_idx, stamp_ns, payload):  # noqa: ANN001, ANN202
                time.sleep(3 * period_s)
                self.detect_ms.add(3e3 * period_s)
                return super()._detect(frame_idx, stamp_ns, payload)

        return Slow(cam, source, endpoint, epoch_ns=epoch_ns, realtime=True, subscribe_timeout_s=20)


def test_live_worker_three_times_slower_than_real_time_keeps_publishing(tmp_path):
    import zmq

    from calibration.io import read_calibration
    from capture.service.node import Node

    n_frames = 90  # 3 s at 30 fps
    calib, cams = write_walking_scene(tmp_path, n_frames, FPS)
    cfg = inproc_config()
    node = Node(read_calibration(calib), cfg, tmp_path / "run")
    epoch = time.time_ns() + int(1e9)
    workers = [
        _SlowWorker.make(c, str(tmp_path / f"{c}.json.gz"), cfg.node.input_endpoint, epoch, 1 / FPS) for c in cams
    ]
    result = run_node_with_workers(node, workers, zmq.Context())
    # At least a quarter of the frames are published, to the end of the take; the rest are skipped
    # at the source and reported per camera, in summary.json and on the console.
    assert result["frames"] >= n_frames // 4
    _, frames = read_poses_jsonl(tmp_path / "run" / "poses3d.jsonl")
    assert frames[-1].frame_idx >= n_frames - 4
    for c in cams:
        skipped, filed = result["skipped_at_source"][c], result["frames_per_camera"][c]
        assert skipped > 0 and filed + skipped + result["late_per_camera"][c] == n_frames, (c, filed, skipped)
    assert result["complete"]  # skipping to keep up is not data loss in a live run
