"""What the rewrites need to read and edit an ONNX graph: who makes and who reads each tensor."""

from __future__ import annotations

from typing import Any


def attribute(node: Any, name: str, default: Any) -> Any:
    """A node attribute's value, or `default` when the node does not set it."""
    from onnx import helper

    for entry in node.attribute:
        if entry.name == name:
            return helper.get_attribute_value(entry)
    return default


def default_opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


class GraphIndex:
    """A snapshot of one graph: producer and consumers of each tensor, initializers, outputs.

    Taken before an edit; take a new one after, as the edit makes it stale.
    """

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.nodes = list(graph.node)
        self.producer = {output: node for node in self.nodes for output in node.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.initializers = {init.name: init for init in graph.initializer}
        self.graph_outputs = {output.name for output in graph.output}

    def made_by(self, tensor: str, op_type: str) -> Any | None:
        """The node of `op_type` that produces `tensor`, else None."""
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == op_type else None

    def read_only_by(self, tensor: str, count: int) -> bool:
        """`tensor` has exactly `count` consuming nodes and is not a graph output."""
        return tensor not in self.graph_outputs and len(self.consumers.get(tensor, [])) == count


def replace_nodes(graph: Any, removed: list[Any], new_nodes: list[Any], at: Any) -> None:
    """Remove `removed` and put `new_nodes` where `at` (one of them) stood, keeping topological order.

    Shapes recorded for the removed nodes' outputs are dropped: a rewrite may change them.
    """
    nodes = list(graph.node)  # compared by value: protobuf hands out new wrappers, not the same objects
    position = nodes.index(at)
    kept = [node for node in nodes if node not in removed]
    position -= sum(1 for node in nodes[:position] if node in removed)
    del graph.node[:]
    graph.node.extend(kept[:position] + new_nodes + kept[position:])
    stale = {output for node in removed for output in node.output}
    for info in [info for info in graph.value_info if info.name in stale]:
        graph.value_info.remove(info)


def drop_unused_initializer(graph: Any, name: str) -> None:
    """Remove initializer `name` when no node reads it any more (other names: nothing happens)."""
    if any(name in node.input for node in graph.node):
        return
    for init in [init for init in graph.initializer if init.name == name]:
        graph.initializer.remove(init)
