"""ONNX export from torch and read-only inspection of ONNX files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from compressor.errors import UnsupportedModelError


class _FirstOutput(torch.nn.Module):
    """Hugging Face models return dataclasses; ONNX needs plain tensors in a fixed order."""

    def __init__(self, model: torch.nn.Module, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        out = self.model(**dict(zip(self.input_names, args, strict=True)))
        return out[0] if isinstance(out, tuple | list) else next(iter(out.values()))


def export_onnx(
    model: torch.nn.Module, example: dict[str, np.ndarray], path: Path, *, output_name: str
) -> None:
    names = list(example)
    args = tuple(torch.from_numpy(example[n]) for n in names)
    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("sequence")
    dynamic = {"args": tuple({0: batch, 1: seq} if a.ndim >= 2 else {0: batch} for a in args)}
    wrapper = _FirstOutput(model, names).eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                args,
                input_names=names,
                output_names=[output_name],
                dynamic_shapes=dynamic,
                dynamo=True,
                verbose=False,
            )
        assert program is not None
        program.save(str(path), external_data=False)
    except Exception as exc:  # the exporter raises many unrelated types
        raise UnsupportedModelError(f"export to ONNX failed: {type(exc).__name__}: {exc}") from exc


def onnx_parameter_stats(path: Path) -> dict[str, Any]:
    model = onnx.load(str(path), load_external_data=True)
    params = 0
    nonzero = 0
    dtypes: dict[str, int] = {}
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        # Quantization scales and zero points are bookkeeping, not parameters.
        if arr.size <= 1 or init.name.endswith(("_scale", "_zero_point")):
            continue
        params += int(arr.size)
        nonzero += int(np.count_nonzero(arr))
        key = str(arr.dtype)
        dtypes[key] = dtypes.get(key, 0) + int(arr.size)
    return {"parameters": params, "nonzero_parameters": nonzero, "dtypes": dtypes}
