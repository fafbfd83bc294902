"""Whether SmoothQuant pays on this model, judged on calibration rows it was not fitted on.

Smoothing helps where a few activation channels dwarf the rest, and costs where it does not:
its per-channel maxima come from the calibration rows, its weights rows grow, and a Mul per
activation tensor runs at every inference. So both graphs are built, the smoothed one fitted on
the calibration rows outside a held-out slice, and that slice decides: the graph whose worst
held-out row lies nearer the float output ships, and a tie goes to the plain graph, which runs
faster. What was judged is what ships (no refit on the judged rows).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from compressor.formats.onnx_shapes import Feed, graph_batches
from compressor.inputs import EvalInputs
from compressor.measure.fidelity import fidelity
from compressor.measure.session_timing import cpu_session
from compressor.techniques.quantization.conv import split_calibration
from compressor.techniques.quantization.smoothing import smooth_activations

METHOD = "SmoothQuant-style per-channel activation scaling (outlier channels only)"


@dataclass(frozen=True)
class SmoothingChoice:
    built: Any  # what ``build`` returned for the graph that shipped
    details: dict[str, Any]


def _first_outputs(source: Path | onnx.ModelProto, batches: list[Feed], rows: int) -> np.ndarray:
    """The graph's first output on ``batches`` (cut by the float graph, whose inputs every
    quantized one shares), trimmed to ``rows`` where a fixed batch padded the last one."""
    session = cpu_session(source, threads=0)
    names = {i.name for i in session.get_inputs()}
    outs = [session.run(None, {k: v for k, v in b.items() if k in names})[0] for b in batches]
    return np.concatenate(outs)[:rows].astype(np.float32)


def _min_cosine(reference: np.ndarray, candidate: np.ndarray, judge: EvalInputs) -> float:
    mask = judge.tensors.get("attention_mask")
    return float(fidelity(reference, candidate, attention_mask=mask)["cosine_min"])


def _why(applied: bool) -> str:
    if applied:
        return "the smoothed int8 graph's worst held-out calibration row lies nearer the float one"
    return (
        "smoothing did not bring the worst held-out calibration row nearer the float output, "
        "and its Mul nodes cost time at every inference"
    )


def smoothed_or_plain(
    model: onnx.ModelProto,
    calibration: EvalInputs,
    *,
    alpha: float,
    skip: set[str],
    build: Callable[[onnx.ModelProto, Path], Any],
    out: Path,
) -> SmoothingChoice:
    """Quantize ``model`` to ``out`` with ``build(graph, path)``, smoothed or not, whichever the
    held-out calibration rows judge nearer the float graph (see the module's docstring)."""
    if alpha <= 0:
        return SmoothingChoice(build(model, out), {"smoothing": None})
    fit, judge, split_note = split_calibration(calibration)
    trial = smooth_activations(model, fit, alpha=alpha, skip=skip)
    if trial.groups == 0:
        return SmoothingChoice(build(model, out), {"smoothing": None})
    batches = graph_batches(model, judge, 8)
    reference = _first_outputs(model, batches, judge.rows)
    scores: dict[str, float] = {}
    built: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix="smoothing-") as tmp:
        for name, graph in (("plain", model), ("smoothed", trial.model)):
            path = Path(tmp) / f"{name}.onnx"
            # ORT's quantizers edit the graph they are given: each build gets its own copy.
            built[name] = build(onnx.ModelProto.FromString(graph.SerializeToString()), path)
            outputs = _first_outputs(path, batches, judge.rows)
            scores[name] = _min_cosine(reference, outputs, judge)
        applied = scores["smoothed"] > scores["plain"]
        chosen = "smoothed" if applied else "plain"
        shutil.move(str(Path(tmp) / f"{chosen}.onnx"), out)
    details: dict[str, Any] = {
        "method": METHOD,
        "alpha": alpha,
        "applied": applied,
        "held_out": split_note,
        "held_out_min_cosine": {k: round(v, 5) for k, v in scores.items()},
        "why": _why(applied),
    }
    if applied:
        details.update(activation_tensors=trial.groups, matmuls=len(trial.matmuls))
    return SmoothingChoice(built[chosen], {"smoothing": details})
