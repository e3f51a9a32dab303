"""The edge node: composition root, config, per-camera pipeline, scheduler, status, metrics."""
