"""The evidence picture that leaves the box: zone, boxes, people blurred."""
