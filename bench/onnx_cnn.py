"""Torch-stage techniques on models users bring: a residual CNN uploaded as ONNX, and
torchvision's ResNet-18 named by reference.

The residual CNN (scripts/conv_digits.py, BatchNorm kept as nodes as other exporters leave it)
is trained on the digits' training split; healing and distillation train on that split,
calibration uses 256 of its images, accuracy is scored on the held-out split nothing else saw.
ResNet-18 is randomly initialised: its fidelity to the original is reported as measured,
with no accuracy goal.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from bench.common import (
    Row,
    best_of,
    engine_says,
    guarded,
    mb,
    not_available,
    points,
    stripped_copy,
)
from bench.digits import heal
from bench.peers import PEER_GOAL, add_peer, peer_name, peer_says, versus
from compressor.inputs import EvalInputs
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import CompressionResult, compress_model
from compressor.recipe import Recipe
from compressor.report import CompressionReport
from compressor.target import Target
from scripts.conv_digits import INPUT, export, images, train

TARGET = Target(device="cpu", runtime="onnxruntime", batch_size=64)
SPEEDUP = 2.0
POINTS = 1.0
GOAL = f">= {SPEEDUP:g}x faster at batch {TARGET.batch_size}, <= {POINTS:g} point accuracy lost"
CALIBRATION_IMAGES = 256
RESNET_BATCH = 8
RESNET_AMOUNT = 0.5


def _run(
    folder: Path,
    steps: list[dict[str, Any]] | Recipe,
    work: Path,
    settings: MeasureSettings,
    **data: Any,
) -> CompressionResult:
    return compress_model(
        folder,
        steps if isinstance(steps, Recipe) else Recipe.model_validate({"steps": steps}),
        target=data.pop("target", TARGET),
        workdir=work,
        settings=settings,
        **data,
    )


def _conv_channels(path: Path) -> int:
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    return sum(
        int(inits[n.input[1]].dims[0])
        for n in model.graph.node
        if n.op_type == "Conv" and n.input[1] in inits
    )


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float((outputs.argmax(-1) == labels).mean())


def residual_rows(work: Path, settings: MeasureSettings, rounds: int) -> list[Row]:
    trained = train("residual")
    upload = work / "residual-upload"
    upload.mkdir(parents=True, exist_ok=True)
    export(trained.model, trained.x_train, upload / "model.onnx")
    fp32 = stripped_copy(upload / "model.onnx", work / "residual-fp32-stripped.onnx")
    data = {
        "calibration_data": {INPUT: trained.x_train[:CALIBRATION_IMAGES]},
        "eval_data": {INPUT: trained.x_eval, "labels": trained.y_eval},
        "train_data": {INPUT: trained.x_train, "labels": trained.y_train},
    }
    held_out = EvalInputs({INPUT: trained.x_eval}, f"{len(trained.y_eval)} held-out digits")
    describe = (
        f"residual CNN (width 32, BatchNorm) trained on {len(trained.y_train)} digits, uploaded "
        f"as ONNX opset 12; calibrated on {CALIBRATION_IMAGES} training images, scored on the "
        f"{len(trained.y_eval)} held-out images"
    )
    student = {**heal(20), "student": "derived", "width": 0.5}
    plans = [
        ("structured pruning (half the channels) + heal", ["structured_pruning", "distillation"],
         [{"technique": "structured_pruning", "amount": 0.5}, heal(10)], True),
        ("distillation into a derived half-width student", ["distillation"], [student], False),
        ("low-rank factorization + heal", ["low_rank", "distillation"],
         [{"technique": "low_rank"}, heal(10)], True),
    ]  # fmt: skip
    rows = []
    for label, techniques, steps, peer in plans:
        name = f"residual CNN (ONNX upload): {label}"
        missing = not_available(name, techniques, GOAL)
        if missing:
            rows.append(missing)
            continue
        folder = work / f"residual-{len(rows)}-{techniques[0]}"
        one = partial(
            _residual_rows, name, upload, fp32, steps, folder, settings, data, held_out, rounds
        )
        rows += guarded(name, GOAL, lambda one=one, peer=peer: one(describe, peer))  # type: ignore[misc]
    return rows


def _residual_rows(
    name: str,
    upload: Path,
    fp32: Path,
    steps: list[dict[str, Any]],
    folder: Path,
    settings: MeasureSettings,
    data: dict[str, Any],
    held_out: EvalInputs,
    rounds: int,
    describe: str,
    peer: bool,
) -> list[Row]:
    """Our row, and with ``peer`` the peer's (bench/peers.py) measured in the same rounds."""
    result = _run(upload, steps, folder, settings, **dict(data))
    rep = result.compression_report
    models = {"fp32": fp32, "ours": result.artifact_dir / "model.onnx"}
    reports = {"ours": rep}
    peer_rows = (
        add_peer(
            name, steps, rep,
            lambda recipe, suffix: _run(
                upload, recipe, folder.with_name(folder.name + suffix), settings, **dict(data)
            ),
            models, reports,
        )
        if peer
        else []
    )  # fmt: skip
    runs = best_of(rounds, models, held_out, TARGET.batch_size, settings)
    labels = data["eval_data"]["labels"]
    score = {k: _residual_scored(runs, k, models[k], labels) for k in reports}
    tail = f"; {describe}; "
    row = _residual_row(name, GOAL, score["ours"], fp32, rep, "steps: "
        + ", ".join(s["technique"] for s in steps) + tail + engine_says(rep))  # fmt: skip
    row.met = score["ours"]["speedup"] >= SPEEDUP and score["ours"]["lost"] <= POINTS
    if "peer" not in score:
        return [row, *peer_rows]
    row.reached += "; " + versus(_residual_against(score["ours"], score["peer"]))
    first = reports["peer"].steps[0]
    notes = (
        "steps: " + ", ".join([first.technique, *(s["technique"] for s in steps[1:])])
        + tail + peer_says(first) + "; " + engine_says(reports["peer"])
    )  # fmt: skip
    peer_row = _residual_row(
        peer_name(name, first), PEER_GOAL, score["peer"], fp32, reports["peer"], notes
    )
    return [row, peer_row, *peer_rows]


def _residual_scored(
    runs: dict[str, Any], key: str, model: Path, labels: np.ndarray
) -> dict[str, Any]:
    acc0, acc1 = _accuracy(runs["fp32"].outputs, labels), _accuracy(runs[key].outputs, labels)
    fp32_ms, ms = runs["fp32"].latency_p50_ms, runs[key].latency_p50_ms
    return {
        "fp32_ms": fp32_ms,
        "ms": ms,
        "acc0": acc0,
        "acc1": acc1,
        "speedup": fp32_ms / ms,
        "lost": (acc0 - acc1) * 100,
        "channels": _conv_channels(model),
    }


def _residual_against(ours: dict[str, Any], peer: dict[str, Any]) -> list[Any]:
    return [
        ("p50", f"{ours['ms']:.3f} ms", f"{peer['ms']:.3f} ms", ours["ms"], peer["ms"], False),
        (
            "accuracy",
            f"{ours['acc1'] * 100:.2f}%",
            f"{peer['acc1'] * 100:.2f}%",
            ours["acc1"],
            peer["acc1"],
            True,
        ),
    ]


def _residual_row(
    name: str, goal: str, s: dict[str, Any], fp32: Path, rep: CompressionReport, notes: str
) -> Row:
    return Row(
        name,
        figures={
            f"p50 at batch {TARGET.batch_size}": f"{s['fp32_ms']:.3f} ms -> {s['ms']:.3f} ms",
            "accuracy (held out)": f"{s['acc0'] * 100:.2f}% -> {s['acc1'] * 100:.2f}%",
            "conv output channels (sum)": f"{_conv_channels(fp32)} -> {s['channels']}",
            "bytes (fp32 ONNX stripped -> artifact)": (
                f"{mb(fp32.stat().st_size)} -> {mb(rep.compressed.model_bytes)}"
            ),
            "parameters": f"{rep.original.parameters} -> {rep.compressed.parameters}",
        },
        goal=goal,
        met=None,
        reached=f"{s['speedup']:.2f}x faster, {points(s['lost'])}",
        notes=notes + (f"; engine warnings: {'; '.join(rep.warnings)}" if rep.warnings else ""),
    )


def _resnet18_upload(work: Path) -> Path:
    """torchvision's ResNet-18 named by reference beside random weights (seed 0)."""
    import torch
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    upload = work / "resnet18-upload"
    upload.mkdir(parents=True, exist_ok=True)
    reference = {
        "library": "torchvision",
        "name": "resnet18",
        "args": {"num_classes": 10},
        "input_size": [3, 32, 32],
    }
    (upload / "architecture.json").write_text(json.dumps(reference))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(upload / "model.safetensors"))
    return upload


def _fidelity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Top-1 agreement and min cosine of ``b``'s outputs against the original's ``a``."""
    agreement = float((a.argmax(-1) == b.argmax(-1)).mean())
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12
    return agreement, float(np.min((a * b).sum(-1) / norms))


def resnet18_row(work: Path, settings: MeasureSettings, rounds: int) -> list[Row]:
    name = f"torchvision ResNet-18 by reference: structured pruning {RESNET_AMOUNT:.0%}"
    goal = "report latency and size against the original (randomly initialised: no accuracy goal)"
    missing = not_available(name, ["structured_pruning"], goal)
    if missing:
        return [missing]
    upload = _resnet18_upload(work)
    trained = train("residual", epochs=1)  # only for the digits split, upscaled to 32x32 RGB
    x_tr, x_ev = images("mobilenet", trained.x_train), images("mobilenet", trained.x_eval)
    target = Target(device="cpu", runtime="onnxruntime", batch_size=RESNET_BATCH)
    steps = [{"technique": "structured_pruning", "amount": RESNET_AMOUNT}]
    run_dir = work / "resnet18-run"
    data = {"calibration_data": {"input": x_tr[:64]}, "eval_data": {"input": x_ev}}
    result = _run(upload, steps, run_dir, settings, target=target, **dict(data))
    rep = result.compression_report
    fp32 = stripped_copy(run_dir / "original.onnx", work / "resnet18-fp32-stripped.onnx")
    models = {"fp32": fp32, "ours": result.artifact_dir / "model.onnx"}
    reports = {"ours": rep}
    peer_rows = add_peer(
        name, steps, rep,
        lambda recipe, suffix: _run(
            upload, recipe, run_dir.with_name(run_dir.name + suffix), settings, target=target,
            **dict(data),
        ),
        models, reports,
    )  # fmt: skip
    held_out = EvalInputs({"input": x_ev}, f"{len(x_ev)} held-out digits at 32x32")
    runs = best_of(rounds, models, held_out, RESNET_BATCH, settings)
    notes = (
        "architecture.json names torchvision resnet18 (num_classes 10, input 3x32x32) "
        "beside a randomly initialised model.safetensors; no heal, so fidelity is what "
        "pruning alone leaves; "
    )
    row = _resnet18_figures(name, goal, runs, "ours", fp32, models, rep, notes + engine_says(rep))
    if "peer" not in reports:
        return [row, *peer_rows]
    row.reached += "; " + versus(_resnet18_against(runs, models))
    first = reports["peer"].steps[0]
    peer_notes = notes + peer_says(first) + "; " + engine_says(reports["peer"])
    peer_row = _resnet18_figures(
        peer_name(name, first), PEER_GOAL, runs, "peer", fp32, models, reports["peer"],
        peer_notes,
    )  # fmt: skip
    return [row, peer_row, *peer_rows]


def _resnet18_against(runs: dict[str, Any], models: dict[str, Path]) -> list[Any]:
    ms = {k: runs[k].latency_p50_ms for k in ("ours", "peer")}
    fid = {k: _fidelity(runs["fp32"].outputs, runs[k].outputs) for k in ("ours", "peer")}
    return [
        ("p50", f"{ms['ours']:.3f} ms", f"{ms['peer']:.3f} ms", ms["ours"], ms["peer"], False),
        *(
            (what, f"{fid['ours'][i]:{fmt}}", f"{fid['peer'][i]:{fmt}}", fid["ours"][i],
             fid["peer"][i], True)
            for i, (what, fmt) in enumerate((("top-1 agreement", ".1%"), ("min cosine", ".3f")))
        ),
    ]  # fmt: skip


def _resnet18_figures(
    name: str,
    goal: str,
    runs: dict[str, Any],
    key: str,
    fp32: Path,
    models: dict[str, Path],
    rep: CompressionReport,
    notes: str,
) -> Row:
    agreement, cos = _fidelity(runs["fp32"].outputs, runs[key].outputs)
    fp32_ms, ms = runs["fp32"].latency_p50_ms, runs[key].latency_p50_ms
    size = fp32.stat().st_size / max(rep.compressed.model_bytes, 1)
    return Row(
        name,
        figures={
            f"p50 at batch {RESNET_BATCH} (3x32x32)": f"{fp32_ms:.3f} ms -> {ms:.3f} ms",
            "bytes (fp32 ONNX stripped -> artifact)": (
                f"{mb(fp32.stat().st_size)} -> {mb(rep.compressed.model_bytes)}"
            ),
            "conv output channels (sum)": (
                f"{_conv_channels(fp32)} -> {_conv_channels(models[key])}"
            ),
            "parameters": f"{rep.original.parameters} -> {rep.compressed.parameters}",
            "fidelity to the original (held out, no healing)": (
                f"top-1 agreement {agreement:.1%}, min cosine {cos:.3f}"
            ),
        },
        goal=goal,
        met=None,
        reached=f"{fp32_ms / ms:.2f}x faster, {size:.1f}x smaller",
        notes=notes,
    )


def onnx_cnn(work: Path, settings: MeasureSettings, rounds: int) -> list[Row]:
    work.mkdir(parents=True, exist_ok=True)
    rows = residual_rows(work, settings, rounds)
    rows += guarded(
        "torchvision ResNet-18 by reference", "", lambda: resnet18_row(work, settings, rounds)
    )
    return rows
