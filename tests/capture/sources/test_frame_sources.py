"""Frame sources on tiny synthetic videos and image folders written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.sources.frames import ImageFolderSource, VideoSource, open_source
from core.errors import ConfigError, InputError

SIZE = (64, 48)  # (width, height) px
N_FRAMES = 12
FPS = 25.0


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    assert writer.isOpened()
    for i in range(N_FRAMES):
        writer.write(np.full((SIZE[1], SIZE[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


def test_video_frames_and_stamps(video: Path) -> None:
    epoch_ns = 1_700_000_000_000_000_000
    with VideoSource(video, epoch_ns=epoch_ns) as src:
        assert src.fps == FPS and src.size == SIZE and src.n_frames == N_FRAMES
        frames = list(src)
    assert [f[0] for f in frames] == list(range(N_FRAMES))
    assert [f[1] for f in frames] == [epoch_ns + round(i * 1e9 / FPS) for i in range(N_FRAMES)]
    assert all(f[2].shape == (SIZE[1], SIZE[0], 3) and f[2].dtype == np.uint8 for f in frames)
    means = [float(f[2].mean()) for f in frames]
    np.testing.assert_allclose(means, [20 * i for i in range(N_FRAMES)], atol=3)  # MJPG is lossy
    assert src._cap is None  # released by the context manager


def test_video_second_pass_restarts(video: Path) -> None:
    src = VideoSource(video)
    first = [i for i, _, _ in src]
    second = [i for i, _, _ in src]
    src.close()
    assert first == second == list(range(N_FRAMES))


def test_video_fps_override(video: Path) -> None:
    with VideoSource(video, fps=50.0) as src:
        stamps = [s for _, s, _ in src]
    assert stamps[1] == 20_000_000


def test_missing_video(tmp_path: Path) -> None:
    path = tmp_path / "absent.mp4"
    with pytest.raises(InputError, match=r"absent\.mp4: cannot open video \(no such file\)"):
        VideoSource(path)


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n")
    with pytest.raises(InputError, match=r"notes\.mp4: cannot open video") as info:
        VideoSource(path)
    assert "\n" not in str(info.value)


def _write_folder(folder: Path) -> list[int]:
    folder.mkdir()
    values = {"f1.png": 10, "f2.jpg": 60, "f10.png": 120, "F3.PNG": 200}
    for name, value in values.items():
        cv2.imwrite(str(folder / name), np.full((SIZE[1], SIZE[0], 3), value, np.uint8))
    (folder / "readme.txt").write_text("ignored")
    return [10, 60, 200, 120]  # natural order: f1, f2, F3, f10


def test_image_folder_natural_order(tmp_path: Path) -> None:
    expected = _write_folder(tmp_path / "imgs")
    with ImageFolderSource(tmp_path / "imgs", fps=10.0, epoch_ns=5) as src:
        assert src.n_frames == 4 and src.size == SIZE and src.fps == 10.0
        assert [p.name for p in src.files] == ["f1.png", "f2.jpg", "F3.PNG", "f10.png"]
        frames = list(src)
    assert [f[1] for f in frames] == [5, 100_000_005, 200_000_005, 300_000_005]
    np.testing.assert_allclose([f[2].mean() for f in frames], expected, atol=2)


def test_image_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .* image in folder"):
        ImageFolderSource(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "0.png").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"0\.png: cannot read image"):
        ImageFolderSource(tmp_path / "broken")
    with pytest.raises(ConfigError, match="fps must be a positive number"):
        ImageFolderSource(tmp_path / "broken", fps=0)


def test_open_source_dispatch(tmp_path: Path, video: Path) -> None:
    _write_folder(tmp_path / "imgs")
    with open_source(str(tmp_path / "imgs")) as src:
        assert isinstance(src, ImageFolderSource) and src.fps == 30.0
    with open_source(str(video)) as src:
        assert isinstance(src, VideoSource) and src.n_frames == N_FRAMES
    with pytest.raises(InputError, match="cannot open video"):
        open_source(str(tmp_path / "nothing.mp4"))


def test_open_source_webcam_index_missing_device() -> None:
    with pytest.raises(InputError, match="camera 97: cannot open webcam"):
        open_source("97")


def test_stills_are_stamped_apart_beyond_any_track(tmp_path: Path) -> None:
    from capture.sources.frames import STILLS_GAP_S

    folder = tmp_path / "moments"
    folder.mkdir()
    for i in (1, 2, 10):
        assert cv2.imwrite(str(folder / f"set{i}.png"), np.full((SIZE[1], SIZE[0], 3), i, np.uint8))
    with open_source(str(folder), epoch_ns=7, stills=True) as src:
        assert isinstance(src, ImageFolderSource) and src.stills
        frames = list(src)
    assert [f[0] for f in frames] == [0, 1, 2]
    assert [f[1] for f in frames] == [7 + i * round(STILLS_GAP_S * 1e9) for i in range(3)]
    assert [int(f[2][0, 0, 0]) for f in frames] == [1, 2, 10]  # natural order, each image once
    assert STILLS_GAP_S > 600  # far beyond any track lifetime ([fusion] max_missed_s, 1 s by default)
    with open_source(str(folder)) as src:  # the same folder as video: 30 fps
        assert [f[1] for f in src] == [round(i * 1e9 / 30) for i in range(3)]


def test_stills_must_be_an_image_folder(video: Path) -> None:
    with pytest.raises(InputError, match="stills must be an image folder"):
        open_source(str(video), stills=True)
    with pytest.raises(InputError, match="stills must be an image folder"):
        open_source("0", stills=True)
