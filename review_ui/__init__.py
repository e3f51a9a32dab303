"""The review server: queue, verdicts, reminders, zone editor, audit log."""
