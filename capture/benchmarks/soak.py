"""``mvcap bench soak``: node memory over a long take, and the time its end of take needs.

A synthetic 4-camera ring (radius 5 m) watches ``--people`` people walking; ``--minutes`` of stream
at ``--rate-hz`` are sent to a node process over loopback TCP, paced in real time (``--fast``: as
fast as the node takes them; the senders never drop, so the node sees every frame). Twice: with
``[smoothing]`` off (the baseline, measured in the same run) and on. For each it prints the node's
resident memory (``VmRSS``) after a warm-up (5% of the frames) and once it has written the last
frame, the growth extrapolated to one hour of stream, and the end-of-take time: from the
end-of-stream messages, sent once every frame is written, to the node's exit (the smoother's last
frames, the TRC headers, the summary).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from capture import wire
from capture.benchmarks.live import camera_sockets, pose2d_messages, send_eos, start_node
from capture.benchmarks.synthetic import ring_rig
from capture.outputs import count_frames

__all__ = ["main", "run_soak"]


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MiB (Linux ``/proc/<pid>/status``; nan elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def run_soak(minutes: float, rate_hz: float, n_people: int, smoothing: bool, workdir: Path, fast: bool = False) -> dict:
    """One node process fed ``minutes`` of stream; its memory and end-of-take figures."""
    rng = np.random.default_rng(0)
    rig = ring_rig(4, radius=5.0)
    n_frames = int(minutes * 60 * rate_hz)
    tag = "smoothing" if smoothing else "plain"
    node, out, node_in, _ = start_node(
        rig, workdir, tag,
        f"status_every_s = 0.0\nlossless = true\n[smoothing]\nenabled = {'true' if smoothing else 'false'}\n",
    )  # fmt: skip
    ctx = zmq.Context()
    pubs = []
    warm = max(1, n_frames // 20)
    rss_start = rss_end = float("nan")
    t_send = time.perf_counter()
    try:
        # One connection per simulated camera that never drops: the node sets the pace.
        pubs = camera_sockets(ctx, rig, node_in, sndhwm=200, nodrop=True)
        for name, pub in pubs:
            pub.send_multipart(wire.encode(wire.Message("heartbeat", name, -1, time.time_ns(), {}, {"event": "ready"})))
        t0 = time.perf_counter()
        for f in range(n_frames):
            if f == warm:
                rss_start = rss_mb(node.pid)
            msgs = pose2d_messages(rig, f, rate_hz, n_people, rng)
            if not fast:
                time.sleep(max(0.0, t0 + f / rate_hz - time.perf_counter()))
            for (_, pub), msg in zip(pubs, msgs, strict=True):
                pub.send_multipart(msg)  # blocks while the node is behind (no drop)
        while count_frames(out / "poses3d.jsonl") < n_frames and node.poll() is None:
            time.sleep(0.2)  # every frame written
        rss_end = rss_mb(node.pid)
        t_send = time.perf_counter() - t_send
        t_end = time.perf_counter()
        send_eos(pubs, n_frames - 1)
        node.wait(3600)
        end_s = time.perf_counter() - t_end
    finally:
        for _, pub in pubs:
            pub.close(0)
        ctx.destroy(0)
        if node.poll() is None:
            node.kill()
    summary = json.loads((out / "summary.json").read_text())
    hours = n_frames / rate_hz / 3600.0 * (1 - warm / n_frames)
    return {
        "smoothing": smoothing,
        "stream_minutes": round(n_frames / rate_hz / 60, 2),
        "frames": summary["frames"],
        "complete": summary["complete"],
        "node_rss_mb_after_warmup": round(rss_start, 1),
        "node_rss_mb_at_end": round(rss_end, 1),
        "rss_growth_mb_per_hour": round((rss_end - rss_start) / hours, 1) if hours > 0 else None,
        "end_of_take_s": round(end_s, 2),
        "send_wall_s": round(t_send, 1),
        "node_cpu_ms_per_frame_median": summary["node_ms_per_frame"]["total"]["median"],
        "smoothing_cpu_ms_per_frame": summary["smoothing_cpu_ms_per_frame"],
    }


def main(argv: list[str] | None = None) -> int:
    """Print the soak figures, without and with smoothing, as JSON lines."""
    p = argparse.ArgumentParser(prog="mvcap bench soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="stream length, minutes")
    p.add_argument("--rate-hz", type=float, default=30.0, help="stream frame rate, frames/s")
    p.add_argument("--people", type=int, default=2, help="simulated people")
    p.add_argument("--only", choices=("plain", "smoothing"), default=None, help="run one of the two cases")
    p.add_argument("--fast", action="store_true", help="send as fast as the node takes frames, not in real time")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for smoothing in (False, True):
            if args.only and args.only != ("smoothing" if smoothing else "plain"):
                continue
            results.append(run_soak(args.minutes, args.rate_hz, args.people, smoothing, Path(tmp), args.fast))
            print(json.dumps(results[-1]), flush=True)
    if len(results) == 2:
        base = results[0]
        end_ratio = results[1]["end_of_take_s"] / max(base["end_of_take_s"], 1e-3)
        rss_ratio = results[1]["node_rss_mb_at_end"] / base["node_rss_mb_at_end"]
        print(json.dumps({"end_of_take_ratio_smoothing_to_plain": round(end_ratio, 2),
                          "rss_end_ratio_smoothing_to_plain": round(rss_ratio, 3)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
