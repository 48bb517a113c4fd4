"""Export a YOLO-pose checkpoint to a fixed-size ONNX graph (run as a subprocess by capture.assets).

Usage: ``python capture/detect/export_yolo.py CHECKPOINT.pt OUT.onnx HEIGHT WIDTH``
(or ``python -m capture.detect.export_yolo ...``).

This module imports only the standard library and ultralytics (Jocher et al., Ultralytics YOLO11,
2024), so torch is loaded in this process only and never in the caller's. The graph's output
``output0`` is (1, 56, N): cx, cy, w, h, person score, then 17 x (x, y, visibility) in input pixels,
visibility already passed through a sigmoid.

Exit status: 0 ok, 2 usage error, 3 ultralytics is not importable, 1 export failed.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

EXIT_NO_ULTRALYTICS = 3


def main(argv: list[str] | None = None) -> int:
    """Export ``CHECKPOINT.pt`` to ``OUT.onnx`` at input (HEIGHT, WIDTH) pixels, opset 17, static shape."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if len(args) != 4 or not (args[2].isdigit() and args[3].isdigit()):
        sys.stderr.write("usage: export_yolo.py CHECKPOINT.pt OUT.onnx HEIGHT WIDTH\n")
        return 2
    pt, out, h, w = Path(args[0]), Path(args[1]), int(args[2]), int(args[3])
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        from ultralytics import YOLO
        from ultralytics.utils import SETTINGS
    except ImportError as exc:
        sys.stderr.write(f"ultralytics is not importable: {exc}\n")
        return EXIT_NO_ULTRALYTICS
    SETTINGS.update(sync=False)  # no analytics/crash reports (settings file under YOLO_CONFIG_DIR)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        local_pt = Path(tmp) / pt.name  # ultralytics writes the .onnx next to the checkpoint
        shutil.copyfile(pt, local_pt)
        exported = YOLO(str(local_pt)).export(
            format="onnx", imgsz=(h, w), opset=17, simplify=False, dynamic=False, device="cpu"
        )
        if not exported or not Path(exported).is_file():
            sys.stderr.write(f"ultralytics export returned no file: {exported!r}\n")
            return 1
        os.replace(exported, out)  # same filesystem: atomic
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
