"""Detection files: mvcap round trips, OpenPose BODY_25 / COCO-18 mapping, COCO results, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from capture.sources.detection_files import (
    BODY25_TO_COCO17,
    COCO18_TO_COCO17,
    OPENPOSE_BODY25,
    read_coco_json,
    read_detections_json,
    read_openpose_folder,
    write_detections_json,
)
from core.errors import InputError
from core.skeleton import COCO17
from core.types import Detections2D


def _detections(rng: np.random.Generator, camera: str = "cam01", n_frames: int = 5) -> list[Detections2D]:
    out = []
    for i in range(n_frames):
        n_people = i % 3  # includes frames without people
        poses = np.column_stack([rng.uniform(0, 1000, (n_people * 17, 2)), rng.uniform(0, 1, n_people * 17)]).reshape(
            n_people, 17, 3
        )
        boxes = np.column_stack([rng.uniform(0, 500, (n_people, 2)), rng.uniform(500, 1000, (n_people, 2))])
        boxes = np.column_stack([boxes, rng.uniform(0.5, 1, n_people)])
        out.append(Detections2D(camera, i, 1_000 + i * 16_666_667, poses, boxes))
    return out


@pytest.mark.parametrize("name", ["cam01.json", "cam01.json.gz"])
def test_round_trip(tmp_path: Path, rng: np.random.Generator, name: str) -> None:
    dets = _detections(rng)
    path = write_detections_json(tmp_path / name, "cam01", 60.0, dets)
    back = read_detections_json(path)
    assert len(back) == len(dets)
    for a, b in zip(dets, back, strict=True):
        assert (b.camera, b.frame_idx, b.stamp_ns) == (a.camera, a.frame_idx, a.stamp_ns)
        assert b.poses.shape == (a.n_people, 17, 3) and b.poses.dtype == np.float32
        assert b.boxes.shape == (a.n_people, 5) and b.boxes.dtype == np.float32
        np.testing.assert_allclose(b.poses[..., :2], a.poses[..., :2], atol=0.005 + 1e-4)
        np.testing.assert_allclose(b.poses[..., 2], a.poses[..., 2], atol=0.0005 + 1e-6)
        np.testing.assert_allclose(b.boxes[:, :4], a.boxes[:, :4], atol=0.005 + 1e-4)
        np.testing.assert_allclose(b.boxes[:, 4], a.boxes[:, 4], atol=0.0005 + 1e-6)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    doc = json.loads(gzip.decompress(raw) if name.endswith(".gz") else raw)
    assert doc["format"] == "mvcap-detections" and doc["version"] == 1 and doc["skeleton"] == "coco17"
    assert doc["fps"] == 60.0 and doc["camera"] == "cam01"


def test_gzip_output_is_reproducible(tmp_path: Path, rng: np.random.Generator) -> None:
    dets = _detections(rng)
    a = write_detections_json(tmp_path / "a.json.gz", "cam01", 60.0, dets).read_bytes()
    b = write_detections_json(tmp_path / "b.json.gz", "cam01", 60.0, dets).read_bytes()
    assert a == b


def test_write_rejects_other_camera(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(InputError, match="camera 'cam02' in a file for 'cam01'"):
        write_detections_json(tmp_path / "x.json", "cam01", 60.0, _detections(rng, "cam02"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"format": "other"}', "not an mvcap-detections file"),
        (b'{"format": "mvcap-detections", "version": 9}', "version 9 unsupported"),
        (
            b'{"format": "mvcap-detections", "version": 1, "skeleton": "coco17", "camera": "c",'
            b' "frames": [{"frame_idx": 0, "stamp_ns": 0, "poses": [[[1, 2, 3]]], "boxes": []}]}',
            r"frames\[0\]: ValueError poses must be \(P, 17, 3\)",
        ),
        (
            b'{"format": "mvcap-detections", "version": 1, "skeleton": "coco17", "camera": "c",'
            b' "frames": [{"stamp_ns": 0, "poses": [], "boxes": []}]}',
            r"frames\[0\]: KeyError 'frame_idx'",
        ),
    ],
)
def test_read_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_detections_json(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="absent.json.gz: no such file"):
        read_detections_json(tmp_path / "absent.json.gz")


def test_body25_mapping_by_name() -> None:
    for coco_idx, body_idx in enumerate(BODY25_TO_COCO17):
        coco, body = COCO17.joints[coco_idx], OPENPOSE_BODY25[body_idx]
        side = {"left": "L", "right": "R"}.get(coco.split("_")[0], "")
        assert body == side + coco.split("_")[-1].capitalize()
    assert BODY25_TO_COCO17[COCO17.index("left_hip")] == 12
    assert COCO18_TO_COCO17[COCO17.index("right_ankle")] == 10


def _openpose_person(n_joints: int) -> np.ndarray:
    """Joint k at (100 + k, 200 + 2k) with conf 0.5; joint 16 (LEye, REar or right_ankle) missing."""
    k = np.arange(n_joints)
    person = np.column_stack([100.0 + k, 200.0 + 2 * k, np.full(n_joints, 0.5)])
    person[16] = [7.0, 7.0, 0.0]
    return person


def _write_openpose(folder: Path, frames: dict[int, list[np.ndarray]]) -> None:
    folder.mkdir()
    for frame, people in frames.items():
        doc = {"version": 1.3, "people": [{"pose_keypoints_2d": p.reshape(-1).tolist()} for p in people]}
        (folder / f"cam02_{frame:012d}_keypoints.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(("n_joints", "mapping"), [(25, BODY25_TO_COCO17), (18, COCO18_TO_COCO17)])
def test_openpose_folder(tmp_path: Path, n_joints: int, mapping: tuple[int, ...]) -> None:
    person = _openpose_person(n_joints)
    _write_openpose(tmp_path / "json", {0: [person], 1: [], 2: [person, person + [50, 0, 0]]})
    dets = read_openpose_folder(tmp_path / "json", camera="cam02", fps=50.0, epoch_ns=10)
    assert [d.frame_idx for d in dets] == [0, 1, 2]
    assert [d.stamp_ns for d in dets] == [10, 20_000_010, 40_000_010]
    assert [d.n_people for d in dets] == [1, 0, 2]
    pose = dets[0].poses[0]
    expected = person[list(mapping)]
    conf_ok = expected[:, 2] > 0
    np.testing.assert_allclose(pose[conf_ok], expected[conf_ok], atol=1e-4)
    np.testing.assert_array_equal(pose[~conf_ok], 0.0)  # missing joint: coordinates zeroed
    left_wrist = COCO17.index("left_wrist")
    lwrist = OPENPOSE_BODY25.index("LWrist") if n_joints == 25 else 7
    assert pose[left_wrist, 0] == 100 + lwrist
    box = dets[0].boxes[0]
    vis = expected[conf_ok]
    np.testing.assert_allclose(box[:4], [vis[:, 0].min(), vis[:, 1].min(), vis[:, 0].max(), vis[:, 1].max()])
    assert box[4] == pytest.approx(expected[:, 2].mean())


def test_openpose_coco17_passthrough_and_default_camera(tmp_path: Path) -> None:
    person = _openpose_person(17)
    _write_openpose(tmp_path / "cam03", {5: [person]})
    (det,) = read_openpose_folder(tmp_path / "cam03")
    assert det.camera == "cam03" and det.frame_idx == 5
    np.testing.assert_allclose(det.poses[0, 2:16], person[2:16], atol=1e-4)


def test_openpose_errors(tmp_path: Path) -> None:
    _write_openpose(tmp_path / "halpe", {0: [_openpose_person(26)]})
    with pytest.raises(InputError, match=r"_keypoints\.json: people\[0\]\.pose_keypoints_2d has 78 values"):
        read_openpose_folder(tmp_path / "halpe")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \*_keypoints\.json file"):
        read_openpose_folder(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x_000000000000_keypoints.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_openpose_folder(tmp_path / "broken")


def _coco_item(frame_key: str, frame: int, x0: float, score: float) -> dict:
    kpts = np.column_stack([x0 + np.arange(17), 50 + np.arange(17), np.full(17, 0.8)])
    return {"category_id": 1, frame_key: frame, "keypoints": kpts.reshape(-1).tolist(),
            "bbox": [x0, 50.0, 16.0, 16.0], "score": score}  # fmt: skip


def test_coco_json(tmp_path: Path) -> None:
    items = [
        _coco_item("image_id", 0, 10, 0.6),
        _coco_item("image_id", 0, 100, 0.9),
        _coco_item("frame", 2, 5, 0.7),
    ]
    path = tmp_path / "cam04.json"
    path.write_text(json.dumps(items))
    dets = read_coco_json(path, fps=10.0)
    assert [d.n_people for d in dets] == [2, 0, 1]
    assert dets[0].camera == "cam04" and dets[2].stamp_ns == 200_000_000
    np.testing.assert_allclose(dets[0].boxes, [[100, 50, 116, 66, 0.9], [10, 50, 26, 66, 0.6]])
    np.testing.assert_allclose(dets[0].poses[0, :, 0], 100 + np.arange(17))
    assert len(read_coco_json(path, n_frames=5)) == 5


def test_coco_json_visibility_flags(tmp_path: Path) -> None:
    item = _coco_item("frame", 0, 10, 1.0)
    item["keypoints"][2::3] = [2] * 16 + [0]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps([item]))
    (det,) = read_coco_json(path)
    np.testing.assert_array_equal(det.poses[0, :, 2], [1.0] * 16 + [0.0])
    np.testing.assert_array_equal(det.poses[0, 16], 0.0)


def test_coco_json_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"annotations": []}')
    with pytest.raises(InputError, match="expected a JSON list"):
        read_coco_json(path)
    path.write_text(json.dumps([{"frame": 0, "keypoints": [1.0] * 50}]))
    with pytest.raises(InputError, match=r"item 0: ValueError keypoints must be 51 finite floats"):
        read_coco_json(path)
    path.write_text(json.dumps([{"keypoints": [1.0] * 51}]))
    with pytest.raises(InputError, match=r"item 0: KeyError 'image_id'"):
        read_coco_json(path)
