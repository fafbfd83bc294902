"""Generated inputs of a shape the network can take, for checks run without the user's data.

Inspection has no data, so it generates inputs of the declared shapes. Giving a dynamic height
or width 8, as other dynamic dimensions get, is a shape many convolutional networks cannot take:
a stride-32 backbone whose upsampled maps are concatenated or added to earlier ones needs sizes
that are multiples of its stride. Image-like inputs therefore try standard sizes, all multiples
of 32 (the usual total stride of classification and detection backbones; 224 for heads fixed at
that size), cheapest first, and the first one ONNX Runtime runs is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compressor.formats.bounded_run import RUN_LIMIT_S, RunTimedOut, run_bounded

IMAGE_SIZES = (32, 64, 224, 256, 320)
# What other dynamic dimensions (sequence lengths, feature counts) get, as before.
OTHER_DIM = 8
CHANNELS = (1, 3)
ERROR_CHARS = 200
# ORT's prefix ("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : ") and the C++ source line and
# function of a failed check: of no use to the user, and long.
_NOISE = re.compile(
    r"\[ONNXRuntimeError\] : \d+ : |\S+\.(?:h|cc|cpp):\d+(?: [\w:<>]+ [\w:<>~]+\([^)]*\))?"
)

Shapes = dict[str, list[int]]


@dataclass(frozen=True)
class Probe:
    """The first generated inputs ONNX Runtime ran (None when none did), and why others failed."""

    feed: dict[str, np.ndarray] | None
    shapes: Shapes | None
    failures: list[dict[str, Any]] = field(default_factory=list)

    def tried(self) -> str:
        """The failed shapes and the last error, for a reason shown to the user (each error
        stays in ``failures``)."""
        if not self.failures:
            return "no shape was tried"
        shapes = "; ".join(describe(f["shape"]) for f in self.failures)
        return f"tried {shapes}; the last failed with: {self.failures[-1]['error']}"


def describe(shapes: Shapes | None) -> str:
    if not shapes:
        return "(no inputs)"
    return ", ".join(f"{name} {list(shape)}" for name, shape in shapes.items())


def one_line(text: str, limit: int = ERROR_CHARS) -> str:
    """An error on one bounded line; ONNX Runtime puts the cause at the end, so both ends stay."""
    flat = " ".join(_NOISE.sub("", text).split())
    if len(flat) <= limit:
        return flat
    half = (limit - 3) // 2
    return f"{flat[:half]} … {flat[-half:]}"


def _dynamic(dim: Any) -> bool:
    return not (isinstance(dim, int) and dim > 0)


def spatial_axes(shape: list[Any]) -> tuple[int, int] | None:
    """Height and width axes of an image-like input (rank 4, NCHW or NHWC, told apart by which
    axis holds 1 or 3 channels) when at least one of them is dynamic."""
    if len(shape) != 4:
        return None
    for channel, axes in ((1, (2, 3)), (3, (1, 2))):
        if shape[channel] in CHANNELS and any(_dynamic(shape[a]) for a in axes):
            return axes
    return None


def _sized(spec: dict[str, Any], size: int | None) -> dict[str, Any]:
    shape = list(spec["shape"])
    axes = spatial_axes(shape) if size is not None else None
    fixed = [
        size if axes and i in axes and _dynamic(d) else (OTHER_DIM if _dynamic(d) else d)
        for i, d in enumerate(shape)
    ]
    return {**spec, "shape": fixed}


def candidate_specs(specs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Input specs with every dimension fixed (the batch still set by the caller), one list per
    size to try; a single one when no input is image-like with a dynamic height or width."""
    if not any(spatial_axes(list(s["shape"])) for s in specs):
        return [[_sized(s, None) for s in specs]]
    return [[_sized(s, size) for s in specs] for size in IMAGE_SIZES]


def probe_inputs(
    path: Path, specs: list[dict[str, Any]], *, rows: int, run_limit_s: float = RUN_LIMIT_S
) -> Probe:
    """Generated inputs of ``rows`` rows, at the first candidate shape ONNX Runtime runs. A
    run over ``run_limit_s`` is stopped, and no other shape is tried."""
    import onnxruntime as ort

    from compressor.inputs import generated_tensor_inputs

    failures: list[dict[str, Any]] = []
    session: Any = None
    for specs_at_size in candidate_specs(specs):
        feed = generated_tensor_inputs(specs_at_size, count=rows, seed=0).tensors
        try:
            if session is None:
                session = ort.InferenceSession(
                    str(path), _quiet(ort), providers=["CPUExecutionProvider"]
                )
            wanted = {i.name: feed[i.name] for i in session.get_inputs()}
            run_bounded(session, wanted, seconds=run_limit_s)
        except Exception as exc:  # ORT's own types; a shape the graph cannot take, or no graph
            failures.append({"shape": _shapes(feed), "error": one_line(str(exc))})
            if session is None or isinstance(exc, RunTimedOut):
                break  # the graph does not load, or runs on and on: no other shape will do
            continue
        return Probe(feed, _shapes(feed), failures)
    return Probe(None, None, failures)


def _quiet(ort: Any) -> Any:
    """Failures are expected and recorded, so ORT does not log them too."""
    options = ort.SessionOptions()
    options.log_severity_level = 4
    return options


def _shapes(feed: dict[str, np.ndarray]) -> Shapes:
    return {name: [int(d) for d in value.shape] for name, value in feed.items()}
