"""Offline tools that turn upstream model files into the ONNX files curbwatch ships."""
