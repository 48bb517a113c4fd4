"""TRC export: the streaming TrcWriter is byte-identical to the old whole-take exporter."""

from __future__ import annotations

import errno
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from capture.outputs import PosesWriter, TrackSpan, TrcWriter, read_poses_jsonl, trc_from_jsonl, write_trc_files
from core.errors import OutputError, ShapeError
from core.skeleton import COCO17
from core.types import Poses3D

JOINTS = list(COCO17.joints)


def reference_write_trc_files(frames: list[Poses3D], joint_names: list[str], out_dir: Path, rate_hz: float):
    """The exporter as it was before streaming (capture/outputs.py at 48892bf), kept verbatim."""
    out_dir = Path(out_dir)
    per_track: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    frame_stamp = {}
    for fr in frames:
        frame_stamp[fr.frame_idx] = fr.stamp_ns
        for tid, pose in zip(fr.track_ids, fr.poses, strict=True):
            per_track[int(tid)][fr.frame_idx] = pose
    t0 = min(frame_stamp.values(), default=0)
    paths = []
    for tid in sorted(per_track):
        by_frame = per_track[tid]
        idx = [f for f in sorted(frame_stamp) if min(by_frame) <= f <= max(by_frame)]
        path = out_dir / f"person_{tid}.trc"
        J = len(joint_names)
        lines = [
            f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
            "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
            f"{rate_hz:g}\t{rate_hz:g}\t{len(idx)}\t{J}\tm\t{rate_hz:g}\t{idx[0] + 1}\t{len(idx)}",
            "Frame#\tTime\t" + "\t\t\t".join(joint_names) + "\t\t",
            "\t\t" + "\t".join(f"X{j + 1}\tY{j + 1}\tZ{j + 1}" for j in range(J)),
            "",
        ]
        for f in idx:
            pose = by_frame.get(f)
            cells = []
            for j in range(J):
                if pose is None or pose[j, 3] <= 0:
                    cells += ["", "", ""]
                else:
                    x, y, z = pose[j, :3]
                    cells += [f"{x:.5f}", f"{z:.5f}", f"{-y:.5f}"]
            lines.append(f"{f + 1}\t{(frame_stamp[f] - t0) * 1e-9:.5f}\t" + "\t".join(cells))
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def random_take(rng: np.random.Generator, n_frames: int = 120, n_tracks: int = 9) -> list[Poses3D]:
    """Frames with skipped indices, jittered stamps, tracks that come and go, missing joints, empty frames."""
    frames, idx, stamp = [], int(rng.integers(0, 50)), 1_700_000_000_000_000_000 + int(rng.integers(0, 10**9))
    for _ in range(n_frames):
        idx += int(rng.choice([1, 1, 1, 2, 5]))
        stamp += 16_666_667 + int(rng.integers(-2_000_000, 2_000_000))
        present = [t for t in range(n_tracks) if rng.random() < 0.3 + 0.07 * t]
        ids = rng.permutation(np.array(present, dtype=np.int64) * 3 + 1)
        poses = rng.normal(0, 2, (len(ids), len(JOINTS), 4))
        poses[..., 3] = np.where(rng.random((len(ids), len(JOINTS))) < 0.2, 0.0, rng.random((len(ids), len(JOINTS))))
        poses[..., :3] = np.where(poses[..., 3:] > 0, poses[..., :3], 0.0)
        frames.append(Poses3D(idx, stamp, ids, poses))
    return frames


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.trc"))}


@pytest.mark.parametrize("seed", range(6))
def test_streaming_writer_is_byte_identical_to_the_old_exporter(tmp_path, seed, monkeypatch):
    rng = np.random.default_rng(seed)
    frames = random_take(rng, n_frames=int(rng.integers(1, 200)))
    rate = [60.0, 59.94, 29.97, 0.0, 120.0, 25.0][seed]
    (tmp_path / "ref").mkdir()
    ref = reference_write_trc_files(frames, JOINTS, tmp_path / "ref", rate)
    expected = _files(tmp_path / "ref")
    assert expected and len(expected) == len(ref)

    assert [p.name for p in write_trc_files(frames, JOINTS, tmp_path / "wrapper", rate)] == [p.name for p in ref]
    assert _files(tmp_path / "wrapper") == expected

    # Few open files and a tiny in-memory frame log: eviction, reopening and the spilled log are used.
    monkeypatch.setattr(TrcWriter, "_log_chunk", 4)
    with TrcWriter(tmp_path / "stream", JOINTS, rate, max_open=2) as w:
        for f in frames:
            w.write(f)
            assert len(w._open) <= 2 and len(w._log._mem) <= 4 * 4
    assert [p.name for p in w.close()] == [p.name for p in ref]
    assert _files(tmp_path / "stream") == expected


def test_unordered_and_repeated_frames_match_the_old_exporter(tmp_path, rng):
    frames = random_take(rng, n_frames=60)
    shuffled = [frames[i] for i in rng.permutation(len(frames))]
    shuffled += [Poses3D(frames[5].frame_idx, frames[5].stamp_ns + 7, frames[9].track_ids, frames[9].poses)]
    (tmp_path / "ref").mkdir()
    reference_write_trc_files(shuffled, JOINTS, tmp_path / "ref", 60.0)
    write_trc_files(shuffled, JOINTS, tmp_path / "new", 60.0)
    assert _files(tmp_path / "new") == _files(tmp_path / "ref")


def test_no_frames_writes_nothing(tmp_path):
    assert write_trc_files([], JOINTS, tmp_path / "none", 60.0) == []
    assert not (tmp_path / "none").exists()
    assert write_trc_files([Poses3D(0, 0, np.zeros(0, np.int64), np.zeros((0, 17, 4)))], JOINTS, tmp_path, 60) == []


def test_trc_from_jsonl_streams_a_take_like_the_old_export(tmp_path, rng):
    frames = random_take(rng, n_frames=150)
    path = tmp_path / "poses3d.jsonl"
    with PosesWriter(path, COCO17) as w:
        for f in frames:
            w.write(f)
    header, read = read_poses_jsonl(path)
    stamps = np.array([f.stamp_ns for f in read])
    rate = round(float(1e9 / np.median(np.diff(stamps))), 3)
    (tmp_path / "ref").mkdir()
    reference_write_trc_files(read, header["joints"], tmp_path / "ref", rate)
    out = trc_from_jsonl(path, tmp_path / "new")
    assert _files(tmp_path / "new") == _files(tmp_path / "ref")
    assert out.n_frames == len(frames) and out.rate_hz == rate
    assert [p.name for p in out.paths] == sorted(_files(tmp_path / "ref"), key=lambda n: int(n[7:-4]))
    spans: dict[int, list[int]] = defaultdict(list)
    for f in read:
        for tid in f.track_ids.tolist():
            spans[tid].append(f.frame_idx)
    assert out.tracks == tuple(TrackSpan(t, v[0], v[-1], len(v)) for t, v in sorted(spans.items()))
    fixed = trc_from_jsonl(path, tmp_path / "fixed", rate_hz=50.0)
    assert fixed.rate_hz == 50.0 and _files(tmp_path / "fixed")["person_1.trc"].split(b"\n")[2].startswith(b"50\t50")


def test_trc_from_jsonl_sorts_a_file_whose_frames_go_back(tmp_path, rng):
    frames = random_take(rng, n_frames=30)
    path = tmp_path / "poses3d.jsonl"
    with PosesWriter(path, COCO17) as w:
        for f in frames[10:] + frames[:10]:
            w.write(f)
    _, read = read_poses_jsonl(path)
    (tmp_path / "ref").mkdir()
    reference_write_trc_files(read, JOINTS, tmp_path / "ref", 30.0)
    trc_from_jsonl(path, tmp_path / "new", rate_hz=30.0)
    assert _files(tmp_path / "new") == _files(tmp_path / "ref")


def test_an_unfinished_file_has_a_placeholder_count_and_its_rows(tmp_path, rng):
    """What a crash before close leaves: every row so far, under a NumFrames of zeros."""
    frames = random_take(rng, n_frames=40, n_tracks=1)
    seen = [i for i, f in enumerate(frames) if 1 in f.track_ids]
    w = TrcWriter(tmp_path, JOINTS, 60.0)
    for f in frames:
        w.write(f)
    for fh in w._open.values():
        fh.flush()
    lines = (tmp_path / "person_1.trc").read_text().splitlines()
    assert lines[2].split("\t")[2] == "0" * 12 and len(lines) == 6 + seen[-1] - seen[0] + 1
    w.close()
    final = (tmp_path / "person_1.trc").read_text().splitlines()
    assert final[2].split("\t")[2] == str(seen[-1] - seen[0] + 1) and final[6:] == lines[6:]


def test_writer_rejects_misuse(tmp_path):
    w = TrcWriter(tmp_path, JOINTS, 60.0)
    w.write(Poses3D(3, 0, np.array([1]), np.ones((1, 17, 4))))
    with pytest.raises(ValueError, match="increasing frame_idx; got 3 after 3"):
        w.write(Poses3D(3, 1, np.array([1]), np.ones((1, 17, 4))))
    with pytest.raises(ShapeError, match=r"\(P, 17, 4\)"):
        w.write(Poses3D(4, 1, np.array([1]), np.ones((1, 5, 4))))
    assert [p.name for p in w.close()] == ["person_1.trc"] and w.close() == [tmp_path / "person_1.trc"]
    with pytest.raises(ValueError, match="closed"):
        w.write(Poses3D(5, 2, np.array([1]), np.ones((1, 17, 4))))
    with pytest.raises(ValueError, match="max_open"):
        TrcWriter(tmp_path, JOINTS, 60.0, max_open=0)


def test_thousand_tracks_keep_few_files_open_and_constant_memory(tmp_path, monkeypatch):
    """1000 tracks over 2100 frames, some back after long gaps: at most max_open files are ever open."""
    monkeypatch.setattr(TrcWriter, "_log_chunk", 64)
    fd_dir = Path("/proc/self/fd")
    n_fds = len(list(fd_dir.iterdir())) if fd_dir.is_dir() else None
    spans: dict[int, list[int]] = defaultdict(list)
    with TrcWriter(tmp_path, JOINTS, 60.0, max_open=16) as w:
        for i in range(2100):
            ids = [t for t in range(max(0, i // 2 - 20), min(1000, i // 2 + 1)) if (i + t) % 3]  # ~14 at once
            ids += [t for t in (1000, 1001) if i in (0, 1000, 2099) or (i + t) % 500 == 0]  # long gaps
            for t in ids:
                spans[t].append(i)
            w.write(Poses3D(i, i * 16_666_667, np.array(ids, dtype=np.int64), np.ones((len(ids), 17, 4))))
            if n_fds is not None and i % 100 == 0:
                assert len(list(fd_dir.iterdir())) <= n_fds + 16 + 2  # + the spilled frame log and the listing
            assert len(w._open) <= 16 and len(w._log._mem) <= 4 * 64
    paths = w.close()
    assert len(paths) == len(spans) == 1002
    for t in (0, 500, 1000, 1001):
        lines = (tmp_path / f"person_{t}.trc").read_text().splitlines()
        rows = spans[t][-1] - spans[t][0] + 1
        assert len(lines) == 6 + rows and lines[2].split("\t")[2] == str(rows)
        assert lines[6].split("\t")[0] == str(spans[t][0] + 1) and lines[-1].split("\t")[0] == str(spans[t][-1] + 1)
        present = [line.split("\t")[0] for line in lines[6:] if line.split("\t")[2]]
        assert present == [str(f + 1) for f in spans[t]]


def test_disk_full_is_one_line_output_error(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    (tmp_path / "person_1.trc").symlink_to("/dev/full")
    w = TrcWriter(tmp_path, JOINTS, 60.0)
    with pytest.raises(OutputError) as err:
        w.write(Poses3D(0, 0, np.array([1]), np.ones((1, 17, 4))))
        w.close()
    assert str(err.value) == f"{tmp_path / 'person_1.trc'}: cannot write (No space left on device)"
    assert err.value.__cause__.errno == errno.ENOSPC
    with pytest.raises(OutputError, match="No space left on device"):
        w.close()


def test_disk_full_mid_take_raises_output_error(tmpfs, rng):
    folder = tmpfs(64)
    frames = random_take(rng, n_frames=2000, n_tracks=3)
    with pytest.raises(OutputError, match=r"person_\d+\.trc: cannot write \(No space left on device\)$"):
        write_trc_files(frames, JOINTS, folder, 60.0)


def test_read_only_folder_is_one_line_output_error(read_only_dir):
    w = TrcWriter(read_only_dir, JOINTS, 60.0)
    with pytest.raises(OutputError) as err:
        w.write(Poses3D(0, 0, np.array([4]), np.ones((1, 17, 4))))
    reason = "Read-only file system" if os.getuid() == 0 else "Permission denied"
    assert str(err.value) == f"{read_only_dir / 'person_4.trc'}: cannot write ({reason})"
    with pytest.raises(OutputError):
        w.write(Poses3D(1, 0, np.array([4]), np.ones((1, 17, 4))))


@pytest.mark.parametrize("rate", [59.94, 1234567.891])
def test_rate_known_only_at_close_gives_the_same_files(tmp_path, rng, monkeypatch, rate):
    """The node learns the frame rate at the end of a take: a header that grows past its placeholder
    (a long rate, few rows) moves the rows down without overwriting any."""
    frames = random_take(rng, n_frames=150)
    (tmp_path / "ref").mkdir()
    reference_write_trc_files(frames, JOINTS, tmp_path / "ref", rate)
    monkeypatch.setattr("capture.outputs.trc._COPY_CHUNK", 7)  # many small moves: ordering bugs show
    w = TrcWriter(tmp_path / "stream", JOINTS, 0.0)
    for f in frames:
        w.write(f)
    w.rate_hz = rate
    w.close()
    assert _files(tmp_path / "stream") == _files(tmp_path / "ref")
