"""Class names the detectors know, and which of them count as sidewalk goods."""

from __future__ import annotations

# The 80 COCO classes in the order YOLO and NanoDet models number them.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# What a shop typically puts out beyond its door (越门经营): furniture, racks of goods,
# parasols, crates and parked delivery bicycles. A zone's `classes` overrides this.
DEFAULT_GOODS_CLASSES: frozenset[str] = frozenset(
    {
        "chair", "dining table", "bench", "couch", "potted plant", "umbrella", "suitcase",
        "bicycle", "motorcycle", "refrigerator", "tv", "vase", "bottle", "bowl", "oven",
        "microwave", "sink", "toilet", "bed",
    }
)  # fmt: skip

# Never goods, whatever a zone says: privacy blur applies to these instead.
PEOPLE_CLASSES: frozenset[str] = frozenset({"person"})
