"""ONNX export from torch and read-only inspection of ONNX files."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from compressor.errors import InvalidModelError, UnsupportedModelError
from compressor.formats.bounds import NAME_CHARS, bounded


def _takes_names(model: torch.nn.Module, names: list[str]) -> bool:
    params = inspect.signature(model.forward).parameters
    by_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return by_kw or all(n in params for n in names)


def _call(model: torch.nn.Module, names: list[str], args: tuple[torch.Tensor, ...]) -> Any:
    if _takes_names(model, names):
        return model(**dict(zip(names, args, strict=True)))
    return model(*args)  # library networks name their image argument ``x``, not ``input``


class _Outputs(torch.nn.Module):
    """Hugging Face models return dataclasses; ONNX needs plain tensors in a fixed order."""

    def __init__(
        self, model: torch.nn.Module, input_names: list[str], output_names: list[str]
    ) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names
        self.output_names = output_names

    def forward(self, *args: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = _call(self.model, self.input_names, args)
        if isinstance(out, torch.Tensor):  # plain modules (nn.Sequential) return the tensor
            return out
        if isinstance(out, Mapping):
            return tuple(out[name] for name in self.output_names)
        return out[0]


def _output_names(
    model: torch.nn.Module, names: list[str], args: tuple[torch.Tensor, ...]
) -> list[str]:
    """A ModelOutput's own tensor fields (last_hidden_state, pooler_output, logits): the names
    standard loaders such as optimum look for. Unset fields are absent from a ModelOutput, and
    caches are not tensors, so neither is exported."""
    with torch.no_grad():
        out = _call(model, names, args)
    if isinstance(out, Mapping):
        return [key for key, value in out.items() if isinstance(value, torch.Tensor)]
    return []


def export_onnx(
    model: torch.nn.Module,
    example: dict[str, np.ndarray],
    path: Path,
    *,
    output_name: str,
    sequence_axis: bool = True,
) -> None:
    """Export with a dynamic batch (and, for token inputs, a dynamic sequence) dimension.

    A model with named outputs (a Hugging Face ModelOutput) keeps their names and all of its
    tensors; a model that returns one tensor (or a plain tuple: its first) calls it
    ``output_name``. ``sequence_axis=False`` is for fixed-shape inputs (images, feature
    vectors), where only the batch varies.
    """
    names = list(example)
    args = tuple(torch.from_numpy(example[n]) for n in names)
    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("sequence")
    dynamic = {
        "args": tuple(
            {0: batch, 1: seq} if a.ndim >= 2 and sequence_axis else {0: batch} for a in args
        )
    }
    output_names = _output_names(model.eval(), names, args) or [output_name]
    wrapper = _Outputs(model, names, output_names).eval()
    save_exported(
        wrapper,
        args,
        path,
        input_names=names,
        output_names=output_names,
        dynamic_shapes=dynamic,
        failure="export to ONNX failed",
    )


def save_exported(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: Any,
    failure: str,
) -> None:
    """Export with the dynamo exporter into one file, Gemm rewritten as MatMul (which the
    quantizers read); any exporter error becomes UnsupportedModelError prefixed ``failure``."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                args,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                dynamo=True,
                verbose=False,
            )
        assert program is not None
        program.save(str(path), external_data=False)
        exported = onnx.load(str(path))
        if gemm_to_matmul(exported):
            onnx.save(exported, str(path))
    except Exception as exc:  # the exporter raises many unrelated types
        raise UnsupportedModelError(f"{failure}: {type(exc).__name__}: {exc}") from exc


def gemm_to_matmul(model: onnx.ModelProto) -> bool:
    """Rewrite Gemm with a stored weight as MatMul + Add, in place; True if anything changed.

    Exporters emit Gemm for a Linear on 2-D inputs (classifier heads, MLPs), but ONNX
    Runtime has no integer Gemm and weight quantizers look for MatMul; the rewrite is exact.
    """
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    nodes: list[onnx.NodeProto] = []
    changed = False
    transposed: set[str] = set()
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
        weight = node.input[1] if node.op_type == "Gemm" and len(node.input) > 1 else ""
        if not (plain and not attrs.get("transA", 0) and weight in inits and uses[weight] == 1):
            nodes.append(node)
            continue
        if attrs.get("transB", 0):
            init = inits[weight]
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).T.copy(), weight))
            transposed.add(weight)
        has_bias = len(node.input) > 2 and node.input[2] != ""
        product = node.output[0] + "_matmul" if has_bias else node.output[0]
        nodes.append(
            onnx.helper.make_node(
                "MatMul", [node.input[0], weight], [product], name=node.name + "_MatMul"
            )
        )
        if has_bias:
            nodes.append(
                onnx.helper.make_node(
                    "Add", [product, node.input[2]], [node.output[0]], name=node.name + "_Add"
                )
            )
        changed = True
    if changed:
        del graph.node[:]
        graph.node.extend(nodes)
        # Recorded shapes of transposed weights are stale; shape inference recomputes them.
        stale = [v for v in graph.value_info if v.name in transposed]
        for value in stale:
            graph.value_info.remove(value)
    return changed


def _count_nonzero(arr: np.ndarray, zero_point: onnx.TensorProto | None) -> int:
    """Weights stored as uint8 hold their zero at the zero point, not at 0."""
    if zero_point is None:
        return int(np.count_nonzero(arr))
    zp = numpy_helper.to_array(zero_point)
    if zp.size > 1 and arr.ndim == 2 and zp.size != arr.shape[-1] and zp.size == arr.shape[0]:
        zp = zp.reshape(-1, 1)  # per-row zero points (embedding tables)
    try:
        return int(np.count_nonzero(arr != zp))
    except ValueError:  # a layout we do not know: count raw values
        return int(np.count_nonzero(arr))


def onnx_parameter_stats(path: Path) -> dict[str, Any]:
    model = onnx.load(str(path), load_external_data=True)
    params = 0
    nonzero = 0
    dtypes: dict[str, int] = {}
    inits = {i.name: i for i in model.graph.initializer}
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        # Quantization scales and zero points are bookkeeping, not parameters.
        if arr.size <= 1 or init.name.endswith(("_scale", "_zero_point")):
            continue
        params += int(arr.size)
        nonzero += _count_nonzero(
            arr, inits.get(init.name.removesuffix("_quantized") + "_zero_point")
        )
        key = str(arr.dtype)
        dtypes[key] = dtypes.get(key, 0) + int(arr.size)
    return {"parameters": params, "nonzero_parameters": nonzero, "dtypes": dtypes}


def _external_location(tensor: onnx.TensorProto) -> str | None:
    if tensor.data_location != onnx.TensorProto.EXTERNAL:
        return None
    entries = {e.key: e.value for e in tensor.external_data}
    return entries.get("location", "")


def _all_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    # Initializers, sparse initializers and Constant-node attributes may all point outside.
    from onnx.external_data_helper import _get_all_tensors

    return list(_get_all_tensors(model))


def check_external_data(model: onnx.ModelProto, folder: Path) -> list[str]:
    """Every external data file must be a regular file inside ``folder`` and cover its tensors.

    Returns the relative file names used. An ONNX file is untrusted: a location like
    ``../../etc/passwd`` or an absolute path would read another file when loaded.
    """
    root = folder.resolve()
    sizes: dict[str, int] = {}
    for tensor in _all_tensors(model):
        location = _external_location(tensor)
        if location is None:
            continue
        rel = Path(location)
        if not location or rel.is_absolute() or ".." in rel.parts or location.startswith("\\"):
            raise InvalidModelError(
                f"tensor {tensor.name!r} points to external data {location!r} outside the "
                "model's folder; external data files must sit beside the .onnx file"
            )
        candidate = folder / rel
        if candidate.is_symlink() or root not in candidate.resolve().parents:
            raise InvalidModelError(
                f"external data {location!r} of tensor {tensor.name!r} is a link or "
                "escapes the model's folder"
            )
        if not candidate.is_file():
            raise InvalidModelError(
                f"external data file {location!r} of tensor {tensor.name!r} is missing"
            )
        entries = {e.key: e.value for e in tensor.external_data}
        try:
            end = int(entries.get("offset", 0)) + int(entries.get("length", 0))
        except ValueError as exc:
            raise InvalidModelError(f"tensor {tensor.name!r} has a malformed offset") from exc
        size = sizes.setdefault(location, candidate.stat().st_size)
        if end > size:
            raise InvalidModelError(
                f"external data file {location!r} is truncated: tensor {tensor.name!r} needs "
                f"bytes up to {end}, the file has {size}"
            )
    return sorted(sizes)


def read_onnx_header(path: Path) -> onnx.ModelProto:
    """Parse the graph without loading external data; refuse malformed or unsafe files."""
    from google.protobuf.message import DecodeError

    if not path.is_file() or path.stat().st_size == 0:
        raise InvalidModelError(f"{path.name} is empty or missing")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError) as exc:
        raise InvalidModelError(f"{path.name} is not a valid ONNX model: {exc}") from exc
    # Locations are vetted before the checker (or anything else) follows them.
    check_external_data(model, path.parent)
    try:
        # Given a path, the checker resolves external data beside the model, not in the cwd.
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, ValueError, OSError) as exc:
        raise InvalidModelError(f"{path.name} is not a valid ONNX model: {exc}") from exc
    if not model.graph.node:
        raise InvalidModelError(f"{path.name} holds an empty ONNX graph")
    return model


def _value_spec(value: onnx.ValueInfoProto) -> dict[str, Any]:
    if len(value.name) > NAME_CHARS:
        raise InvalidModelError(f"an input or output name is longer than {NAME_CHARS} characters")
    tensor = value.type.tensor_type
    shape: list[int | str | None] = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value"):
            shape.append(int(dim.dim_value))
        else:
            shape.append(bounded(dim.dim_param, NAME_CHARS) or None)
    try:
        dtype = str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)))
    except (KeyError, TypeError, ValueError):
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
    return {"name": value.name, "shape": shape, "dtype": dtype}


def onnx_inputs(model: onnx.ModelProto) -> list[dict[str, Any]]:
    initializers = {i.name for i in model.graph.initializer}
    return [_value_spec(v) for v in model.graph.input if v.name not in initializers]


def inspect_onnx(path: Path) -> dict[str, Any]:
    model = read_onnx_header(path)
    dtypes: dict[str, int] = {}
    for init in model.graph.initializer:
        count = 1
        for d in init.dims:
            count *= int(d)
        try:
            key = str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)))
        except (KeyError, TypeError, ValueError):
            key = onnx.TensorProto.DataType.Name(init.data_type).lower()
        dtypes[key] = dtypes.get(key, 0) + count
    external = check_external_data(model, path.parent)
    return {
        "format": "onnx",
        "architecture": bounded(model.graph.name) or "onnx graph",
        "opsets": {bounded(i.domain) or "ai.onnx": int(i.version) for i in model.opset_import},
        "producer": bounded(model.producer_name),
        "parameters": sum(dtypes.values()),
        "dtypes": dtypes,
        "weight_files": [path.name, *external],
        "weight_bytes": path.stat().st_size
        + sum((path.parent / name).stat().st_size for name in external),
        "inputs": onnx_inputs(model),
        "outputs": [_value_spec(v) for v in model.graph.output],
        "weight_ops": weight_ops(model),
    }


def weight_ops(model: onnx.ModelProto) -> dict[str, int]:
    """Conv/ConvTranspose/MatMul/Gemm nodes with a stored weight, by op type: which
    quantization schemes have anything to act on."""
    stored = {i.name for i in model.graph.initializer} | {
        o for n in model.graph.node if n.op_type == "Constant" for o in n.output
    }
    counts: dict[str, int] = {}
    for node in model.graph.node:
        weighted = node.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm")
        if weighted and len(node.input) > 1 and node.input[1] in stored:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def strip_debug_info(model: onnx.ModelProto) -> None:
    """Drop exporter bookkeeping (stack traces, original node names) that only weighs."""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        del value.metadata_props[:]
        value.doc_string = ""
    for init in model.graph.initializer:
        del init.metadata_props[:]
    model.graph.doc_string = ""
    del model.metadata_props[:]


# Protobuf refuses messages over 2 GiB; larger models keep their weights in a side file.
_SINGLE_FILE_LIMIT = 1_800_000_000


def save_onnx_artifact(src: Path, dest_dir: Path, *, name: str = "model.onnx") -> list[Path]:
    """Write ``src`` (and its external data) into ``dest_dir`` as a self-contained model."""
    model = onnx.load(str(src), load_external_data=True)
    strip_debug_info(model)
    dest = dest_dir / name
    if model.ByteSize() < _SINGLE_FILE_LIMIT:
        onnx.save(model, str(dest))
        return [dest]
    data_name = name + ".data"
    onnx.save(model, str(dest), save_as_external_data=True, location=data_name)
    return [dest, dest_dir / data_name]


def onnx_file_bytes(path: Path) -> int:
    """Bytes of an .onnx file plus the external data files it uses."""
    model = onnx.load(str(path), load_external_data=False)
    return path.stat().st_size + sum(
        (path.parent / n).stat().st_size for n in check_external_data(model, path.parent)
    )
