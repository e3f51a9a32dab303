"""Camera capture for the edge node: sources, one worker thread per camera, bounded queues.

Public API (everything the node needs; import from ``edge.capture``)::

    spec = CameraSpec(camera_id="cam-01", url="rtsp://user:pw@10.0.0.7/stream1",
                      sample_interval_s=2.0,          # also: decode, stall_timeout_s,
                      analysis_width_px=960)          # frames at most 960 wide (scaled in one pass)
                                                      # open_timeout_s, offline_after_s,
                                                      # backoff=BackoffPolicy(...), realtime, loop
    queue = spec.make_queue()                         # FrameQueue: LATEST_WINS live, WAIT files
    worker = CameraWorker(spec, queue,
                          on_state=publish_status,    # (camera_id: str, CameraState) -> None
                          stop_event=node_stop,       # optional: the node's one stop event
                          source_factory=None)        # tests inject () -> FrameSource
    worker.start(); ...; worker.stop(); worker.join(5.0)
    worker.state, worker.stats()                      # CameraState, CaptureStats snapshot

    # many cameras, one detector (edge.node.scheduler):
    scheduler = DetectorScheduler(detector, on_result)  # on_result(frame: Frame, dets: Detections)
    scheduler.add_camera(spec.camera_id, queue, spec.sample_interval_s)
    scheduler.start(); ...; scheduler.stop(); scheduler.join(5.0)
    scheduler.cameras()["cam-01"].summary()           # analysed, dropped, jitter/lag p50/p95

    # evidence from the camera's main stream while `url` is its sub-stream:
    main = StillCamera("cam-01", "rtsp://.../main", timeout_s=3.0, width_px=1280)
    main.take()                                       # BGR of its next keyframe, or None in time

Each `Frame` carries BGR pixels, the camera id and ``ts``: stream time for files,
the worker's (injected) monotonic clock at decode for live sources.

`CameraState.value` is what the node publishes retained on
``{prefix}/{node}/{camera}/status``: starting | streaming | reconnecting | offline | stopped.
URLs are logged only through `edge.logscrub.redact_url`; the node should also
call `edge.logscrub.install()` for records from FFmpeg and other libraries.
"""

from edge.capture.backoff import Backoff, BackoffPolicy
from edge.capture.queue import DropPolicy, FrameQueue, QueuedFrame
from edge.capture.sources import (
    DecodeMode,
    DecodeTimings,
    EndOfStream,
    FrameSource,
    OpenCVSource,
    Picture,
    PyAVOptions,
    PyAVSource,
    SourceError,
    SourceFactory,
    SourceKind,
    make_source,
    source_kind,
)
from edge.capture.still import StillCamera, grab_keyframe
from edge.capture.worker import (
    CameraSpec,
    CameraState,
    CameraWorker,
    CaptureStats,
    Sampler,
    StateCallback,
    default_source_factory,
)

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "CameraSpec",
    "CameraState",
    "CameraWorker",
    "CaptureStats",
    "DecodeMode",
    "DecodeTimings",
    "DropPolicy",
    "EndOfStream",
    "FrameQueue",
    "FrameSource",
    "OpenCVSource",
    "Picture",
    "PyAVOptions",
    "PyAVSource",
    "QueuedFrame",
    "Sampler",
    "SourceError",
    "SourceFactory",
    "SourceKind",
    "StateCallback",
    "StillCamera",
    "default_source_factory",
    "grab_keyframe",
    "make_source",
    "source_kind",
]
