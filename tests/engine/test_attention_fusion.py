"""Self-attention of exported encoders fused into ONNX Runtime's MultiHeadAttention: exact, on
every family it recognizes, and a no-op on what it does not (compressor/formats/attention_fusion.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import transformers

from compressor.formats.attention_fusion import fuse_attention
from compressor.formats.onnx_io import export_onnx
from compressor.measure.session_timing import cpu_session

LAYERS, HEADS = 2, 4
SIZES = {
    "hidden_size": 64,
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "intermediate_size": 128,
    "vocab_size": 1000,
    "max_position_embeddings": 64,
}
FAMILIES = {
    "bert": lambda: transformers.BertConfig(**SIZES),
    "roberta": lambda: transformers.RobertaConfig(**SIZES),
    "mpnet": lambda: transformers.MPNetConfig(**SIZES),  # a position bias beside the mask
    "distilbert": lambda: transformers.DistilBertConfig(
        dim=64, n_heads=HEADS, n_layers=LAYERS, hidden_dim=128, vocab_size=1000
    ),
}


def _export(config: transformers.PretrainedConfig, path: Path) -> onnx.ModelProto:
    transformers.set_seed(0)
    model = transformers.AutoModel.from_config(config, attn_implementation="eager").eval()
    example = {"input_ids": np.ones((1, 8), np.int64), "attention_mask": np.ones((1, 8), np.int64)}
    export_onnx(model, example, path, output_name="out")
    return onnx.load(str(path))


def _padded_batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.ones((2, 19), np.int64)
    mask[1, -6:] = 0  # the second row padded: the mask must reach the fused kernel
    return {"input_ids": rng.integers(5, 999, (2, 19)).astype(np.int64), "attention_mask": mask}


def _run(model: onnx.ModelProto | Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    return cpu_session(model, threads=1).run(None, feed)[0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fused_graph_computes_the_same(family: str, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    model = _export(FAMILIES[family](), path)
    assert fuse_attention(model) == LAYERS
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MultiHeadAttention") == LAYERS and "Softmax" not in ops
    feed = _padded_batch()
    before, after = _run(path, feed), _run(model, feed)
    kept = feed["attention_mask"][..., None].astype(bool)  # padded positions' outputs are noise
    assert np.abs(np.where(kept, after - before, 0)).max() < 1e-5


def test_unrecognized_attention_is_left_as_exported(tmp_path: Path) -> None:
    """DeBERTa's disentangled attention adds terms made from q and k themselves."""
    model = _export(transformers.DebertaV2Config(**SIZES), tmp_path / "model.onnx")
    before = model.SerializeToString()
    assert fuse_attention(model) == 0
    assert model.SerializeToString() == before
