"""The end-of-run verdict and console summary, from a node's ``summary.json`` dictionary.

A run is *complete* when its output holds every piece of data it should have had:

- offline (``lossless``): every frame every worker sent was filed (nothing late, refused or lost
  on the wire), every camera ended with its end-of-stream message and no worker reported an error;
- live: frames skipped at the source and late frames are the price of keeping up and are reported,
  not failures; a camera that was never ready, is dead at the end or ended with an error is one;
- either way, an output that could not be written (disk full, read-only folder) is one.

``mvcap node``, ``mvcap run``/``demo``/``live`` exit 1 when a run is not complete.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from capture.service.stats import WALL_CLOCK_NS

if TYPE_CHECKING:
    from capture.service.node import Node

__all__ = ["completeness", "format_summary", "live_status", "run_summary"]


def completeness(summary: dict) -> tuple[bool, list[str]]:
    """Whether a run is complete, and why not (one short reason per problem).

    Example:
        >>> completeness({"output_error": "x: disk full", "cameras": []})
        (False, ['output not written: x: disk full'])
    """
    why: list[str] = []
    if summary.get("output_error"):
        why.append(f"output not written: {summary['output_error']}")
    cams = summary.get("cameras", [])
    workers = summary.get("workers", {})
    filed = summary.get("frames_per_camera", {})
    ended, dead = set(summary.get("cameras_ended", [])), set(summary.get("cameras_dead", []))
    for cam in summary.get("started_without", []):
        why.append(f"{cam} was not ready when the frame clock started")
    for cam in cams:
        w = workers.get(cam, {})
        if "error" in w:
            why.append(f"{cam} ended with an error: {w['error']}")
        if cam in dead:
            why.append(f"{cam} is dead (no end of stream)")
        if summary.get("lossless") and not summary.get("interrupted"):
            if cam not in ended and cam not in dead:
                why.append(f"{cam} sent no end of stream")
            sent = w.get("frames")
            if isinstance(sent, int) and filed.get(cam, 0) < sent:
                why.append(f"{cam}: {sent - filed.get(cam, 0)} of {sent} frames lost")
    return not why, why


def format_summary(summary: dict, out_dir: str | Path) -> str:
    """A short multi-line console summary: frames, views lost, late, skipped, dead cameras, outputs."""
    msgs = summary.get("messages", {})
    refused = {k: v for k, v in msgs.get("refused_by_kind", {}).items() if k not in ("late",) and v}
    skipped = summary.get("skipped_at_source", {})
    filed = summary.get("frames_per_camera", {})
    workers = summary.get("workers", {})
    dead = sorted({e["camera"] for e in summary.get("camera_events", []) if e.get("event") == "dead"})
    per_cam = ", ".join(
        f"{c} {filed.get(c, 0)}/{workers.get(c, {}).get('frames', '?')}"
        + (f" ({skipped[c]} skipped)" if skipped.get(c) else "")
        for c in summary.get("cameras", [])
    )
    outputs = summary.get("outputs", {})
    files = [outputs.get("poses"), outputs.get("poses_smoothed"), *outputs.get("trc", []), *outputs.get("overlays", [])]
    lines = [
        f"run summary ({out_dir}):",
        f"  frames: {summary.get('frames')} written, {summary.get('frames_missing_views')} missing a view,"
        f" {summary.get('frames_skipped_behind', 0)} skipped by a node behind the stream;"
        f" tracks: {len(summary.get('tracks', []))}",
        f"  views filed/sent per camera: {per_cam}",
        f"  late: {msgs.get('late', 0)}; refused: "
        + (", ".join(f"{k} {v}" for k, v in sorted(refused.items())) or "none"),
        f"  dead-camera events: {', '.join(dead) or 'none'}",
        f"  outputs: {', '.join(f for f in files if f) or 'none'}",
    ]
    complete, why = summary.get("complete"), summary.get("incomplete_because", [])
    if summary.get("interrupted"):
        lines.append("  result: interrupted")
    elif complete:
        lines.append("  result: complete")
    else:
        lines.append("  result: INCOMPLETE: " + "; ".join(why))
    return "\n".join(lines)


def run_summary(node: Node, trc: list[str]) -> dict:
    """A node's run summary, as written to ``summary.json`` (README, "Run summary").

    Args:
        node: the node at the end of its run (outputs closed).
        trc: the TRC files written, paths.

    Returns:
        The summary dictionary, with ``complete`` and ``incomplete_because`` from :func:`completeness`.
    """
    from capture.service.proc import peak_rss_mb
    from capture.service.take import POSES, SMOOTHED

    cams = node.intake.cameras
    d = node.intake.dropped
    summary = {
        **node.figures.summary(),
        "cameras": list(node.rig.names),
        "lossless": node.cfg.node.lossless,
        "started_without": node.started_without,
        "cameras_ended": sorted(c for c, s in cams.items() if s.state == "ended"),
        "cameras_dead": sorted(c for c, s in cams.items() if s.dead),
        "skipped_at_source": {c: s.skipped for c, s in cams.items()},
        "frames_skipped_behind": node.frames_skipped_behind,
        "left_right_pairs_unflipped": node.reconstructor.n_unflipped,
        "frames_per_camera": {c: s.frames for c, s in cams.items()},
        "late_per_camera": {c: s.late for c, s in cams.items()},
        "workers": {c: s.worker for c, s in cams.items() if s.worker},
        "node_peak_rss_mb": round(peak_rss_mb(), 1),
        "messages": {
            "received": node.intake.received,
            "malformed": node.intake.malformed,
            "unknown_camera": d["unknown_camera"],
            "late": d["late"],
            "implausible": d["implausible"],
            "purged_ahead": node.assembler.purged,
            "refused_by_kind": dict(sorted(d.items())),
        },
        "camera_events": node.intake.events,
        "camera_events_not_kept": node.intake.events_not_kept,
        "interrupted": node.interrupted,
        "roi_feedback": node.feedback.summary() if node.feedback is not None else None,
        "resumed": node.take.resumed,
        "output_error": node.output_error,
        "outputs": {
            "poses": POSES,
            "poses_smoothed": SMOOTHED if node.take.smoother is not None else None,
            "trc": trc,
        },
        "frames_not_smoothed": node.take.not_smoothed,
        "smoothing_cpu_ms_per_frame": (
            round(node.take.smoothing_ms / max(node.frames, 1), 3) if node.take.smoother is not None else None
        ),
    }
    summary["complete"], summary["incomplete_because"] = completeness(summary)
    return summary


def live_status(node: Node, now: float, since: float, since_frames: dict[str, int]) -> dict:
    """A running node's status line (published as a ``status`` message and logged every few seconds).

    Args:
        node: the running node.
        now: ``time.monotonic()`` seconds.
        since: ``time.monotonic()`` seconds of the previous status: frame rates are counted since.
        since_frames: frames filed per camera at the previous status.

    Returns:
        ``fps`` (per camera, frames/s), ``skipped_at_source`` (per camera), ``capture_age_ms`` (per
        camera, None where stamps are not on the wall clock), ``late``, ``skipped_behind``, ``refused``,
        ``dead`` (camera names), ``latency_ms_median`` (capture to published, ms), ``tracks``,
        ``frames``, ``started``.
    """
    dt = max(now - since, 1e-9)
    cams = node.intake.cameras
    now_ns = time.time_ns()
    return {
        "fps": {c: round((s.frames - since_frames.get(c, 0)) / dt, 1) for c, s in cams.items()},
        "skipped_at_source": {c: s.skipped for c, s in cams.items()},
        "capture_age_ms": {  # stamps on the wall clock only (live cameras, realtime replays)
            c: (
                round((now_ns - s.latest_stamp_ns) * 1e-6, 1)
                if s.latest_stamp_ns is not None and abs(now_ns - s.latest_stamp_ns) < WALL_CLOCK_NS
                else None
            )
            for c, s in cams.items()
        },
        "late": node.intake.dropped["late"],
        "skipped_behind": node.frames_skipped_behind,
        "refused": sum(node.intake.dropped.values()) - node.intake.dropped["late"],
        "dead": sorted(c for c, s in cams.items() if s.dead),
        "latency_ms_median": node.figures.latency_ms.median if node.figures.latency_ms.count else None,
        "tracks": len(node.reconstructor.tracker.tracks),
        "frames": node.frames,
        "started": node.started,
    }
