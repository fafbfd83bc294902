"""compress_model on runtime llama.cpp: the artifact is one model.gguf, and the perplexity the
report gives is the one transformers reads from that file (on a tiny Llama: SmolLM2 end to end
takes minutes on one core)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from compressor.llm.measure import perplexity
from compressor.llm.pipeline import EVAL_TOKENS
from compressor.llm.texts import default_eval_text
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target
from tests.fixtures.causal_lm import save_tiny_causal_lm

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.mark.parametrize("scheme", ["int4_weight_only", "int8_weight_only"])
def test_compress_model_delivers_the_gguf_it_judged(tmp_path: Path, scheme: str) -> None:
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = save_tiny_causal_lm("llama", tmp_path / "src")
    recipe = Recipe.model_validate(
        {"steps": [{"technique": "quantization", "scheme": scheme, "method": "rtn"}]}
    )
    result = compress_model(
        source, recipe, target=Target(runtime="llama.cpp"), workdir=tmp_path / "work"
    )
    assert result.artifact_format == "gguf"
    assert sorted(p.name for p in result.artifact_dir.iterdir()) == ["model.gguf", "report.json"]
    report = result.report
    gguf = result.artifact_dir / "model.gguf"
    assert report["compressed"]["format"] == "gguf"
    assert report["compressed"]["model_bytes"] == gguf.stat().st_size
    llm = report["llm"]
    assert llm["group_sizes"] == [32]
    assert llm["symmetric"] is (scheme == "int8_weight_only")
    assert "Q8_0" in llm["embeddings"] and "llama.cpp" in llm["decode"]["note"]
    expected = "Q4_1" if scheme == "int4_weight_only" else "Q8_0"
    types = {t.name: t.tensor_type.name for t in GGUFReader(str(gguf)).tensors}
    assert types["blk.1.ffn_down.weight"] == expected
    assert "output.weight" not in types  # tied: llama.cpp reads token_embd as the head
    # the reported perplexity is the file's, read back by transformers' GGUF loader
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    ids = torch.tensor(tokenizer(default_eval_text())["input_ids"][:EVAL_TOKENS])
    model = AutoModelForCausalLM.from_pretrained(
        str(result.artifact_dir), gguf_file="model.gguf", dtype=torch.float32
    ).eval()
    with torch.inference_mode():
        read = perplexity(model, ids, window=llm["perplexity"]["window"], batch=1)
    assert read.ppl == pytest.approx(llm["perplexity"]["compressed"], rel=1e-4)
    assert json.loads((result.artifact_dir / "report.json").read_text())["llm"]["bits"] == (
        4 if scheme == "int4_weight_only" else 8
    )
