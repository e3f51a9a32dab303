"""The edge node runtime: capture, tracking, incidents, evidence, and the `curbwatch` CLI root."""
