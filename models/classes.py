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

# Rows the edge's scene model adds beside the detector's (edge.scene): anything new that stays
# and is not a person, and such a thing that carries text. Every zone may name them.
STATIC_OBJECT = "static object"
SIGNBOARD = "signboard"
SCENE_CLASSES: tuple[str, ...] = (STATIC_OBJECT, SIGNBOARD)

# What a shop typically puts out beyond its door (越门经营): furniture, racks of goods,
# parasols, crates and parked delivery bicycles. A zone's `classes` overrides this.
DEFAULT_GOODS_CLASSES: frozenset[str] = frozenset(
    {
        "chair", "dining table", "bench", "couch", "potted plant", "umbrella", "suitcase",
        "bicycle", "motorcycle", "refrigerator", "tv", "vase", "bottle", "bowl", "oven",
        "microwave", "sink", "toilet", "bed", STATIC_OBJECT, SIGNBOARD,
    }
)  # fmt: skip

# Never goods, whatever a zone says: privacy blur applies to these instead.
PEOPLE_CLASSES: frozenset[str] = frozenset({"person"})
