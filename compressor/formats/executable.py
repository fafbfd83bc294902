"""TorchScript and torch.export (.pt2) uploads: recognised by their zip layout, converted to ONNX.

Loading either format can execute code (TorchScript runs its own code; the older .pt2 layout
unpickles its state dict), so they are only ever loaded inside compressor.sandbox. The service
itself touches nothing but the resulting ONNX file, which it checks before anyone uses it.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from compressor.errors import InvalidModelError
from compressor.formats.bounds import NAME_CHARS
from compressor.sandbox import SandboxError, SandboxLimits, run_sandboxed

ExecutableKind = Literal["torchscript", "torch_export"]

_LABELS = {"torchscript": "TorchScript", "torch_export": "torch.export (.pt2)"}
# load_pt2 warns about any other suffix; the name is ours, never the uploader's
_SANDBOX_NAMES = {"torchscript": "model.pt", "torch_export": "model.pt2"}
_ONNX_NAME = "model.onnx"


def detect_executable(upload: Path) -> ExecutableKind | Literal["pickle"] | None:
    """Which executable PyTorch format `upload` is, from its bytes and zip listing only."""
    try:
        with upload.open("rb") as fh:
            head = fh.read(4)
        if head[:1] == b"\x80":
            return "pickle"
        if head != b"PK\x03\x04":
            return None
        with zipfile.ZipFile(upload) as zf:
            members = [PurePosixPath(n).parts for n in zf.namelist()]
    except (OSError, zipfile.BadZipFile):
        return None
    # torch.save and friends put everything under one top folder ("archive/..."); the old
    # torch.export layout (before torch 2.8) has its files at the top.
    inner = [p[1:] for p in members if len(p) > 1]
    if any(
        p == ("archive_format",) or p[:1] == ("models",) and p[-1].endswith(".json") for p in inner
    ) or any(p[0].startswith("serialized_exported_program") for p in members if len(p) == 1):
        return "torch_export"
    if any(p[:1] == ("code",) or p == ("constants.pkl",) for p in inner):
        return "torchscript"
    if any(p == ("data.pkl",) for p in inner):
        return "pickle"
    return None


def convert_executable_to_onnx(
    upload: Path,
    out_dir: Path,
    *,
    kind: ExecutableKind,
    workdir: Path,
    hidden: Sequence[Path],
    limits: SandboxLimits,
) -> dict[str, Any]:
    """Load `upload` in the sandbox, export it to out_dir/model.onnx there, and check the result
    in a second sandbox (running a hostile graph can hang or crash as well).

    Returns {"source_format", "inputs": [{"name", "shape", "dtype"}], "opset", "dynamic_batch"}
    (a shape holds None for a symbolic dimension; dynamic_batch: every input's first dimension
    is symbolic, so the model takes any batch size). Raises InvalidModelError with one of a
    fixed few reasons on any failure: the loaded code could have put anything it read into an
    error of its own.
    """
    label = _LABELS[kind]
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(upload, workdir / _SANDBOX_NAMES[kind])
    try:
        run_sandboxed(
            "compressor.formats.executable:export_in_sandbox",
            {"kind": kind, "model": _SANDBOX_NAMES[kind], "onnx": _ONNX_NAME},
            workdir=workdir,
            hidden=hidden,
            limits=limits,
            preload=("torch", "onnx"),
        )
    except SandboxError as exc:
        reason = _HINTS.get(exc.code or "", str(exc))
        raise InvalidModelError(f"could not convert the {label} model to ONNX: {reason}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / _ONNX_NAME
    _take_regular_file(workdir / _ONNX_NAME, dest, label)
    inputs, opset = check_converted_onnx(dest, label, workdir=workdir, hidden=hidden, limits=limits)
    batched = [i["shape"] for i in inputs if i["shape"]]
    dynamic = bool(batched) and all(shape[0] is None for shape in batched)
    return {"source_format": kind, "inputs": inputs, "opset": opset, "dynamic_batch": dynamic}


def check_converted_onnx(
    path: Path, label: str, *, workdir: Path, hidden: Sequence[Path], limits: SandboxLimits
) -> tuple[list[dict[str, Any]], int]:
    """Check the ONNX file and run it once on zeros, in the sandbox and within its limits;
    return its inputs and opset. workdir is emptied first: the loader's leftovers stay out."""
    shutil.rmtree(workdir)
    workdir.mkdir()
    shutil.copyfile(path, workdir / _ONNX_NAME)
    try:
        found = run_sandboxed(
            "compressor.formats.executable:check_in_sandbox",
            {"onnx": _ONNX_NAME},
            workdir=workdir,
            hidden=hidden,
            limits=limits,
            preload=("numpy", "onnx", "onnxruntime"),
        )
    except SandboxError as exc:
        reason = _HINTS.get(exc.code or "", str(exc).replace("the model's loader", "running it"))
        raise InvalidModelError(
            f"the ONNX model converted from the {label} upload does not work: {reason}"
        ) from exc
    return list(found["inputs"]), int(found["opset"])


def _take_regular_file(src: Path, dest: Path, label: str) -> None:
    """Copy the sandbox's output without following links: a link it planted could otherwise
    point at a file only the service can see (another upload) and hand that out instead."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise InvalidModelError(f"converting the {label} model produced no ONNX file") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise InvalidModelError(f"converting the {label} model produced no regular ONNX file")
        with dest.open("wb") as out:
            shutil.copyfileobj(fh, out, 1024 * 1024)


class _Refusal(ValueError):
    """Raised by our own code in the sandbox; only its code crosses back, naming a hint."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{_HINTS[code]} {detail}".strip())  # the whole of it goes to the log
        self.sandbox_code = code


# The only reasons besides the sandbox's own that an uploader is told.
_HINTS = {
    "not_traced": "the TorchScript module has no recorded example inputs (it was made with "
    "torch.jit.script, not traced); save a traced module "
    "(torch.jit.trace(model, example_inputs).save(...)) or upload an ONNX model",
    "no_example_inputs": "the .pt2 file holds no example inputs; save it again with "
    "torch.export.save from a program exported with example inputs, or upload an ONNX model",
    "keyword_inputs": "models taking keyword inputs are not supported; upload ONNX",
    "no_tensors": "the TorchScript module returns no tensors",
    "mismatch": "the converted ONNX model does not compute what the model does; upload an "
    "ONNX model instead",
    "external_data": "it refers to external data files",
    "unknown_rank": "an input has no known rank",
    "long_name": f"an input's name is longer than {NAME_CHARS} characters",
}


def check_in_sandbox(onnx: str) -> dict[str, Any]:
    import numpy as np
    import onnx as onnx_lib
    import onnxruntime as ort
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    model = onnx_lib.load(onnx, load_external_data=False)
    if any(uses_external_data(t) for t in _get_all_tensors(model)):
        raise _Refusal("external_data")
    onnx_lib.checker.check_model(model)
    weights = {t.name for t in model.graph.initializer}
    inputs: list[dict[str, Any]] = []
    feeds: dict[str, Any] = {}
    for arg in model.graph.input:
        if arg.name in weights:
            continue
        if len(arg.name) > NAME_CHARS:
            raise _Refusal("long_name")
        tensor = arg.type.tensor_type
        if not tensor.HasField("shape"):
            raise _Refusal("unknown_rank")
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        dtype = np.dtype(onnx_lib.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        inputs.append({"name": arg.name, "shape": shape, "dtype": dtype.name})
        # 2, not 1, for a symbolic dimension: a batch size of 1 baked into the graph
        # would go unnoticed with 1
        feeds[arg.name] = np.zeros([2 if d is None else d for d in shape], dtype=dtype)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return {"inputs": inputs, "opset": int(opset)}


# ---------------------------------------------------------------------------------------------
# Runs inside the sandbox (cwd = its workdir); errors are the uploader's to read.


def export_in_sandbox(kind: str, model: str, onnx: str) -> dict[str, Any]:
    """Export with a symbolic batch dimension where the model allows it, checked with
    onnxruntime against the model itself; otherwise with the recorded shapes."""
    import torch

    if kind == "torchscript":
        # _restore_shapes re-runs the inputs recorded by torch.jit.trace, which types the graph
        module = torch.jit.load(model, map_location="cpu", _restore_shapes=True)
        args, names = _traced_inputs(module)
        dynamic = _export_torchscript(module, args, names, onnx)
    elif kind == "torch_export":
        program = torch.export.load(model)
        if not program.example_inputs:
            raise _Refusal("no_example_inputs")
        args, kwargs = program.example_inputs
        if kwargs:
            raise _Refusal("keyword_inputs")
        names = list(program.graph_signature.user_inputs)
        dynamic = _export_program(program, args, names, onnx)
    else:
        raise ValueError(f"unknown executable kind {kind!r}")
    return {"inputs": names, "dynamic_batch": dynamic}


_ATOL = 1e-4
_RTOL = 1e-3
_OTHER_BATCHES = (3, -1)  # the other batch sizes tried: the recorded one plus these


def _export_torchscript(module: Any, args: tuple[Any, ...], names: list[str], onnx: str) -> bool:
    import torch

    torch.manual_seed(0)
    args = tuple(_example_like(a) for a in args)
    with torch.no_grad():
        expected = _tensors(module(*args))
    if not expected:
        raise _Refusal("no_tensors")
    outputs = ["output"] if len(expected) == 1 else [f"output_{i}" for i in range(len(expected))]
    axes = {n: {0: "batch"} for n, a in zip(names, args, strict=True) if a.dim() >= 1}
    axes |= {n: {0: "batch"} for n, e in zip(outputs, expected, strict=True) if e.ndim >= 1}

    def export(dynamic_axes: dict[str, dict[int, str]] | None) -> None:
        torch.onnx.export(
            module,
            args,
            onnx,
            input_names=names,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )

    if axes:
        export(axes)
        if _matches(onnx, names, args, expected) is None and _runs_on_other_batch(
            onnx, names, args, module
        ):
            return True
    # A trace that baked its batch size in (x.view(8, -1)): the recorded shapes only.
    export(None)
    _require_match(onnx, names, args, expected, lambda: _tensors(module(*args)))
    return False


def _export_program(program: Any, args: tuple[Any, ...], names: list[str], onnx: str) -> bool:
    """The program's own symbolic dimensions are kept (torch.export.Dim); checked here."""
    import torch

    run = program.module()
    with torch.no_grad():
        expected = _tensors(run(*args))
    torch.onnx.export(program, args, onnx, input_names=names, external_data=False)
    _require_match(onnx, names, args, expected, lambda: _tensors(run(*args)))
    symbolic = _symbolic_first_dims(onnx, names)
    if not symbolic or not all(symbolic.values()):
        return False
    if _runs_on_other_batch(onnx, names, args, run):
        return True
    _pin_input_shapes(onnx, names, args)  # an ONNX that claims more than it can do: pinned
    _require_match(onnx, names, args, expected, lambda: expected)
    return False


def _example_like(value: Any) -> Any:
    """Random values of the recorded shape for floats (zeros compare poorly); zeros for
    integers, which may be indices that must stay in range."""
    import torch

    if value.is_floating_point():
        return torch.rand(value.shape, dtype=value.dtype)
    return value


def _tensors(value: Any) -> list[Any]:
    import torch
    from torch.utils._pytree import tree_leaves

    return [t.detach().numpy() for t in tree_leaves(value) if isinstance(t, torch.Tensor)]


def _ort_run(onnx: str, names: list[str], args: tuple[Any, ...]) -> list[Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    return list(session.run(None, {n: a.numpy() for n, a in zip(names, args, strict=True)}))


def _difference(got: list[Any], expected: list[Any]) -> str | None:
    """None when the outputs agree, else what differs."""
    import numpy as np

    if len(got) != len(expected):
        return f"{len(got)} outputs instead of {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g.shape != e.shape:
            return f"output {i} has shape {list(g.shape)} instead of {list(e.shape)}"
        if not np.allclose(g, e, atol=_ATOL, rtol=_RTOL, equal_nan=True):
            worst = float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64))))
            return f"output {i} differs by up to {worst:.3g}"
    return None


def _matches(onnx: str, names: list[str], args: tuple[Any, ...], expected: list[Any]) -> str | None:
    try:
        return _difference(_ort_run(onnx, names, args), expected)
    except Exception as exc:  # onnxruntime raises its own kinds
        return str(exc) or type(exc).__name__


def _require_match(
    onnx: str,
    names: list[str],
    args: tuple[Any, ...],
    expected: list[Any],
    again: Callable[[], list[Any]],
) -> None:
    """The ONNX model must compute what the model does on the recorded inputs, unless the model
    itself does not (dropout left on, random sampling): then there is nothing to compare."""
    import numpy as np

    problem = _matches(onnx, names, args, expected)
    if problem is None:
        return
    second = again()
    deterministic = len(second) == len(expected) and all(
        a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        for a, b in zip(second, expected, strict=True)
    )
    if deterministic:
        raise _Refusal("mismatch", problem)


def _runs_on_other_batch(onnx: str, names: list[str], args: tuple[Any, ...], model: Any) -> bool:
    """Whether the ONNX model, fed a batch of another size (rows of the recorded inputs,
    repeated), computes what the model itself does on it. A larger batch is tried first, then a
    smaller one, for programs whose batch dimension has an upper bound."""
    import torch

    symbolic = _symbolic_first_dims(onnx, names)
    for delta in _OTHER_BATCHES:
        other = []
        for name, arg in zip(names, args, strict=True):
            if symbolic.get(name) and arg.dim() >= 1:
                size = arg.shape[0] + delta
                if arg.shape[0] < 1 or size < 1:
                    break
                arg = arg[torch.arange(size) % arg.shape[0]]
            other.append(arg)
        else:
            try:
                with torch.no_grad():
                    expected = _tensors(model(*other))
            except Exception:  # the model itself does not take this batch size
                continue
            return _matches(onnx, names, tuple(other), expected) is None
    return False


def _symbolic_first_dims(onnx_path: str, names: list[str]) -> dict[str, bool]:
    """For each input of rank >= 1: whether its first dimension is symbolic in the ONNX file."""
    import onnx

    model = onnx.load(onnx_path, load_external_data=False)
    found = {}
    for arg in model.graph.input:
        dims = arg.type.tensor_type.shape.dim
        if arg.name in names and dims:
            found[arg.name] = not dims[0].HasField("dim_value")
    return found


def _pin_input_shapes(onnx_path: str, names: list[str], args: tuple[Any, ...]) -> None:
    import onnx

    model = onnx.load(onnx_path, load_external_data=False)
    sizes = {n: a.shape for n, a in zip(names, args, strict=True)}
    for arg in model.graph.input:
        if arg.name in sizes:
            for dim, size in zip(arg.type.tensor_type.shape.dim, sizes[arg.name], strict=False):
                dim.dim_value = int(size)
    onnx.save(model, onnx_path)


def _traced_inputs(module: Any) -> tuple[tuple[Any, ...], list[str]]:
    import torch

    names = [a.name for a in module.forward.schema.arguments][1:]  # skip self
    values = list(module.forward.graph.inputs())[1:]
    args = []
    for value in values:
        typ = value.type()
        sizes = typ.sizes() if isinstance(typ, torch.TensorType) else None
        if sizes is None or typ.dtype() is None:
            raise _Refusal("not_traced")
        args.append(torch.zeros(sizes, dtype=typ.dtype()))
    return tuple(args), names
