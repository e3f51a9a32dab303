"""The DFL rewrite gives the graph's own numbers, and leaves every other graph alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from models.dfl_rewrite import load_rewritten, rewrite_dfl_softmax
from models.nanodet import DEFAULT_MODEL_PATH
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


def run(model: Any, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    output: np.ndarray = session.run(None, {"x": x})[0]
    return output


@pytest.mark.parametrize("opset", [13, 17, 18, 20])
def test_rewrite_keeps_the_numbers(opset: int) -> None:
    x = np.random.default_rng(opset).normal(0, 4, (1, 4 * BINS, ANCHORS)).astype(np.float32)
    model = dfl_graph(opset)
    before = run(model, x)
    assert rewrite_dfl_softmax(model)
    onnx.checker.check_model(model, full_check=True)
    assert "Softmax" not in {node.op_type for node in model.graph.node}
    np.testing.assert_allclose(run(model, x), before, atol=1e-4)


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(lambda: dfl_graph(12), id="opset-12-softmax-semantics"),
        pytest.param(lambda: dfl_graph(18, weight=np.ones(BINS, dtype=np.float32)), id="not-0..15-weights"),
        pytest.param(lambda: dfl_graph(18, perm=(0, 1, 3, 2)), id="other-transpose"),
    ],
)
def test_other_graphs_are_left_alone(model: Any) -> None:
    graph = model()
    before = graph.SerializeToString()
    assert not rewrite_dfl_softmax(graph)
    assert graph.SerializeToString() == before


def test_nanodet_and_garbage_load_unchanged(tmp_path: Path) -> None:
    assert load_rewritten(DEFAULT_MODEL_PATH) is None  # no DFL softmax pattern in NanoDet
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    assert load_rewritten(garbage) is None  # left for ONNX Runtime to report


def test_session_options_do_not_spin_and_optimise_fully() -> None:
    options = cpu_session_options(2)
    assert options.get_session_config_entry(ALLOW_SPINNING) == "0"
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert cpu_session_options(None).intra_op_num_threads == 0  # ONNX Runtime: one per physical core
