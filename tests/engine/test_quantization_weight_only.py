"""Weight-only int8/int4 (MatMulNBits) and fp16 on MiniLM's exported graph, run on ORT CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from compressor.formats.hf import load_hf_model, load_tokenizer
from compressor.formats.onnx_io import export_onnx
from compressor.inputs import EvalInputs, text_inputs
from compressor.measure.fidelity import fidelity
from compressor.techniques.quantization import QuantizationConfig
from compressor.techniques.quantization import onnx_schemes as quant_onnx


@pytest.fixture(scope="module")
def exported(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("weight_only")
    inputs = text_inputs(
        load_tokenizer(minilm_dir),
        ["input_ids", "attention_mask", "token_type_ids"],
        sequence_length=64,
    )
    path = workdir / "fp32.onnx"
    export_onnx(load_hf_model(minilm_dir), inputs.head(2), path, output_name="output")
    return path, inputs, _run(path, inputs)


def _run(path: Path, inputs: EvalInputs) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, b)[0] for b in inputs.batches(8)])


def _fidelity(exported, path: Path) -> dict:  # type: ignore[no-untyped-def]
    _src, inputs, reference = exported
    return fidelity(reference, _run(path, inputs), attention_mask=inputs.tensors["attention_mask"])


@pytest.mark.parametrize(
    ("scheme", "group", "bits", "bound"),
    # Measured cosine_min: int8 g128 0.9999, int4 g32 0.97 (no calibration, plain rounding).
    [("int8_weight_only", None, 8, 0.999), ("int4_weight_only", 32, 4, 0.95)],
)
def test_weight_only(
    exported, tmp_path: Path, scheme: str, group: int | None, bits: int, bound: float
) -> None:  # type: ignore[no-untyped-def]
    source = exported[0]
    out = tmp_path / "q.onnx"
    config = QuantizationConfig(scheme=scheme, group_size=group)  # type: ignore[arg-type]
    report = quant_onnx.weight_only(config, bits=bits, source=source, out=out)
    nodes = [n for n in onnx.load(str(out)).graph.node if n.op_type == "MatMulNBits"]
    # 36 encoder MatMuls and the pooler's: the export keeps pooler_output.
    assert len(nodes) == report["matmuls_quantized"] == 37
    attrs = {a.name: a.i for a in nodes[0].attribute}
    assert attrs["bits"] == bits and attrs["block_size"] == (group or 128)
    # 10.6 M MatMul weights go from 4 bytes to bits/8 (+ group scales); embeddings stay fp32.
    matmul_weights = 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    saved = matmul_weights * (4 - bits / 8)
    assert out.stat().st_size < source.stat().st_size - saved + 2_000_000
    got = _fidelity(exported, out)
    assert got["cosine_min"] >= bound, got


def test_fp16_onnx_keeps_sensitive_ops_in_fp32(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = exported[0]
    out = tmp_path / "fp16.onnx"
    report = quant_onnx.fp16(QuantizationConfig(scheme="fp16"), source=source, out=out)
    model = onnx.load(str(out))
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16)
    types = {
        i.data_type for i in model.graph.initializer if len(i.dims) == 2 and i.data_type in floats
    }
    assert types == {TensorProto.FLOAT16}
    assert report["ops_kept_in_float32"]["LayerNormalization"] == 13
    assert report["ops_kept_in_float32"]["Softmax"] == 6
    # LayerNorm runs in fp32: each of its inputs is an fp32 tensor or a Cast to fp32.
    inits = {i.name: i for i in model.graph.initializer}
    casts = {
        n.output[0]
        for n in model.graph.node
        if n.op_type == "Cast" and n.attribute[0].i == TensorProto.FLOAT
    }
    for node in model.graph.node:
        if node.op_type == "LayerNormalization":
            for name in node.input:
                assert name in casts or inits[name].data_type == TensorProto.FLOAT, name
    # last_hidden_state and pooler_output both stay fp32 for their callers.
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [TensorProto.FLOAT] * 2
    assert out.stat().st_size < source.stat().st_size * 0.52
    got = _fidelity(exported, out)
    assert got["cosine_min"] >= 0.999, got
