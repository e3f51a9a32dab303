"""`curbwatch demo`: the whole loop on bundled footage (the clip and zones live here too)."""
