"""A 16-bit upload is judged and timed in its own dtype: a float32 copy of a bfloat16 model is
twice its bytes, over the job's memory bound of 1.5x (compressor/llm/candidates.py
measuring_dtype). The memory-bound test's 4 GiB model is float32 (half the parameters of a
bfloat16 one, so half the CPU minutes); this is the 16-bit path, on a tiny model."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open

from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target
from scripts.llm_job import RTN_INT4, short_texts
from tests.fixtures.causal_lm import save_tiny_causal_lm


def test_a_bfloat16_upload_is_measured_in_bfloat16(tmp_path: Path) -> None:
    source = save_tiny_causal_lm("llama", tmp_path / "upload", dtype=torch.bfloat16)
    with safe_open(str(source / "model.safetensors"), "pt") as weights:
        assert weights.get_tensor("model.norm.weight").dtype == torch.bfloat16  # the premise
    texts = short_texts()
    result = compress_model(
        source,
        Recipe.model_validate({"steps": [RTN_INT4]}),
        target=Target.model_validate({"runtime": "vllm"}),
        workdir=tmp_path / "work",
        calibration_texts=texts["calibration"],
        eval_texts=texts["eval"],
        progress=lambda *_: None,
        settings=MeasureSettings(decode_budget_s=0),  # one decode round: the dtype is the point
    )
    llm = result.report["llm"]
    assert "bfloat16, the upload's dtype" in llm["perplexity"]["text"], llm["perplexity"]
    assert llm["perplexity"]["original"] > 0 and llm["perplexity"]["compressed"] > 0
    assert llm["generation"]["prompts"] > 0
