"""Node metrics: isolated registries, scraped over real HTTP."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from edge.node.metrics import NodeMetrics, serve_metrics
from tests.support.broker import free_port


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_scrape_over_http_shows_what_the_node_counted() -> None:
    metrics = NodeMetrics()
    metrics.add_cameras(["cam-01", "cam-02"])
    metrics.frames_captured.labels(camera="cam-01").inc(5)
    metrics.frames_analysed.labels(camera="cam-01").inc(3)
    metrics.detection_latency.labels(camera="cam-01").observe(0.04)
    metrics.detection_latency.labels(camera="cam-01").observe(0.3)
    metrics.queue_depth.labels(camera="cam-01").set(2)
    metrics.set_camera_state("cam-01", "streaming")
    metrics.set_camera_state("cam-02", "reconnecting")
    metrics.incidents_opened.labels(camera="cam-01", zone="door-1").inc()
    metrics.outbox_backlog.set(7)
    metrics.config_version.set(12)
    metrics.detector_threads.set(2)
    metrics.detector_workers.set(1)
    metrics.capture_threads.set(2)
    metrics.capture_cpu.labels(camera="cam-01", stage="decode").inc(1.5)
    endpoint = serve_metrics(metrics, "127.0.0.1", free_port())
    try:
        samples = _scrape(endpoint.port)
    finally:
        endpoint.close()
    cam1, cam2 = (("camera", "cam-01"),), (("camera", "cam-02"),)
    assert samples[("curbwatch_frames_captured_total", cam1)] == 5
    assert samples[("curbwatch_frames_analysed_total", cam1)] == 3
    assert samples[("curbwatch_frames_captured_total", cam2)] == 0  # present before the first frame
    assert samples[("curbwatch_detection_latency_seconds_count", cam1)] == 2
    assert samples[("curbwatch_detection_latency_seconds_bucket", (*cam1, ("le", "0.05")))] == 1
    assert samples[("curbwatch_queue_depth", cam1)] == 2
    assert samples[("curbwatch_camera_state", (*cam1, ("curbwatch_camera_state", "streaming")))] == 1
    assert samples[("curbwatch_camera_state", (*cam2, ("curbwatch_camera_state", "streaming")))] == 0
    assert samples[("curbwatch_camera_state", (*cam2, ("curbwatch_camera_state", "reconnecting")))] == 1
    assert samples[("curbwatch_incidents_opened_total", (*cam1, ("zone", "door-1")))] == 1
    assert samples[("curbwatch_outbox_backlog", ())] == 7
    assert samples[("curbwatch_config_version", ())] == 12
    assert samples[("curbwatch_detector_threads", ())] == samples[("curbwatch_capture_threads", ())] == 2
    assert samples[("curbwatch_detector_workers", ())] == 1
    cpu = "curbwatch_capture_cpu_seconds_total"
    assert samples[(cpu, (*cam1, ("stage", "decode")))] == 1.5
    assert samples[(cpu, (*cam2, ("stage", "demux")))] == 0  # present before the first picture


def test_registries_are_isolated_and_not_global() -> None:
    first, second = NodeMetrics(), NodeMetrics()  # the same names twice: fine on separate registries
    first.outbox_backlog.set(3)
    assert second.registry.get_sample_value("curbwatch_outbox_backlog") == 0
    assert first.registry.get_sample_value("curbwatch_outbox_backlog") == 3
    assert REGISTRY.get_sample_value("curbwatch_outbox_backlog") is None


def test_port_zero_serves_nothing_and_close_frees_the_port() -> None:
    assert serve_metrics(NodeMetrics(), "127.0.0.1", 0).port == 0
    port = free_port()
    serve_metrics(NodeMetrics(), "127.0.0.1", port).close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    serve_metrics(NodeMetrics(), "127.0.0.1", port).close()  # the port is free again
