"""Convolutional nets uploaded as ONNX: our int8_static against ONNX Runtime's own tools.

Peers, as a user would run them on the same upload and the same calibration images:
``quantize_static`` (QDQ, per-channel, the graph first moved to opset 13 by hand, which
per-channel QDQ needs) and ``quantize_dynamic``. Everything is judged on the held-out digits
that neither training nor calibration saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Row, best_of, mb, stripped_copy
from compressor.inputs import EvalInputs
from compressor.measure.settings import MeasureSettings
from compressor.techniques.quantization import QuantizationConfig
from compressor.techniques.quantization import onnx_schemes as quant_onnx
from scripts.conv_digits import INPUT, export, train

CALIBRATION_IMAGES = 256
BATCHES = (1, 32)
GOAL = (
    "bytes <= best peer; p50 <= best peer at batch 1 and 32; top-1 agreement and accuracy "
    ">= best peer's, on held-out images"
)
MODELS = {"residual": "residual CNN with BatchNorm", "mobilenet": "mobilenet_v3_small (32x32)"}


class _Reader:
    def __init__(self, x: np.ndarray) -> None:
        self._batches = [{INPUT: x[i : i + 8]} for i in range(0, len(x), 8)]
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        self._i += 1
        return self._batches[self._i - 1] if self._i <= len(self._batches) else None

    def rewind(self) -> None:
        self._i = 0


def _peers(upload: Path, calibration: np.ndarray, work: Path) -> dict[str, Path]:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    opset13 = work / "user_opset13.onnx"
    onnx.save(version_converter.convert_version(onnx.load(str(upload)), 13), str(opset13))
    static = work / "ort_static.onnx"
    quantize_static(
        str(opset13),
        str(static),
        _Reader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    dynamic = work / "ort_dynamic.onnx"
    quantize_dynamic(str(upload), str(dynamic), weight_type=QuantType.QInt8)
    return {"ORT quantize_static": static, "ORT quantize_dynamic": dynamic}


def _model_row(family: str, work: Path, settings: MeasureSettings, rounds: int) -> Row:
    work.mkdir(parents=True, exist_ok=True)
    trained = train(family)
    x_train, x_eval = trained.x_train, trained.x_eval
    calibration = x_train[:CALIBRATION_IMAGES]
    upload = export(trained.model, x_eval, work / "upload.onnx")
    ours = work / "ours_int8_static.onnx"
    report = quant_onnx.int8_static(
        QuantizationConfig(scheme="int8_static"),
        source=upload,
        out=ours,
        calibration=EvalInputs({INPUT: calibration}, "training split"),
        batch_size=32,
    )
    models = {"fp32": upload, "ours int8_static": ours, **_peers(upload, calibration, work)}
    models = {k: stripped_copy(p, work / f"stripped_{p.name}") for k, p in models.items()}
    held_out = EvalInputs({INPUT: x_eval}, "held-out digits")
    timed = {b: best_of(rounds, models, held_out, b, settings) for b in BATCHES}
    ref = timed[1]["fp32"].outputs
    stats: dict[str, dict[str, float]] = {}
    for name, path in models.items():
        out = timed[1][name].outputs
        stats[name] = {
            "bytes": float(path.stat().st_size),
            "p50_b1": timed[1][name].latency_p50_ms,
            "p50_b32": timed[32][name].latency_p50_ms,
            "agreement": float((out.argmax(-1) == ref.argmax(-1)).mean()),
            "accuracy": float((out.argmax(-1) == trained.y_eval).mean()),
        }
    return _verdict(MODELS[family], stats, report)


def _verdict(title: str, stats: dict[str, dict[str, float]], report: dict[str, Any]) -> Row:
    peers = [k for k in stats if k.startswith("ORT")]
    ours = stats["ours int8_static"]
    best = {k: (min if k.startswith(("bytes", "p50")) else max) for k in ours}
    short = [
        k for k, pick in best.items() if ours[k] != pick(ours[k], pick(stats[p][k] for p in peers))
    ]
    figures = {
        name: (
            f"{mb(s['bytes'])}, p50 {s['p50_b1']:.3f} ms (b1) / {s['p50_b32']:.2f} ms (b32), "
            f"top-1 agreement {s['agreement']:.4f}, accuracy {s['accuracy']:.4f}"
        )
        for name, s in stats.items()
    }
    kept = report["layers_kept_in_float"]
    notes = (
        f"ours chose {report['calibration_method']} calibration, {report['format']} form, "
        f"{len(kept)} layer(s) kept float ({', '.join(kept) or 'none'}); opset "
        f"{report['graph_preparation']['opset']}"
    )
    versus = ", ".join(
        f"{k} {ours[k]:.4g} vs best peer {best[k](stats[p][k] for p in peers):.4g}" for k in ours
    )
    reached = versus + (f" (short on: {', '.join(short)})" if short else "")
    return Row(f"{title}, int8", figures, GOAL, not short, reached, notes)


def cnn_int8(work: Path, settings: MeasureSettings, rounds: int) -> list[Row]:
    return [_model_row(family, work / family, settings, rounds) for family in MODELS]
