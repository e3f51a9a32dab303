"""The wire between edge and centre: topics, payload schema, durable outbox, ingest."""
