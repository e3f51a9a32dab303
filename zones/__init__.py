"""Zone files: schema, validation with file:line errors, geometry, schedules."""
