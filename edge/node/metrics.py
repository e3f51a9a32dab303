"""Prometheus metrics of one edge node, on a registry of its own (never the global default).

A registry per `NodeMetrics` keeps tests isolated and lets two nodes share a
process. The node always counts; `serve_metrics` exposes the registry over
HTTP only when a port is configured (port 0: a null endpoint, nothing listens).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

CAMERA_STATES = ("starting", "streaming", "reconnecting", "offline", "stopped")
CAPTURE_STAGES = ("demux", "decode", "convert")  # edge.capture.CaptureStats' CPU seconds
# Detector latency on an edge CPU: tens of ms (small model) to seconds (large model, busy box).
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class NodeMetrics:
    """Every metric the node exports; labels are camera ids and zone ids, never free text."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.frames_captured = Counter(
            "curbwatch_frames_captured", "Frames decoded from the camera.", ["camera"], registry=r
        )
        self.frames_dropped = Counter(
            "curbwatch_frames_dropped", "Frames dropped by a full capture queue.", ["camera"], registry=r
        )
        self.frames_analysed = Counter(
            "curbwatch_frames_analysed", "Frames run through the detector.", ["camera"], registry=r
        )
        self.detection_latency = Histogram(
            "curbwatch_detection_latency_seconds",
            "Detector time per frame.",
            ["camera"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.detector_threads = Gauge(
            "curbwatch_detector_threads",
            "Inference threads of the shared detector (detector.threads).",
            registry=r,
        )
        self.detector_workers = Gauge(
            "curbwatch_detector_workers",
            "Threads taking frames to the detector; each also runs the cameras' pipelines.",
            registry=r,
        )
        self.capture_threads = Gauge(
            "curbwatch_capture_threads", "Capture threads running (one per camera).", registry=r
        )
        # rate() of it is the share of a core each stage takes (bench/cameras reports the same).
        self.capture_cpu = Counter(
            "curbwatch_capture_cpu_seconds",
            "CPU seconds of a camera's capture thread by stage: demux, decode, convert (YUV to scaled BGR).",
            ["camera", "stage"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "curbwatch_queue_depth", "Frames waiting for the detector.", ["camera"], registry=r
        )
        self.camera_state = Enum(
            "curbwatch_camera_state",
            "Capture state of a camera.",
            ["camera"],
            states=list(CAMERA_STATES),
            registry=r,
        )
        self.last_frame = Gauge(
            "curbwatch_last_frame_timestamp_seconds",
            "Wall time of the last frame analysed.",
            ["camera"],
            registry=r,
        )
        self.incidents_opened = Counter(
            "curbwatch_incidents_opened", "Incidents opened.", ["camera", "zone"], registry=r
        )
        self.incidents_cleared = Counter(
            "curbwatch_incidents_cleared", "Incidents cleared.", ["camera", "zone"], registry=r
        )
        self.events_enqueued = Counter(
            "curbwatch_events_enqueued", "Incident events committed to the outbox.", ["camera"], registry=r
        )
        self.evidence_fallbacks = Counter(
            "curbwatch_evidence_main_stream_fallbacks",
            "Evidence pictures drawn on the analysed frame because the main stream was not read in time.",
            ["camera"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "curbwatch_outbox_backlog", "Events not yet acknowledged by the broker.", registry=r
        )
        self.config_version = Gauge(
            "curbwatch_config_version", "Applied zone config version (0: local files).", registry=r
        )
        self.config_rejected = Counter(
            "curbwatch_config_rejected", "Config messages rejected as invalid.", registry=r
        )
        self.static_regions = Gauge(
            "curbwatch_scene_static_regions", "Static regions the scene model sees.", ["camera"], registry=r
        )
        self.scene_relearns = Counter(
            "curbwatch_scene_relearns",
            "Times the scene model re-learned the view (camera moved or re-aimed).",
            ["camera"],
            registry=r,
        )
        self.scene_seconds = Histogram(
            "curbwatch_scene_seconds",
            "Scene model time per picture.",
            ["camera"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.scene_view = Enum(
            "curbwatch_scene_view", "What the scene model makes of the view.", ["camera"],
            states=["learning", "watching", "view_changed", "obstructed"], registry=r,
        )  # fmt: skip

    def add_cameras(self, camera_ids: Iterable[str]) -> None:
        """Create each camera's series at zero, so dashboards see a camera before its first frame."""
        for camera in camera_ids:
            for metric in (
                self.frames_captured,
                self.frames_dropped,
                self.frames_analysed,
                self.scene_relearns,
                self.evidence_fallbacks,
            ):
                metric.labels(camera=camera)
            for stage in CAPTURE_STAGES:
                self.capture_cpu.labels(camera=camera, stage=stage)
            self.static_regions.labels(camera=camera).set(0)
            self.queue_depth.labels(camera=camera).set(0)
            self.camera_state.labels(camera=camera).state("starting")

    def set_camera_state(self, camera: str, state: str) -> None:
        if state not in CAMERA_STATES:
            log.warning("camera %s: state %r has no metric value", camera, state)
            return
        self.camera_state.labels(camera=camera).state(state)


class MetricsEndpoint(Protocol):
    @property
    def port(self) -> int: ...

    def close(self) -> None: ...


class NullEndpoint:
    """Metrics turned off (port 0): nothing listens."""

    port = 0

    def close(self) -> None:
        return None


class HttpEndpoint:
    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(metrics: NodeMetrics, bind: str, port: int) -> MetricsEndpoint:
    """Serve /metrics on bind:port in a daemon thread; port 0 serves nothing."""
    if port == 0:
        return NullEndpoint()
    server, thread = start_http_server(port, addr=bind, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", bind, port)
    return HttpEndpoint(server, thread)
