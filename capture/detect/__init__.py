"""The 2D front end: pose detectors, their registry, crop refinement, 3D-guided ROIs, re-ID descriptors.

One hop per concern: :mod:`.registry` (detectors chosen by name, checked before any worker starts),
:mod:`.detector` (the :class:`~capture.detect.detector.Detector` interface), :mod:`.letterbox`
(network input geometry), :mod:`.yolo_pose` (the default YOLO11n-pose on onnxruntime),
:mod:`.ultralytics_onnx`, :mod:`.rtmo`, :mod:`.rtmpose` and :mod:`.movenet` (supplied models),
:mod:`.refine` (the top-down refinement pass), :mod:`.crops` and :mod:`.crop_shapes` (crop-only
detection on the node's ROI hints), :mod:`.frames` (a worker's per-frame detection stage),
:mod:`.reid` (appearance descriptors) and :mod:`.export_yolo` (the one-off ONNX export, run as a
subprocess). Modules are imported by name: onnxruntime and OpenCV load only where a model runs.
"""
