"""Detector backends behind one `Detector` protocol, model files and class maps."""
