"""fp16 and bf16 for the torch runtime: saved HF safetensors in the new dtype, reloadable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModel

from compressor.measure.settings import MeasureSettings
from compressor.recipe import Recipe
from compressor.target import Target


@pytest.mark.parametrize(
    ("scheme", "dtype", "bound"),
    [
        # Measured cosine_min: fp16 > 0.99999, bf16 ~0.9995.
        ("fp16", torch.float16, 0.999),
        ("bf16", torch.bfloat16, 0.995),
    ],
)
def test_half_precision_torch(
    minilm_dir: Path, tmp_path: Path, scheme: str, dtype: torch.dtype, bound: float
) -> None:
    from compressor.pipeline import compress_model

    result = compress_model(
        minilm_dir,
        Recipe.model_validate({"steps": [{"technique": "quantization", "scheme": scheme}]}),
        target=Target(runtime="torch", sequence_length=32),
        workdir=tmp_path,
        settings=MeasureSettings(iterations=3, warmup=1),
    )
    weights = result.artifact_dir / "model.safetensors"
    with safe_open(str(weights), framework="pt") as fh:
        dtypes = {fh.get_slice(k).get_dtype() for k in fh.keys()}  # noqa: SIM118
    assert dtypes == {"F16" if scheme == "fp16" else "BF16"}
    assert weights.stat().st_size < (minilm_dir / "model.safetensors").stat().st_size * 0.51
    config = json.loads((result.artifact_dir / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == str(dtype).removeprefix("torch.")
    model = AutoModel.from_pretrained(str(result.artifact_dir), local_files_only=True)
    assert next(model.parameters()).dtype == dtype
    assert result.report["compressed"]["dtypes"] == {
        str(dtype).removeprefix("torch."): result.report["compressed"]["parameters"]
    }
    assert result.report["fidelity"]["cosine_min"] >= bound, result.report["fidelity"]
    assert "float32 inside" in result.report["steps"][0]["numerically_sensitive_ops"]
