"""Fine-tuning a detector from the review server's verdict export (`curbwatch models train`).

Needs the `train` extra (ultralytics, torch); nothing here is imported on an edge box.
"""
