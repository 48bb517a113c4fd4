"""What comes into a worker: frames, depth images, detections recorded earlier, and their pixel maps.

One concept per module: :mod:`.frames` (video files, image folders and stills, webcams:
:func:`~capture.sources.frames.open_source`), :mod:`.depth` (RGB-D depth images by frame index, and
the worker's lifting stage), :mod:`.detection_files` (OpenPose JSON, COCO-17 results JSON and our own
``.json.gz`` detections, replayed instead of a detector) and :mod:`.image_map` (frames whose size or
orientation differs from the calibration's: explicit scale and padding, ``rotate``). Modules are
imported by name, so a replay of detection files loads no OpenCV video code.
"""
