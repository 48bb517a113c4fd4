"""C3D export: ezc3d reads back the same values (float32), labels, units, rate and missing points."""

from __future__ import annotations

import numpy as np
import pytest

from capture.outputs import c3d as c3d_module
from capture.outputs.c3d import C3dWriter
from core.errors import OutputError, ShapeError
from core.skeleton import COCO17
from core.types import Poses3D

ezc3d = pytest.importorskip("ezc3d")
JOINTS = list(COCO17.joints)


def _take(rng: np.random.Generator, n: int = 25) -> list[Poses3D]:
    """Frames 10.. with skipped indices, two people coming and going, missing joints."""
    frames = []
    for f in range(n):
        if f in (3, 4):
            continue
        ids = [7] + ([2] if 5 <= f < 15 else [])
        poses = rng.normal(0, 1.5, (len(ids), 17, 4))
        poses[..., 3] = np.where(rng.random((len(ids), 17)) < 0.15, 0.0, rng.uniform(0.2, 1.0, (len(ids), 17)))
        poses[..., :3] *= poses[..., 3:] > 0
        frames.append(Poses3D(10 + f, f * 20_000_000, np.array(ids), poses))
    return frames


def _expected(frames: list[Poses3D], ids: list[int], first: int, n: int) -> np.ndarray:
    """(T, N, 3) metres, NaN where missing, on the frame-index grid."""
    out = np.full((n, len(ids) * 17, 3), np.nan)
    for fr in frames:
        for tid, pose in zip(fr.track_ids.tolist(), fr.poses, strict=True):
            col = ids.index(tid) * 17
            out[fr.frame_idx - first, col : col + 17] = np.where(pose[:, 3:] > 0, pose[:, :3], np.nan)
    return out


@pytest.mark.parametrize("units,scale", [("mm", 1000.0), ("m", 1.0)])
def test_reads_back_the_same_values_with_ezc3d(tmp_path, rng, units, scale):
    frames = _take(rng)
    ids = [2, 7]
    w = C3dWriter(tmp_path / "take.c3d", ids, JOINTS, 10, 25, 50.0, units=units, up_note="world -y", source="x.jsonl")
    for fr in frames:
        w.write(fr)
    assert w.close() == [tmp_path / "take.c3d"]
    c = ezc3d.c3d(str(tmp_path / "take.c3d"))
    point = c["parameters"]["POINT"]
    assert point["LABELS"]["value"] == [f"p{t}_{j}" for t in ids for j in JOINTS]
    assert point["DESCRIPTIONS"]["value"][18] == "person 7 left_eye"
    assert point["UNITS"]["value"] == [units] and point["RATE"]["value"][0] == 50.0
    assert point["X_SCREEN"]["value"] == ["+X"] and point["Y_SCREEN"]["value"] == ["+Z"]
    mvcap = c["parameters"]["MVCAP"]
    assert mvcap["FIRST_FRAME_IDX"]["value"] == ["10"] and mvcap["UP"]["value"] == ["+Z (world -y)"]
    got = c["data"]["points"][:3].transpose(2, 1, 0)  # (T, N, 3)
    expected = _expected(frames, ids, 10, 25)
    assert got.shape == expected.shape
    missing = np.isnan(expected)
    assert np.array_equal(np.isnan(got), missing)  # absent people, missing joints, skipped frames
    assert missing[3].all() and missing[:, :17][20].all()  # a skipped index; person 2 after frame 15
    assert np.array_equal(got[~missing], (expected[~missing] * scale).astype(np.float32))
    residuals = c["data"]["meta_points"]["residuals"][0].T
    assert np.array_equal(residuals < 0, missing[..., 0]) and (residuals[~missing[..., 0]] == 0).all()


def test_long_takes_are_split_into_parts_of_at_most_65535_frames(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(c3d_module, "MAX_FRAMES", 10)
    frames = _take(rng, n=25)
    w = C3dWriter(tmp_path / "take.c3d", [2, 7], JOINTS, 10, 25, 50.0, units="m")
    for fr in frames:
        w.write(fr)
    paths = w.close()
    assert [p.name for p in paths] == ["take_part1.c3d", "take_part2.c3d", "take_part3.c3d"]
    parts = [ezc3d.c3d(str(p)) for p in paths]
    assert [c["data"]["points"].shape[2] for c in parts] == [10, 10, 5]
    assert [c["parameters"]["MVCAP"]["FIRST_FRAME_IDX"]["value"][0] for c in parts] == ["10", "20", "30"]
    got = np.concatenate([c["data"]["points"][:3].transpose(2, 1, 0) for c in parts])
    expected = _expected(frames, [2, 7], 10, 25)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], atol=1e-6)
    assert w.close() == paths  # idempotent


def test_a_missing_last_part_of_frames_is_written_all_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(c3d_module, "MAX_FRAMES", 4)
    w = C3dWriter(tmp_path / "t.c3d", [1], ["a"], 0, 10, 30.0, units="m")
    w.write(Poses3D(0, 0, np.array([1]), np.array([[[1.0, 2.0, 3.0, 1.0]]])))
    paths = w.close()
    assert len(paths) == 3
    last = ezc3d.c3d(str(paths[2]))["data"]["points"]
    assert last.shape[2] == 2 and np.isnan(last[:3]).all()


def test_misuse_is_refused(tmp_path):
    with pytest.raises(ValueError, match="units"):
        C3dWriter(tmp_path / "t.c3d", [1], JOINTS, 0, 5, 30.0, units="cm")
    with pytest.raises(ValueError, match="rate"):
        C3dWriter(tmp_path / "t.c3d", [1], JOINTS, 0, 5, 0.0)
    w = C3dWriter(tmp_path / "t.c3d", [1], JOINTS, 0, 5, 30.0)
    with pytest.raises(ValueError, match="outside"):
        w.write(Poses3D(5, 0, np.array([1]), np.ones((1, 17, 4))))
    with pytest.raises(ShapeError):
        w.write(Poses3D(1, 0, np.array([1]), np.ones((1, 5, 4))))
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(Poses3D(1, 0, np.array([1]), np.ones((1, 17, 4))))


def test_read_only_folder_is_one_line_output_error(read_only_dir):
    w = C3dWriter(read_only_dir / "t.c3d", [1], JOINTS, 0, 2, 30.0)
    w.write(Poses3D(0, 0, np.array([1]), np.ones((1, 17, 4))))
    with pytest.raises(OutputError) as err:
        w.close()
    assert str(err.value).startswith(f"{read_only_dir / 't.c3d'}: cannot write (") and "\n" not in str(err.value)


def test_full_disk_is_one_line_output_error(tmpfs):
    """ezc3d fails silently on a full disk: the writer checks what reached the file."""
    folder = tmpfs(64)
    w = C3dWriter(folder / "t.c3d", list(range(8)), JOINTS, 0, 400, 30.0)  # 8 x 17 points x 400 frames: 870 kB
    for f in range(400):
        w.write(Poses3D(f, f, np.arange(8), np.ones((8, 17, 4))))
    with pytest.raises(OutputError, match=r"t\.c3d: cannot write \(.*\)$"):
        w.close()
