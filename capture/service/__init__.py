"""The running service: workers, the node, the local launcher, frame synchronisation, recording.

One hop per stage: :mod:`.worker` (camera -> 2D detections -> ZeroMQ), :mod:`.node` (views ->
3D tracks -> published and written), :mod:`.sync` (which views make one frame), :mod:`.launcher`
and :mod:`.run` (``mvcap run``/``demo``/``live`` on one machine), :mod:`.record` (``mvcap record``
and ``mvcap export``), :mod:`.stream` (the VMC/OSC relay) and :mod:`.viewer` (``mvcap view``, rerun),
clients of a running node, :mod:`.proc` (signals and process figures).
"""
