"""Fuse exported self-attention into ONNX Runtime's MultiHeadAttention kernel.

The dynamo exporter writes a Hugging Face encoder's eager attention as a dozen nodes per layer:
Reshape and Transpose of q, k and v, MatMul, a scale, the additive mask (and, for MPNet, a
position bias), Softmax, MatMul, Transpose and Reshape. ONNX Runtime's transformer optimizer
recognizes the TorchScript exporter's pattern, not this one: on all-MiniLM-L6-v2 it fused no
Attention (docs/benchmarks.md). This pass finds the pattern from each Softmax upwards and puts
one ``com.microsoft.MultiHeadAttention`` in its place, taking q, k and v as [batch, sequence,
hidden] and the summed additive terms as its ``attention_bias``.

The rewrite is exact in float (the kernel computes the same products and softmax); on the int8
MiniLM it cut p50 by about 8% at batch 1, sequence 128. It stops at anything it does not
recognize (DeBERTa's disentangled attention, a mask that is not 4-D, a tensor read elsewhere),
and leaves that layer as exported. The q/k/v projections stay separate MatMuls, so quantizers
and float fallback see the same weight MatMuls as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import helper, numpy_helper, shape_inference

CONTRIB = "com.microsoft"
HEADS_FIRST = [0, 2, 1, 3]  # [batch, seq, heads, dim] <-> [batch, heads, seq, dim]
KEYS_TRANSPOSED = [0, 2, 3, 1]  # k as [batch, heads, dim, seq]


class _NoMatch(Exception):
    pass


@dataclass
class _Graph:
    producer: dict[str, onnx.NodeProto]
    readers: dict[str, int]
    constants: dict[str, onnx.TensorProto]
    shapes: dict[str, list[int | str]]

    @classmethod
    def of(cls, model: onnx.ModelProto) -> _Graph:
        graph = model.graph
        readers: dict[str, int] = {}
        for node in graph.node:
            for name in node.input:
                readers[name] = readers.get(name, 0) + 1
        for out in graph.output:
            readers[out.name] = readers.get(out.name, 0) + 1
        constants = {i.name: i for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                constants[node.output[0]] = node.attribute[0].t
        inferred = shape_inference.infer_shapes(model).graph.value_info
        shapes = {
            v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in inferred
            if v.type.tensor_type.HasField("shape")
        }
        return cls({o: n for n in graph.node for o in n.output}, readers, constants, shapes)

    def made_by(self, name: str, op: str | tuple[str, ...], *, sole: bool = True) -> onnx.NodeProto:
        """The node making ``name``, which must be an ``op`` read by no one else."""
        node = self.producer.get(name)
        ops = (op,) if isinstance(op, str) else op
        if node is None or node.op_type not in ops or (sole and self.readers.get(name) != 1):
            raise _NoMatch(name)
        return node

    def scalar(self, name: str) -> float:
        tensor = self.constants.get(name)
        if tensor is None:
            raise _NoMatch(name)
        value = numpy_helper.to_array(tensor)
        if value.size != 1:
            raise _NoMatch(name)
        return float(value.reshape(()))


def _perm(node: onnx.NodeProto) -> list[int]:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), [])


@dataclass
class _Match:
    removed: list[onnx.NodeProto]
    last: onnx.NodeProto  # the final Reshape, whose place and output the fused node takes
    q: str
    k: str
    v: str
    bias_terms: list[str]
    heads: int
    scale: float


def _split_heads(g: _Graph, name: str, perm: list[int]) -> tuple[onnx.NodeProto, onnx.NodeProto]:
    transpose = g.made_by(name, "Transpose")
    if _perm(transpose) != perm:
        raise _NoMatch(name)
    return transpose, g.made_by(transpose.input[0], "Reshape")


def _op(g: _Graph, name: str) -> str:
    node = g.producer.get(name)
    return node.op_type if node is not None else ""


def _is_scaled_scores(g: _Graph, name: str) -> bool:
    return _op(g, name) in ("Mul", "Div") and _op(g, g.producer[name].input[0]) == "MatMul"


def _scores(g: _Graph, softmax: onnx.NodeProto) -> tuple[list[onnx.NodeProto], list[str], float]:
    """Walk Softmax's input up through Adds (mask, position bias) to the scaled q @ k^T."""
    adds, terms = [], []
    name = softmax.input[0]
    while _op(g, name) == "Add":
        node = g.made_by(name, "Add")
        scaled = [i for i in node.input if _is_scaled_scores(g, i)]
        nested = [i for i in node.input if _op(g, i) == "Add"]
        if len(scaled) == 1:
            main = scaled[0]
        elif not scaled and len(nested) == 1:
            main = nested[0]
        else:
            raise _NoMatch(name)
        adds.append(node)
        terms += [i for i in node.input if i != main]
        name = main
    scale_node = g.made_by(name, ("Mul", "Div"))
    factor = g.scalar(scale_node.input[1])
    scale = factor if scale_node.op_type == "Mul" else 1.0 / factor
    if not terms:
        raise _NoMatch("no additive mask")  # an unmasked encoder is rare; not worth a branch
    return [*adds, scale_node], terms, scale


def _only_reader(
    g: _Graph, readers_of: dict[str, list[onnx.NodeProto]], name: str, op: str
) -> onnx.NodeProto:
    found = readers_of.get(name, [])
    if g.readers.get(name) != 1 or len(found) != 1 or found[0].op_type != op:
        raise _NoMatch(name)
    return found[0]


def _match(
    g: _Graph, softmax: onnx.NodeProto, readers_of: dict[str, list[onnx.NodeProto]]
) -> _Match:
    axis = next((a.i for a in softmax.attribute if a.name == "axis"), -1)
    if axis not in (-1, 3):
        raise _NoMatch(softmax.name)
    score_nodes, terms, scale = _scores(g, softmax)
    qk = g.made_by(score_nodes[-1].input[0], "MatMul")
    q_t, q_r = _split_heads(g, qk.input[0], HEADS_FIRST)
    k_t, k_r = _split_heads(g, qk.input[1], KEYS_TRANSPOSED)
    av = _only_reader(g, readers_of, softmax.output[0], "MatMul")
    if av.input[0] != softmax.output[0]:
        raise _NoMatch(av.name)
    v_t, v_r = _split_heads(g, av.input[1], HEADS_FIRST)
    merge = _only_reader(g, readers_of, av.output[0], "Transpose")
    if _perm(merge) != HEADS_FIRST:
        raise _NoMatch(merge.name)
    last = _only_reader(g, readers_of, merge.output[0], "Reshape")
    split = [g.shapes.get(r.output[0], []) for r in (q_r, k_r, v_r)]
    heads = split[0][2] if len(split[0]) == 4 else None
    if not isinstance(heads, int) or any(len(s) != 4 or s[2:] != split[0][2:] for s in split):
        raise _NoMatch(q_r.name)  # 4-D [batch, seq, heads, dim] alike for q, k and v
    if any(len(g.shapes.get(r.input[0], [])) != 3 for r in (q_r, k_r, v_r)):
        raise _NoMatch(q_r.name)
    if any(len(g.shapes.get(t, [])) != 4 for t in terms):
        raise _NoMatch(softmax.name)  # attention_bias is [batch or 1, heads or 1, seq, seq]
    removed = [softmax, *score_nodes, qk, q_t, q_r, k_t, k_r, av, v_t, v_r, merge, last]
    return _Match(removed, last, q_r.input[0], k_r.input[0], v_r.input[0], terms, heads, scale)


def _live(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """``nodes`` less those whose outputs nothing reads any more (the removed Reshapes' shape
    computations), found from the graph's outputs back."""
    needed = {o.name for o in graph.output}
    live: list[onnx.NodeProto] = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            live.append(node)
            needed.update(_reads(node))
    return live[::-1]


def _reads(node: onnx.NodeProto) -> set[str]:
    """What ``node`` reads, the outer names its subgraphs (If, Loop, Scan) read included."""
    names = set(node.input)
    for attr in node.attribute:
        for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
            for inner in sub.node:
                names |= _reads(inner)
    return names


def fuse_attention(model: onnx.ModelProto) -> int:
    """Fuse every recognized self-attention block in ``model``, in place; how many were."""
    g = _Graph.of(model)
    readers_of: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers_of.setdefault(name, []).append(node)
    replaced: dict[int, list[onnx.NodeProto]] = {}
    removed: set[int] = set()
    for softmax in [n for n in model.graph.node if n.op_type == "Softmax"]:
        try:
            m = _match(g, softmax, readers_of)
        except _NoMatch:
            continue
        base = softmax.name or m.last.output[0]
        new, bias = [], m.bias_terms[0]
        for n, term in enumerate(m.bias_terms[1:], start=1):
            total = f"{base}_attention_bias_{n}"
            new.append(helper.make_node("Add", [bias, term], [total], name=total))
            bias = total
        new.append(
            helper.make_node(
                "MultiHeadAttention",
                [m.q, m.k, m.v, "", "", bias],
                [m.last.output[0]],
                name=f"{base}_MultiHeadAttention",
                domain=CONTRIB,
                num_heads=m.heads,
                scale=m.scale,
            )
        )
        replaced[id(m.last)] = new
        removed.update(id(n) for n in m.removed)
    if not replaced:
        return 0
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if id(node) in replaced:
            nodes += replaced[id(node)]
        elif id(node) not in removed:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(_live(model.graph, nodes))
    read = {name for node in model.graph.node for name in node.input}
    unread = [i for i in model.graph.initializer if i.name not in read]
    for init in unread:  # the scale constants
        model.graph.initializer.remove(init)
    if not any(o.domain == CONTRIB for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(CONTRIB, 1))
    return len(replaced)
