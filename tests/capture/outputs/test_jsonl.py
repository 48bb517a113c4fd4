"""poses3d.jsonl: streaming reader, refusing to overwrite, resuming, full and read-only disks."""

from __future__ import annotations

import errno
import logging
import os
import resource
import signal
import types

import numpy as np
import pytest

from capture.outputs import FORMAT, PosesWriter, iter_poses_jsonl, read_poses_jsonl
from core.errors import CaptureError, InputError, OutputError, ShapeError
from core.skeleton import COCO17
from core.types import Poses3D


def _frame(i: int, ids: tuple[int, ...] = (1, 2)) -> Poses3D:
    poses = np.zeros((len(ids), 17, 4))
    poses[:, :, :3] = np.arange(len(ids) * 17 * 3).reshape(len(ids), 17, 3) * 0.01 + i * 0.001
    poses[:, :, 3] = 0.9
    poses[:, 3, 3] = 0.0  # a missing joint
    return Poses3D(i, 1_000_000_000 + i * 16_666_667, np.array(ids), poses)


def _write(path, frames, **kw) -> PosesWriter:
    w = PosesWriter(path, COCO17, **kw)
    for f in frames:
        w.write(f)
    w.close()
    return w


def _same(a: list[Poses3D], b: list[Poses3D]) -> bool:
    return len(a) == len(b) and all(
        x.frame_idx == y.frame_idx
        and x.stamp_ns == y.stamp_ns
        and np.array_equal(x.track_ids, y.track_ids)
        and np.allclose(x.poses, y.poses, atol=1e-5)
        for x, y in zip(a, b, strict=True)
    )


def test_round_trip_and_streaming_reader(tmp_path):
    path = tmp_path / "poses3d.jsonl"
    frames = [_frame(i, ids) for i, ids in enumerate([(1, 2), (), (2,), (5, 1, 2)])]
    _write(path, frames)
    it = iter_poses_jsonl(path)
    assert isinstance(it, types.GeneratorType)
    header = next(it)
    assert header["format"] == FORMAT and header["joints"] == list(COCO17.joints) and header["units"] == "m"
    streamed = list(it)
    assert _same(streamed, frames)
    assert streamed[1].poses.shape == (0, 17, 4)
    h2, read = read_poses_jsonl(path)
    assert h2 == header and _same(read, frames)


def test_truncated_last_line_is_ignored_and_a_malformed_middle_line_is_not(tmp_path, caplog):
    path = tmp_path / "poses3d.jsonl"
    _write(path, [_frame(i) for i in range(3)])
    good = path.read_bytes()
    path.write_bytes(good + b'{"frame": 3, "stamp_ns": 12')
    with caplog.at_level(logging.WARNING):
        _, frames = read_poses_jsonl(path)
    assert [f.frame_idx for f in frames] == [0, 1, 2] and "truncated last line 5" in caplog.text
    lines = good.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b"{oops\n"] + lines[2:]))
    with pytest.raises(InputError, match=r"poses3d.jsonl: line 3 is malformed"):
        read_poses_jsonl(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read poses"), (b"", "empty poses file"), (b'{"format": "other"}\n', "not an mvcap-poses3d")],
)
def test_reader_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "poses3d.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_poses_jsonl(path)
    assert str(path) in str(err.value)


def test_existing_file_is_never_silently_truncated(tmp_path):
    """Regression: PosesWriter opened with "w", so rerunning into a take folder erased the take."""
    path = tmp_path / "poses3d.jsonl"
    _write(path, [_frame(0)])
    before = path.read_bytes()
    with pytest.raises(InputError) as err:
        PosesWriter(path, COCO17)
    assert str(path) in str(err.value) and "new folder" in str(err.value) and "resume" in str(err.value)
    assert path.read_bytes() == before
    w = _write(path, [_frame(7)], overwrite=True)  # derived files (the smoothed poses) are rewritten
    assert [f.frame_idx for f in read_poses_jsonl(path)[1]] == [7] and w.resumed_frames == 0
    with pytest.raises(ValueError, match="exclusive"):
        PosesWriter(path, COCO17, resume=True, overwrite=True)


def test_an_empty_existing_file_is_started(tmp_path):
    path = tmp_path / "poses3d.jsonl"
    path.touch()
    _write(path, [_frame(0)])
    assert len(read_poses_jsonl(path)[1]) == 1


def test_resume_cuts_a_torn_line_and_appends(tmp_path, caplog):
    path = tmp_path / "poses3d.jsonl"
    frames = [_frame(i, ids) for i, ids in enumerate([(1, 2), (7,), (), (3, 2)])]
    _write(path, frames[:3])
    with path.open("ab") as fh:
        fh.write(b'{"frame":3,"stamp_ns":1050000001,"timestamp_s":1.05,"people":[{"id":9,"joi')  # killed mid-write
    with caplog.at_level(logging.WARNING):
        w = PosesWriter(path, COCO17, resume=True)
    assert (w.resumed_frames, w.last_frame, w.max_track_id) == (3, 2, 7)
    assert "torn last line" in caplog.text
    w.write(frames[3])
    w.close()
    one_go = tmp_path / "one_go.jsonl"
    _write(one_go, frames)
    assert path.read_bytes() == one_go.read_bytes()


def test_resume_of_an_absent_empty_or_header_torn_file_starts_it(tmp_path):
    for i, content in enumerate([None, b"", b'{"format":"mvcap-po']):
        path = tmp_path / f"p{i}.jsonl"
        if content is not None:
            path.write_bytes(content)
        w = _write(path, [_frame(0)], resume=True)
        assert (w.resumed_frames, w.last_frame, w.max_track_id) == (0, -1, -1)
        assert len(read_poses_jsonl(path)[1]) == 1


def test_resume_drops_a_malformed_last_line_but_refuses_a_malformed_middle_one(tmp_path):
    path = tmp_path / "poses3d.jsonl"
    _write(path, [_frame(0), _frame(1)])
    good = path.read_bytes()
    path.write_bytes(good + b"\x00\x00\x00\n")  # zeros a power loss can leave at the end
    w = _write(path, [_frame(2)], resume=True)
    assert w.resumed_frames == 2 and [f.frame_idx for f in read_poses_jsonl(path)[1]] == [0, 1, 2]
    lines = good.splitlines(keepends=True)
    path.write_bytes(lines[0] + b"{oops\n" + lines[1])
    with pytest.raises(InputError, match="cannot resume: line 2 is malformed") as err:
        PosesWriter(path, COCO17, resume=True)
    assert str(path) in str(err.value)


def test_resume_refuses_a_foreign_file_or_other_joints(tmp_path):
    from core.skeleton import Skeleton

    path = tmp_path / "poses3d.jsonl"
    path.write_text("x,y,z\n1,2,3\n")
    with pytest.raises(InputError, match="not an mvcap-poses3d file") as err:
        PosesWriter(path, COCO17, resume=True)
    assert str(path) in str(err.value)
    other = Skeleton("tiny", ("a", "b"), ((0, 1),), ())
    path.unlink()
    PosesWriter(path, other).close()
    before = path.read_bytes()
    with pytest.raises(InputError, match="2 joints") as err:
        PosesWriter(path, COCO17, resume=True)
    assert str(path) in str(err.value) and path.read_bytes() == before


def test_write_checks_the_joint_count(tmp_path):
    with PosesWriter(tmp_path / "poses3d.jsonl", COCO17) as w, pytest.raises(ShapeError, match=r"\(P, 17, 4\)"):
        w.write(Poses3D(0, 0, np.array([1]), np.zeros((1, 5, 4))))
    with pytest.raises(ValueError, match="closed"):
        w.write(_frame(0))


def test_disk_full_at_the_header_is_one_line_output_error(tmp_path):
    """/dev/full fails every write with ENOSPC, for root too."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    path = tmp_path / "poses3d.jsonl"
    path.symlink_to("/dev/full")
    with pytest.raises(OutputError) as err:
        PosesWriter(path, COCO17)
    assert str(err.value) == f"{path}: cannot write (No space left on device)"
    assert isinstance(err.value, CaptureError) and err.value.__cause__.errno == errno.ENOSPC


def test_disk_full_mid_take_keeps_every_complete_frame_readable(tmpfs):
    folder = tmpfs(64)
    filler = folder / "filler"
    filler.write_bytes(b"\0" * 8192)
    path = folder / "poses3d.jsonl"
    w = PosesWriter(path, COCO17, fsync=True)
    n = 0
    with pytest.raises(OutputError) as err:
        for n in range(10_000):  # noqa: B007 - n is the count of frames written before the error
            w.write(_frame(n))
    assert str(err.value) == f"{path}: cannot write (No space left on device)"
    _, frames = read_poses_jsonl(path)
    assert _same(frames, [_frame(i) for i in range(n)]) and path.read_bytes().endswith(b"\n")
    filler.unlink()  # space is freed: the writer goes on after its last complete record
    w.write(_frame(n))
    w.close()
    assert _same(read_poses_jsonl(path)[1], [_frame(i) for i in range(n + 1)])


def test_file_size_limit_mid_record_is_cut_back(tmp_path):
    """A write cut short by the system (here RLIMIT_FSIZE, EFBIG) leaves no torn record behind."""
    path = tmp_path / "poses3d.jsonl"
    w = PosesWriter(path, COCO17)
    w.write(_frame(0))
    size = path.stat().st_size
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, old_limit[1]))
        with pytest.raises(OutputError, match="cannot write \\(File too large\\)"):
            w.write(_frame(1))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert path.stat().st_size == size
    w.write(_frame(2))
    w.close()
    assert [f.frame_idx for f in read_poses_jsonl(path)[1]] == [0, 2]


def test_read_only_folder_is_one_line_output_error(read_only_dir):
    path = read_only_dir / "poses3d.jsonl"
    with pytest.raises(OutputError) as err:
        PosesWriter(path, COCO17)
    reason = "Read-only file system" if os.getuid() == 0 else "Permission denied"
    assert str(err.value) == f"{path}: cannot write ({reason})" and "\n" not in str(err.value)
