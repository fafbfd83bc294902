"""Quantization schemes that act on an exported ONNX graph, with ONNX Runtime's own tools."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from compressor.errors import UnsupportedModelError
from compressor.formats.onnx_io import gemm_to_matmul
from compressor.formats.onnx_shapes import graph_batches
from compressor.inputs import EvalInputs
from compressor.techniques.quantization import conv
from compressor.techniques.quantization.config import QuantizationConfig
from compressor.techniques.quantization.cpu_rewrites import tune_for_cpu
from compressor.techniques.quantization.smoothing import const_weight_matmuls
from compressor.techniques.quantization.smoothing_choice import smoothed_or_plain

# GatherBlockQuantized stores 4-bit values in blocks of this many along the embedding axis.
_TABLE_BLOCK = 32

# Ops whose fp16 rounding visibly moves the outputs (reductions, exponentials, normalisation):
# they stay fp32 and Cast nodes are placed around them.
FP32_OPS = (
    "LayerNormalization",
    "SimplifiedLayerNormalization",
    "SkipLayerNormalization",
    "Softmax",
    "LogSoftmax",
    "ReduceMean",
    "ReduceSum",
    "Pow",
    "Sqrt",
    "Exp",
    "Log",
    "Erf",
    "Range",
    "CumSum",
)


def _quiet() -> None:
    # ORT's quantizers log every node at INFO on the root logger.
    logging.getLogger().setLevel(logging.ERROR)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.ERROR)


# Read at call time, so a test can point it at a cpuinfo of another CPU.
CPUINFO = Path("/proc/cpuinfo")


def cpu_has_vnni() -> bool:
    """x86 VNNI (AVX512-VNNI or AVX-VNNI) multiplies uint8 x int8 into 32 bits without saturating."""
    import platform

    if platform.machine().lower() not in {"x86_64", "amd64", "i686", "x86"}:
        return True  # ARM and others: ORT's int8 kernels there do not saturate
    try:
        flags = CPUINFO.read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def weight_type(config: QuantizationConfig) -> tuple[Any, str]:
    """int8 weights with VNNI; uint8 without, where ORT's uint8 x int8 kernels saturate."""
    from onnxruntime.quantization import QuantType

    choice = config.weight_dtype
    if choice == "auto":
        choice = "int8" if cpu_has_vnni() else "uint8"
        why = (
            "this CPU has VNNI"
            if choice == "int8"
            else ("this CPU has no VNNI, where uint8 x int8 products saturate in 16 bits")
        )
    else:
        why = "set by the recipe"
    kind = QuantType.QInt8 if choice == "int8" else QuantType.QUInt8
    return kind, f"{choice} ({why})"


def _load_normalized(source: Path) -> onnx.ModelProto:
    """Uploaded graphs (and converted TorchScript) often hold Gemm, which no quantizer reads."""
    model = onnx.load(str(source))
    gemm_to_matmul(model)
    return model


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(p in name for p in patterns)


def weight_gathers(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Embedding lookups: Gathers that read a stored 2-D table."""
    inits = {i.name: i for i in graph.initializer}
    return [
        n
        for n in graph.node
        if n.op_type == "Gather" and n.input[0] in inits and len(inits[n.input[0]].dims) == 2
    ]


def _table_bits(config: QuantizationConfig, graph: onnx.GraphProto) -> dict[str, tuple[str, int]]:
    """Bits per embedding table: the vocabulary (largest) and the small ones may differ."""
    inits = {i.name: i for i in graph.initializer}
    gathers = [g for g in weight_gathers(graph) if not _matches(g.name, config.exclude)]
    if not gathers:
        return {}
    sizes = {g.name: int(np.prod(inits[g.input[0]].dims)) for g in gathers}
    largest = max(sizes, key=lambda n: sizes[n])
    bits: dict[str, tuple[str, int]] = {}
    for g in gathers:
        wanted = config.embedding_bits if g.name == largest else config.small_table_bits
        width = int(inits[g.input[0]].dims[1])
        # 4-bit tables need whole blocks along the embedding axis; else they stay int8.
        bits[g.name] = (g.input[0], 4 if wanted == 4 and width % _TABLE_BLOCK == 0 else 8)
    return bits


def _gathers_to_int4(
    model: onnx.ModelProto, names: set[str], *, symmetric: bool
) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    others = [n.name for n in model.graph.node if n.op_type == "Gather" and n.name not in names]
    algo = DefaultWeightOnlyQuantConfig(
        block_size=_TABLE_BLOCK, is_symmetric=symmetric, op_types_to_quantize=("Gather",), bits=4
    )
    quantizer = MatMulNBitsQuantizer(model, algo_config=algo, nodes_to_exclude=others)
    quantizer.process()
    result: onnx.ModelProto = quantizer.model.model
    return result


def _drop_zero_weight_zero_points(model: onnx.ModelProto) -> int:
    """Symmetric int8 weights have all-zero zero points; MatMulInteger treats absent as zero."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    dropped = 0
    for node in graph.node:
        if node.op_type != "MatMulInteger" or len(node.input) != 4:
            continue
        zp = inits.get(node.input[3])
        if zp is None or np.any(numpy_helper.to_array(zp)):
            continue
        del node.input[3]
        dropped += 1
    used = {name for n in graph.node for name in n.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    return dropped


def _sensitivity(
    model: onnx.ModelProto, candidates: list[onnx.NodeProto], calibration: EvalInputs
) -> dict[str, float]:
    """Relative output error of each MatMul alone in int8 (per-tensor uint8 activations,
    per-channel int8 weights), on the calibration activations: a cheap local sensitivity."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    inits = {i.name: i for i in model.graph.initializer}
    probe = onnx.ModelProto.FromString(model.SerializeToString())
    names = sorted({n.input[0] for n in candidates})
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    first = graph_batches(model, calibration, 8)[0]
    feed = {k: v for k, v in first.items() if k in wanted}
    values = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True)
    )
    errors: dict[str, float] = {}
    for node in candidates:
        x = np.asarray(values[node.input[0]], dtype=np.float32).reshape(
            -1, values[node.input[0]].shape[-1]
        )
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        x_scale = max(hi - lo, 1e-8) / 255.0
        x_q = np.clip(np.round(x / x_scale) + np.round(-lo / x_scale), 0, 255)
        x_dq = (x_q - np.round(-lo / x_scale)) * x_scale
        w_scale = np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0
        w_dq = np.clip(np.round(w / w_scale), -127, 127) * w_scale
        exact = x @ w
        errors[node.name] = float(
            np.linalg.norm(exact - x_dq @ w_dq) / max(float(np.linalg.norm(exact)), 1e-12)
        )
    return errors


def _plan_int8(
    config: QuantizationConfig, model: onnx.ModelProto, calibration: EvalInputs
) -> tuple[list[onnx.NodeProto], dict[str, str], dict[str, float]]:
    """Which weight MatMuls get int8 and which stay float, with the reason for each."""
    graph = model.graph
    matmuls = const_weight_matmuls(graph)
    kept: dict[str, str] = {}
    for node in matmuls:
        if _matches(node.name, config.exclude):
            kept[node.name] = "excluded by the recipe"
    candidates = [n for n in matmuls if n.name not in kept]
    errors: dict[str, float] = {}
    if config.float_fallback and candidates:
        errors = _sensitivity(model, candidates, calibration)
        worst = sorted(errors, key=lambda n: -errors[n])[: config.float_fallback]
        for name in worst:
            kept[name] = (
                f"most sensitive: int8 relative output error {errors[name]:.4f} on the "
                f"calibration inputs (float_fallback={config.float_fallback})"
            )
        candidates = [n for n in candidates if n.name not in kept]
    return candidates, kept, errors


def _check_candidates(config: QuantizationConfig, matmuls: int, tables: int) -> None:
    if matmuls == 0 and tables == 0:
        raise UnsupportedModelError(
            f"{config.scheme} found no MatMul with stored weights and no embedding table to "
            "quantize" + (" outside the excluded layers" if config.exclude else "")
        )


def _quantize_dynamic(
    config: QuantizationConfig,
    model: onnx.ModelProto,
    out: Path,
    *,
    kept: dict[str, str],
    tables: dict[str, tuple[str, int]],
) -> int:
    """``model`` to ``out`` with the step's choices; the number of zero points dropped."""
    from onnxruntime.quantization import quantize_dynamic

    int4 = {name for name, (_t, bits) in tables.items() if bits == 4}
    if int4:
        model = _gathers_to_int4(model, int4, symmetric=False)
    int8_tables = [name for name, (_t, bits) in tables.items() if bits == 8]
    excluded = list(kept) + [
        g.name for g in weight_gathers(model.graph) if g.name not in int8_tables
    ]
    ops = ["MatMul"] + (["Gather"] if int8_tables else [])
    weights, _why = weight_type(config)
    quantize_dynamic(
        model,
        str(out),
        per_channel=config.per_channel,
        weight_type=weights,
        op_types_to_quantize=ops,
        nodes_to_exclude=excluded,
    )
    quantized = onnx.load(str(out))
    dropped = _drop_zero_weight_zero_points(quantized)
    onnx.save(quantized, str(out))
    return dropped


def int8_dynamic(
    config: QuantizationConfig, *, source: Path, out: Path, calibration: EvalInputs
) -> dict[str, Any]:
    _quiet()
    tuning = tune_for_cpu(_load_normalized(source), calibration)
    model = tuning.model
    candidates, kept, _errors = _plan_int8(config, model, calibration)
    tables = _table_bits(config, model.graph) if config.quantize_embeddings else {}
    _check_candidates(config, len(candidates), len(tables))

    def build(graph: onnx.ModelProto, path: Path) -> int:
        return _quantize_dynamic(config, graph, path, kept=kept, tables=tables)

    smoothing = smoothed_or_plain(
        model, calibration, alpha=config.smoothing, skip=set(kept), build=build, out=out
    )
    dropped = smoothing.built
    return {
        "matmuls_int8": len(candidates),
        "layers_kept_in_float": kept,
        "embedding_tables": {t: f"int{bits}" for _n, (t, bits) in tables.items()},
        "embedding_tables_in_float": {
            g.input[0]: "excluded by the recipe"
            if config.quantize_embeddings
            else "quantize_embeddings is false"
            for g in weight_gathers(onnx.load(str(source)).graph)
            if g.name not in tables
        },
        "activations": "uint8 per tensor, range computed at run time",
        "weights": "int8 per output channel" if config.per_channel else "int8 per tensor",
        "zero_points_dropped": dropped,
        "weight_dtype": weight_type(config)[1],
        **smoothing.details,
        **({"cpu_rewrites": tuning.details} if tuning.found else {}),
    }


class _Reader:
    """ORT CalibrationDataReader over the job's calibration inputs."""

    def __init__(self, calibration: EvalInputs, model: onnx.ModelProto) -> None:
        names = {i.name for i in model.graph.input}
        self._batches = [
            {k: v for k, v in b.items() if k in names} for b in graph_batches(model, calibration, 4)
        ]
        self._iter: Iterator[dict[str, np.ndarray]] = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._batches)


def int8_static(
    config: QuantizationConfig,
    *,
    source: Path,
    out: Path,
    calibration: EvalInputs,
    batch_size: int = 1,
    cpu: bool = True,
) -> dict[str, Any]:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    _quiet()
    if conv.conv_nodes(onnx.load(str(source))):
        return conv.int8_static_conv(
            config,
            source=source,
            out=out,
            calibration=calibration,
            weight_type=weight_type(config),
            batch_size=batch_size,
        )
    model = _load_normalized(source)
    tuning = tune_for_cpu(model, calibration) if cpu else None
    if tuning is not None:
        model = tuning.model
    candidates, kept, _errors = _plan_int8(config, model, calibration)
    _check_candidates(config, len(candidates), 0)
    weights, weights_why = weight_type(config)
    method = {
        "auto": CalibrationMethod.MinMax,
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[config.calibration_method]

    def build(graph: onnx.ModelProto, path: Path) -> None:
        quantize_static(
            graph,
            str(path),
            _Reader(calibration, graph),
            quant_format=QuantFormat.QDQ,
            # Only weight ops: quantizing Add/Softmax/LayerNorm inputs costs accuracy for no
            # size gain, and ORT runs the float ops between the int8 MatMuls anyway.
            nodes_to_quantize=[n.name for n in candidates],
            op_types_to_quantize=["MatMul"],
            per_channel=config.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=weights,
            calibrate_method=method,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )

    smoothing = smoothed_or_plain(
        model, calibration, alpha=config.smoothing, skip=set(kept), build=build, out=out
    )
    return {
        "format": "QDQ (QuantizeLinear/DequantizeLinear around each int8 MatMul)",
        "calibration_method": (
            "minmax" if config.calibration_method == "auto" else config.calibration_method
        ),
        "calibration_samples": int(next(iter(calibration.tensors.values())).shape[0]),
        "matmuls_int8": len(candidates),
        "layers_kept_in_float": kept,
        "embedding_tables_in_float": {
            g.input[0]: "static int8 covers MatMuls; use int8_dynamic for int8 tables"
            for g in weight_gathers(model.graph)
        },
        "activations": "uint8 per tensor, range fixed from the calibration inputs",
        "weights": "int8 per output channel" if config.per_channel else "int8 per tensor",
        "weight_dtype": weights_why,
        **smoothing.details,
        **({"cpu_rewrites": tuning.details} if tuning is not None and tuning.found else {}),
    }


def weight_only(
    config: QuantizationConfig, *, bits: int, source: Path, out: Path
) -> dict[str, Any]:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    _quiet()
    model = _load_normalized(source)
    matmuls = const_weight_matmuls(model.graph)
    kept = {n.name: "excluded by the recipe" for n in matmuls if _matches(n.name, config.exclude)}
    inits = {i.name: i for i in model.graph.initializer}
    for node in matmuls:
        dims = list(inits[node.input[1]].dims)
        if len(dims) != 2 and node.name not in kept:
            kept[node.name] = f"weight has {len(dims)} dimensions; MatMulNBits takes 2-D weights"
    todo = [n for n in matmuls if n.name not in kept]
    _check_candidates(config, len(todo), 0)
    group = config.effective_group_size
    algo = DefaultWeightOnlyQuantConfig(
        block_size=group,
        is_symmetric=False,
        bits=bits,
        op_types_to_quantize=("MatMul",),
    )
    quantizer = MatMulNBitsQuantizer(model, algo_config=algo, nodes_to_exclude=list(kept))
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), False)
    done = sum(1 for n in onnx.load(str(out)).graph.node if n.op_type == "MatMulNBits")
    return {
        "format": f"MatMulNBits (com.microsoft), {bits}-bit asymmetric, group size {group}",
        "matmuls_quantized": done,
        "layers_kept_in_float": kept,
        "embedding_tables_in_float": {
            g.input[0]: "weight-only schemes quantize MatMul weights; tables stay float"
            for g in weight_gathers(model.graph)
        },
        "activations": "float (weights are dequantized per group inside the kernel)",
    }


def fp16(config: QuantizationConfig, *, source: Path, out: Path) -> dict[str, Any]:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(source))
    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FP32_OPS))
    excluded_nodes = [n.name for n in model.graph.node if _matches(n.name, config.exclude)]
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=block,
        node_block_list=excluded_nodes,
    )
    onnx.save(converted, str(out))
    kept_ops: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in FP32_OPS:
            kept_ops[node.op_type] = kept_ops.get(node.op_type, 0) + 1
    return {
        "dtype": "float16",
        "ops_kept_in_float32": kept_ops,
        "why_float32": "normalisation, softmax and reductions lose visible precision in fp16",
        "layers_kept_in_float": {n: "excluded by the recipe" for n in excluded_nodes},
        "inputs_outputs": "kept float32 (Cast nodes at the edges)",
    }
