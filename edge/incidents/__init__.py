"""The incident engine: dwell state machine, its types and state, persistence, restart reconcile."""
