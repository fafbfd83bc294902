"""ONNX graphs as torch modules (onnx2torch), so torch-stage steps reach ONNX uploads too.

The graph is converted once, the steps change the module, and the result is exported back to
ONNX under the upload's input and output names with a dynamic batch axis. Inspection tries the
conversion and records whether it works, which ops block it, and how far the module's outputs
are from ONNX Runtime's on the inspection inputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from compressor.errors import UnsupportedModelError
from compressor.formats.onnx_fold import fold_constant_nodes
from compressor.formats.onnx_shapes import declared_batch
from compressor.formats.torch_static import static_resizes

# onnx2torch has converters for opsets 9..17; older graphs move to 17 first (the newest it
# knows well), newer ones only when an op's newer version has no converter.
MIN_OPSET = 13
CONVERT_OPSET = 17
# An output difference above this means the converted module is not the uploaded model.
MAX_CONVERSION_ERROR = 1e-3


def _opset(model: onnx.ModelProto) -> int:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _fold_constants(model: onnx.ModelProto) -> None:
    """Constant nodes and Identity copies of initializers become initializers, in place.

    Exporters emit both (shared weights, folded BatchNorm biases); onnx2torch wants a layer's
    weights as initializers.
    """
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        source: onnx.TensorProto | None = None
        if node.op_type == "Identity" and node.input[0] in inits:
            source = inits[node.input[0]]
        elif node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            source = node.attribute[0].t
        if source is None:
            kept.append(node)
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(source)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        inits[tensor.name] = tensor
    del graph.node[:]
    graph.node.extend(kept)


def _drop_needless_allowzero(model: onnx.ModelProto) -> None:
    """Exporters set Reshape's allowzero=1, which onnx2torch lacks; it only matters when the
    target shape holds a 0, so it is dropped where the constant target has none."""
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        flags = [a for a in node.attribute if a.name == "allowzero"]
        if flags and np.all(numpy_helper.to_array(inits[node.input[1]]) != 0):
            node.attribute.remove(flags[0])


def _shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    found: dict[str, list[int | None]] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.input]:
        dims = value.type.tensor_type.shape.dim
        found[value.name] = [int(d.dim_value) if d.HasField("dim_value") else None for d in dims]
    return found


def _flatten_reshapes(model: onnx.ModelProto) -> int:
    """A Reshape to (batch, everything else) becomes (0, -1), in place.

    The constant target names the flattened width (e.g. 256 = 16 channels x 4 x 4); once
    structured pruning removes channels that number is stale, while (0, -1) follows the
    channels that are left. Same result on the graph as uploaded.
    """
    shapes = _shapes(model)
    inits = {i.name: i for i in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        if any(a.name == "allowzero" and a.i for a in node.attribute):
            continue
        target = numpy_helper.to_array(inits[node.input[1]])
        dims = shapes.get(node.input[0]) or []
        rest = dims[1:]
        if target.shape != (2,) or len(dims) < 2 or None in rest or uses[node.input[1]] != 1:
            continue
        width = int(np.prod(np.asarray(rest, dtype=np.int64)))
        first_is_batch = int(target[0]) in (0, -1) or (dims[0] is not None and target[0] == dims[0])
        if first_is_batch and int(target[1]) in (width, -1):
            flat = np.asarray([0, -1], dtype=target.dtype)
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(flat, node.input[1]))
            changed += 1
    return changed


def _fixed_batch_reshapes(model: onnx.ModelProto, batch: int) -> int:
    """A Reshape whose constant target starts with the graph's fixed batch copies that
    dimension from its input instead (0), when shape inference says the input starts with it
    too: identical at the declared batch, and the module then trains and exports at any batch.
    """
    dims = {name: (shape[0] if shape else None) for name, shape in _shapes(model).items()}
    inits = {i.name: i for i in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        target = numpy_helper.to_array(inits[node.input[1]]).copy()
        if target.ndim != 1 or target.size < 2 or int(target[0]) != batch:
            continue
        if any(a.name == "allowzero" and a.i for a in node.attribute):
            continue
        if dims.get(node.input[0]) != batch or uses[node.input[1]] != 1:
            continue
        target[0] = 0
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(target, node.input[1]))
        changed += 1
    return changed


def blocking_ops(model: onnx.ModelProto) -> list[str]:
    """Ops (domain:type@opset) onnx2torch has no converter for, at the graph's opsets."""
    from onnx2torch.node_converters.registry import get_converter

    opsets = {o.domain or "": int(o.version) for o in model.opset_import}
    missing: set[str] = set()
    for node in model.graph.node:
        domain = node.domain or ""
        try:
            get_converter(node.op_type, opsets.get(domain, 0), domain=domain)
        except NotImplementedError:
            missing.add(f"{domain + ':' if domain else ''}{node.op_type}@{opsets.get(domain, 0)}")
    return sorted(missing)


def prepare_for_torch(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str], list[str]]:
    """The graph onnx2torch should convert, the ops still blocking it, and what was done."""
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    _fold_constants(model_copy)
    _drop_needless_allowzero(model_copy)
    done: list[str] = []
    opset = _opset(model_copy)
    blocked = blocking_ops(model_copy)
    if opset < MIN_OPSET or (blocked and opset != CONVERT_OPSET):
        try:
            moved = onnx.version_converter.convert_version(model_copy, CONVERT_OPSET)
        except Exception as exc:  # the converter raises RuntimeError and friends
            done.append(f"opset {opset} -> {CONVERT_OPSET} failed: {exc}")
        else:
            still = blocking_ops(moved)
            if opset < MIN_OPSET or len(still) < len(blocked):
                model_copy, blocked = moved, still
                _fold_constants(model_copy)
                _drop_needless_allowzero(model_copy)
                done.append(f"opset {opset} -> {CONVERT_OPSET}")
    if not blocked and (folded := fold_constant_nodes(model_copy, _opset(model_copy))):
        done.append(f"{folded} node(s) computing constants folded")
    if not blocked and _flatten_reshapes(model_copy):
        done.append("flattening Reshapes follow the channel count")
    batch = declared_batch(model_copy)
    if batch is not None and not blocked:
        changed = _fixed_batch_reshapes(model_copy, batch)
        if changed:
            done.append(f"{changed} Reshape(s) made batch-generic (declared batch {batch})")
    return model_copy, blocked, done


def convert_to_torch(model: onnx.ModelProto) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The graph as an eval-mode torch module; UnsupportedModelError names blocking ops."""
    import onnx2torch

    prepared, blocked, done = prepare_for_torch(model)
    if blocked:
        raise UnsupportedModelError(
            "the ONNX graph cannot be converted to torch: no converter for "
            + ", ".join(blocked)
            + "; quantization steps still apply to it"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = onnx2torch.convert(prepared)
    except Exception as exc:  # converters raise NotImplementedError, KeyError, ValueError...
        raise UnsupportedModelError(
            f"the ONNX graph cannot be converted to torch: {type(exc).__name__}: {exc}"
        ) from exc
    _static_reshapes(module)
    static_resizes(module)
    _weights_as_linear(module)
    _trainable_batchnorm(module)
    return module.eval(), {"opset": _opset(prepared), "rewrites": done}


def _trainable_batchnorm(module: torch.nn.Module) -> None:
    """onnx2torch leaves BatchNorm momentum at 0, so training (healing, distillation) would use
    batch statistics while the running ones stay those of the weights before the step: the
    trained model then collapses in eval mode (measured: 99% -> 10% on digits). Torch's
    default momentum lets training refresh them; inference is unchanged."""
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not m.momentum:
            m.momentum = 0.1


class StaticReshape(torch.nn.Module):
    """Reshape to a constant target (0 copies the input's dimension), in plain Python ints.

    onnx2torch reads the target from a tensor at run time, which torch.export cannot trace.
    """

    def __init__(self, shape: list[int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(self.shape)])


def _static_reshapes(module: torch.fx.GraphModule) -> int:
    """Replace every onnx2torch Reshape whose target is a stored constant, in place."""
    from onnx2torch.node_converters.reshape import OnnxReshape

    changed = 0
    for node in list(module.graph.nodes):
        if node.op != "call_module" or len(node.args) != 2:
            continue
        layer, shape = module.get_submodule(str(node.target)), node.args[1]
        if not isinstance(layer, OnnxReshape) or getattr(shape, "op", None) != "get_attr":
            continue
        value = module.get_buffer(str(shape.target)) if hasattr(shape, "target") else None
        if value is None or value.ndim != 1:
            continue
        module.add_submodule(str(node.target), StaticReshape([int(d) for d in value.tolist()]))
        node.args = (node.args[0],)
        changed += 1
    if changed:
        module.graph.eliminate_dead_code()
        module.recompile()
    return changed


def _weights_as_linear(module: torch.fx.GraphModule) -> int:
    """MatMul by a stored 2-D weight becomes nn.Linear, in place, so the torch-stage steps
    (which act on Linear and Conv layers) see it; the weights move, nothing is recomputed."""
    from onnx2torch.node_converters.matmul import OnnxMatMul

    changed = 0
    for node in list(module.graph.nodes):
        if node.op != "call_module" or len(node.args) != 2:
            continue
        weight_node = node.args[1]
        layer = module.get_submodule(str(node.target))
        if not isinstance(layer, OnnxMatMul) or getattr(weight_node, "op", None) != "get_attr":
            continue
        weight = module.get_buffer(str(weight_node.target))
        if weight.ndim != 2 or not weight.is_floating_point():
            continue
        linear = torch.nn.Linear(int(weight.shape[0]), int(weight.shape[1]), bias=False)
        linear.weight = torch.nn.Parameter(weight.detach().t().contiguous())
        module.add_submodule(str(node.target), linear)
        node.args = (node.args[0],)
        changed += 1
    if changed:
        module.graph.eliminate_dead_code()
        module.delete_all_unused_submodules()
        module.recompile()
    return changed


def _ort_outputs(path: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    from compressor.formats.bounded_run import run_bounded

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    return [np.asarray(o) for o in run_bounded(session, {k: feed[k] for k in wanted})]


def _torch_outputs(module: torch.nn.Module, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*(torch.from_numpy(v) for v in feed.values()))
    outs = out if isinstance(out, tuple | list) else [out]
    return [o.detach().numpy() for o in outs]


def _max_diff(path: Path, module: torch.nn.Module, feed: dict[str, np.ndarray]) -> float:
    return max(
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
        for a, b in zip(_ort_outputs(path, feed), _torch_outputs(module, feed), strict=True)
    )


def conversion_check(path: Path, feed: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """What inspection records: convertible or not, blocking ops, largest output difference.

    Without ``feed`` (no inputs ONNX Runtime runs) only the conversion itself is tried, which
    does not depend on shapes: blocking ops still say False, otherwise ``convertible`` is None.
    """
    model = onnx.load(str(path), load_external_data=True)
    try:
        module, details = convert_to_torch(model)
        diff = None if feed is None else _max_diff(path, module, feed)
    except UnsupportedModelError as exc:
        _prepared, blocked, _done = prepare_for_torch(model)
        return {"convertible": False, "blocking_ops": blocked, "reason": exc.reason}
    except Exception as exc:  # a converted module that does not run is not convertible
        return {
            "convertible": False,
            "blocking_ops": [],
            "reason": f"the converted module does not run: {type(exc).__name__}: {exc}",
        }
    if feed is None or diff is None:
        return {"convertible": None, "blocking_ops": [], **details}
    found = {"blocking_ops": [], "max_abs_diff": diff, **details}
    if not diff <= MAX_CONVERSION_ERROR:
        return {
            **found,
            "convertible": False,
            "reason": f"the converted module differs from ONNX Runtime by {diff:.3g}",
        }
    return {**found, "convertible": True, "inputs_checked": len(next(iter(feed.values())))}


def check_on_inputs(onnx_path: Path, module: torch.nn.Module, feed: dict[str, np.ndarray]) -> None:
    """Refuse a converted module that does not match ONNX Runtime on these inputs (a job's own
    data, when inspection found no generated shape the graph runs at); names the data's shape."""
    from compressor.formats.probe_shapes import describe, one_line

    shapes = {name: [int(d) for d in value.shape] for name, value in feed.items()}
    try:
        diff = _max_diff(onnx_path, module, feed)
    except Exception as exc:  # either runtime failing on the data is the same refusal
        how = one_line(f"{type(exc).__name__}: {exc}", 300)
        raise UnsupportedModelError(
            "the ONNX graph converted to torch does not run on the job's inputs of shape "
            f"{describe(shapes)}: {how}"
        ) from exc
    if not diff <= MAX_CONVERSION_ERROR:
        raise UnsupportedModelError(
            f"the ONNX graph converted to torch differs from ONNX Runtime by {diff:.3g} on the "
            f"job's inputs of shape {describe(shapes)}"
        )


def export_like_upload(
    module: torch.nn.Module,
    example: dict[str, np.ndarray],
    path: Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, list[int]] | None = None,
) -> None:
    """Export with the upload's input and output names, a dynamic batch axis, and the other
    axes the upload left dynamic (``dynamic_axes``: input name -> axes, e.g. height and width
    of a detector): the artifact takes the shapes the upload took."""
    from compressor.formats.onnx_io import save_exported

    # torch.export specialises a dimension of size 1, so the example holds at least two rows.
    args = tuple(
        torch.from_numpy(example[n] if len(example[n]) > 1 else np.repeat(example[n], 2, 0))
        for n in input_names
    )
    batch = torch.export.Dim("batch")
    # AUTO: an axis the network in truth fixes (a Reshape to a set size) is specialised, not
    # an export failure; the others stay dynamic, with what the network requires of them.
    shapes = tuple(
        {0: batch, **{a: torch.export.Dim.AUTO for a in (dynamic_axes or {}).get(n, []) if a}}
        for n in input_names
    )
    save_exported(
        module.eval(),
        args,
        path,
        input_names=input_names,
        output_names=output_names,
        dynamic_shapes=shapes,
        failure="export of the converted graph back to ONNX failed",
    )


Exporter = Callable[[torch.nn.Module, dict[str, np.ndarray], Path], None]


@dataclass(frozen=True)
class TorchConversion:
    """An ONNX upload as a torch module, and how to export it back under the upload's names."""

    module: torch.nn.Module
    export: Exporter
    note: str


def torch_from_onnx(onnx_path: Path, *, input_names: list[str]) -> TorchConversion:
    """Convert an ONNX source for the torch-stage steps; the caller keeps what comes back."""
    model = onnx.load(str(onnx_path), load_external_data=True)
    module, details = convert_to_torch(model)
    output_names = [o.name for o in model.graph.output]
    dynamic = {
        i.name: [a for a, d in enumerate(i.type.tensor_type.shape.dim) if not d.dim_value]
        for i in model.graph.input
    }

    def export(module: torch.nn.Module, example: dict[str, np.ndarray], path: Path) -> None:
        export_like_upload(
            module,
            example,
            path,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic,
        )

    return TorchConversion(
        module=module,
        export=export,
        note=(
            f"the ONNX graph was converted to torch (onnx2torch, opset {details['opset']}) for "
            "the torch-stage steps and exported back with a dynamic batch axis and the axes "
            "the upload left dynamic"
        ),
    )


def inspect_conversion(root: Path, inspection: dict[str, Any]) -> dict[str, Any]:
    """The ``torch_conversion`` entry of an ONNX model's inspection, on generated inputs of the
    declared shapes (the graph's fixed batch, else 2 rows) at the first size ONNX Runtime runs
    (compressor/formats/probe_shapes.py). When none runs, ``convertible`` is None (unknown)
    unless the conversion itself fails: the job then converts on its own data."""
    from compressor.formats.bounds import bounded
    from compressor.formats.detect import find_onnx_file
    from compressor.formats.probe_shapes import Probe, one_line, probe_inputs

    path = find_onnx_file(root)
    assert path is not None
    try:
        model = onnx.load(str(path), load_external_data=False)
        # A graph with ops no converter takes is refused without running it: running a
        # hostile graph (an endless Loop) in the inspection would hold the worker.
        if prepare_for_torch(model)[1]:
            probe = Probe(None, None, [])
        else:
            probe = probe_inputs(path, inspection["inputs"], rows=declared_batch(model) or 2)
    except Exception as exc:  # an input we cannot generate must not reject the upload
        error = one_line(f"no inputs could be generated: {exc}")
        probe = Probe(None, None, [{"shape": None, "error": error}])
    found = conversion_check(path, probe.feed)
    if probe.shapes is not None:
        found["inputs_checked_shape"] = probe.shapes
    if probe.failures:
        found["shapes_failed"] = probe.failures
    if found["convertible"] is None:
        found["reason"] = (
            "ONNX Runtime ran none of the generated input shapes, so the conversion was not "
            f"checked on outputs (the job converts on its own data): {probe.tried()}"
        )
    # op types and error text come from the graph: bounded like the rest of the inspection
    found["blocking_ops"] = [bounded(str(op), 64) for op in found["blocking_ops"][:20]]
    if "reason" in found:
        found["reason"] = bounded(str(found["reason"]), 500)
    return found
