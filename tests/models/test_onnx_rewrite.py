"""The graph rewrites give the graph's own numbers, and leave every other graph alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from models.nanodet import DEFAULT_MODEL_PATH
from models.onnx_rewrite import load_rewritten, rewrite_model
from models.onnx_rewrite.dfl import rewrite_dfl_softmax
from models.onnx_rewrite.split_conv import split_activated_convs
from models.ort_options import ALLOW_SPINNING, cpu_session_options

onnx = pytest.importorskip("onnx")
ANCHORS = 50
BINS = 16


def dfl_graph(opset: int, weight: np.ndarray | None = None, perm: tuple[int, ...] = (0, 2, 1, 3)) -> Any:
    """The ultralytics DFL tail: (1, 64, a) -> Reshape -> Transpose -> Softmax(1) -> Conv -> (1, 4, a)."""
    from onnx import TensorProto, helper, numpy_helper

    bins = np.arange(BINS, dtype=np.float32) if weight is None else weight
    nodes = [
        helper.make_node("Reshape", ["x", "split_shape"], ["logits"]),
        helper.make_node("Transpose", ["logits"], ["bins_first"], perm=list(perm)),
        helper.make_node("Softmax", ["bins_first"], ["probabilities"], axis=1),
        helper.make_node("Conv", ["probabilities", "bins"], ["expected"], kernel_shape=[1, 1]),
        helper.make_node("Reshape", ["expected", "out_shape"], ["distances"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([1, 4, BINS, ANCHORS], dtype=np.int64), "split_shape"),
        numpy_helper.from_array(bins.reshape(1, BINS, 1, 1), "bins"),
        numpy_helper.from_array(np.array([1, 4, ANCHORS], dtype=np.int64), "out_shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "dfl",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4 * BINS, ANCHORS])],
        [helper.make_tensor_value_info("distances", TensorProto.FLOAT, [1, 4, ANCHORS])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def run(model: Any, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs: list[np.ndarray] = session.run(None, {"x": x})
    return outputs


@pytest.mark.parametrize("opset", [13, 17, 18, 20])
def test_rewrite_keeps_the_numbers(opset: int) -> None:
    x = np.random.default_rng(opset).normal(0, 4, (1, 4 * BINS, ANCHORS)).astype(np.float32)
    model = dfl_graph(opset)
    (before,) = run(model, x)
    assert rewrite_dfl_softmax(model)
    onnx.checker.check_model(model, full_check=True)
    assert "Softmax" not in {node.op_type for node in model.graph.node}
    np.testing.assert_allclose(run(model, x)[0], before, atol=1e-4)


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(lambda: dfl_graph(12), id="opset-12-softmax-semantics"),
        pytest.param(lambda: dfl_graph(18, weight=np.ones(BINS, dtype=np.float32)), id="not-0..15-weights"),
        pytest.param(lambda: dfl_graph(18, perm=(0, 1, 3, 2)), id="other-transpose"),
    ],
)
def test_other_dfl_like_graphs_are_left_alone(model: Any) -> None:
    graph = model()
    before = graph.SerializeToString()
    assert not rewrite_dfl_softmax(graph)
    assert graph.SerializeToString() == before


CHANNELS_IN, CHANNELS_OUT = 8, 32


def silu_split_graph(
    opset: int,
    sizes: tuple[int, ...] = (16, 16),
    how: str = "input",
    group: int = 1,
    axis: int = 1,
    also_read: bool = False,
) -> Any:
    """x -> Conv(3x3) -> x * Sigmoid(x) -> Split -> one Relu per chunk, as C2f / C3k2 begin.

    `how` gives the chunk sizes as the `split` input (opset 13+), the `split`
    attribute (before 13), or leaves them out (equal parts; opset 18 `num_outputs`).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(opset)
    weight = rng.normal(0, 0.3, (CHANNELS_OUT, CHANNELS_IN // group, 3, 3)).astype(np.float32)
    split_inputs, split_attributes = ["activated"], {"axis": axis}
    if how == "input":
        split_inputs.append("sizes")
    elif how == "attribute":
        split_attributes["split"] = list(sizes)
    elif opset >= 18:
        split_attributes["num_outputs"] = len(sizes)
    chunks = [f"chunk{i}" for i in range(len(sizes))]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["conv"], kernel_shape=[3, 3], pads=[1] * 4, group=group),
        helper.make_node("Sigmoid", ["conv"], ["gate"]),
        helper.make_node("Mul", ["conv", "gate"], ["activated"]),
        helper.make_node("Split", split_inputs, chunks, **split_attributes),
        *(helper.make_node("Relu", [chunk], [f"out{i}"]) for i, chunk in enumerate(chunks)),
    ]
    shapes = {f"out{i}": [1, size, 12, 10] for i, size in enumerate(sizes)}
    if axis != 1:
        shapes = {f"out{i}": [1, CHANNELS_OUT, None, 10] for i in range(len(sizes))}
    if also_read:
        nodes.append(helper.make_node("Neg", ["activated"], ["negated"]))
        shapes["negated"] = [1, CHANNELS_OUT, 12, 10]
    initializers = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(rng.normal(0, 1, CHANNELS_OUT).astype(np.float32), "b"),
    ]
    if how == "input":
        initializers.append(numpy_helper.from_array(np.array(sizes, dtype=np.int64), "sizes"))
    graph = helper.make_graph(
        nodes,
        "silu_split",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS_IN, 12, 10])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in shapes.items()],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


@pytest.mark.parametrize(
    ("opset", "sizes", "how"),
    [
        (13, (16, 16), "input"),
        (18, (8, 24), "input"),
        (18, (8, 8, 16), "input"),
        (11, (16, 16), "attribute"),
        (13, (16, 16), "equal"),
        (18, (16, 16), "equal"),
    ],
)
def test_split_rewrite_gives_the_same_chunks(opset: int, sizes: tuple[int, ...], how: str) -> None:
    model = silu_split_graph(opset, sizes, how)
    x = np.random.default_rng(1).normal(0, 1, (1, CHANNELS_IN, 12, 10)).astype(np.float32)
    before = run(model, x)
    assert split_activated_convs(model) == 1
    onnx.checker.check_model(model, full_check=True)
    op_types = [node.op_type for node in model.graph.node]
    assert "Split" not in op_types and op_types.count("Conv") == len(sizes)
    assert {init.name for init in model.graph.initializer}.isdisjoint({"w", "b", "sizes"})  # none left unused
    for chunk, expected in zip(run(model, x), before, strict=True):
        np.testing.assert_allclose(chunk, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(lambda: silu_split_graph(18, group=2), id="grouped-conv"),
        pytest.param(lambda: silu_split_graph(18, axis=2), id="split-over-height"),
        pytest.param(lambda: silu_split_graph(18, also_read=True), id="activation-read-elsewhere"),
    ],
)
def test_other_split_graphs_are_left_alone(model: Any) -> None:
    graph = model()
    before = graph.SerializeToString()
    assert split_activated_convs(graph) == 0
    assert graph.SerializeToString() == before


def test_rewrite_model_names_what_it_did() -> None:
    assert rewrite_model(silu_split_graph(18)) == ["split_conv"]
    assert rewrite_model(dfl_graph(18)) == ["dfl"]
    assert rewrite_model(silu_split_graph(18, axis=2)) == []


def test_nanodet_and_garbage_load_unchanged(tmp_path: Path) -> None:
    assert load_rewritten(DEFAULT_MODEL_PATH) is None  # neither pattern in NanoDet
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    assert load_rewritten(garbage) is None  # left for ONNX Runtime to report


def test_session_options_do_not_spin_and_optimise_fully() -> None:
    options = cpu_session_options(2)
    assert options.get_session_config_entry(ALLOW_SPINNING) == "0"
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert cpu_session_options(None).intra_op_num_threads == 0  # ONNX Runtime: one per physical core
