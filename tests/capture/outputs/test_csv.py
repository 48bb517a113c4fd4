"""CSV export: long format, units and axes stated, values and missing joints read back."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from capture.outputs.csv import COLUMNS, CsvWriter
from core.errors import OutputError, ShapeError
from core.skeleton import COCO17
from core.types import Poses3D

JOINTS = list(COCO17.joints)


def test_rows_read_back_with_the_csv_module(tmp_path, rng):
    frames = []
    for f in range(6):
        ids = [3, 11] if f % 2 else [11]
        poses = rng.normal(0, 1, (len(ids), 17, 4))
        poses[..., 3] = np.where(rng.random((len(ids), 17)) < 0.2, 0.0, rng.uniform(0.1, 1, (len(ids), 17)))
        frames.append(Poses3D(100 + 2 * f, 5_000_000_000 + f * 40_000_000, np.array(ids), poses))
    with CsvWriter(tmp_path / "p.csv", JOINTS, t0_ns=5_000_000_000, notes=["source: take/poses3d.jsonl"]) as w:
        for fr in frames:
            w.write(fr)
    text = (tmp_path / "p.csv").read_text()
    comments = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any("metres" in c for c in comments) and any("z up" in c for c in comments)
    assert "# source: take/poses3d.jsonl" in comments
    rows = list(csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 17 * sum(len(f.track_ids) for f in frames) == w.n_rows
    k = 0
    for fr in frames:
        for tid, pose in zip(fr.track_ids.tolist(), fr.poses, strict=True):
            for name, (x, y, z, conf) in zip(JOINTS, pose, strict=True):
                row = rows[k]
                k += 1
                assert (int(row["frame"]), int(row["person"]), row["joint"]) == (fr.frame_idx, tid, name)
                assert float(row["time_s"]) == pytest.approx((fr.stamp_ns - 5_000_000_000) * 1e-9, abs=1e-6)
                if conf > 0:
                    got = [float(row[c]) for c in "xyz"]
                    assert np.allclose(got, [x, y, z], atol=5e-6)
                    assert float(row["conf"]) == pytest.approx(conf, abs=5e-5)
                else:
                    assert row["x"] == row["y"] == row["z"] == "" and float(row["conf"]) == 0.0


def test_time_origin_defaults_to_the_first_frame_and_misuse_is_refused(tmp_path):
    w = CsvWriter(tmp_path / "p.csv", JOINTS)
    w.write(Poses3D(0, 7_000_000_000, np.array([1]), np.ones((1, 17, 4))))
    with pytest.raises(ShapeError):
        w.write(Poses3D(1, 0, np.array([1]), np.ones((1, 4, 4))))
    assert w.close() == tmp_path / "p.csv" and w.close() == tmp_path / "p.csv"
    assert (tmp_path / "p.csv").read_text().splitlines()[-1].startswith("0,0.000000,1,right_ankle,")
    with pytest.raises(ValueError, match="closed"):
        w.write(Poses3D(2, 0, np.array([1]), np.ones((1, 17, 4))))


def test_full_disk_is_one_line_output_error(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    (tmp_path / "p.csv").symlink_to("/dev/full")
    with pytest.raises(OutputError) as err:
        w = CsvWriter(tmp_path / "p.csv", JOINTS)
        for f in range(200):  # past the write buffer
            w.write(Poses3D(f, f, np.array([1]), np.ones((1, 17, 4))))
        w.close()
    assert str(err.value) == f"{tmp_path / 'p.csv'}: cannot write (No space left on device)"
