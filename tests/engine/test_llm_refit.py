"""Once the held-out quarter of the calibration text has chosen the method, the winner is walked
again on every block: the artifact is calibrated on all the text, the choice's figures stay the
held-out ones."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from compressor.llm.candidates import reads_calibration, run_candidate
from compressor.llm.pipeline import _quantize, _texts
from compressor.recipe import Recipe
from scripts.smollm2 import smollm2_tokenizer
from tests.fixtures.causal_lm import save_tiny_causal_lm


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for p in folder.glob("*.safetensors") for k, v in load_file(str(p)).items()}


def test_the_chosen_method_is_walked_again_on_every_block(tmp_path: Path) -> None:
    source = save_tiny_causal_lm("llama", tmp_path / "llama")
    step = Recipe.model_validate(
        {"steps": [{"technique": "nm_sparsity"}]}  # sparsegpt or wanda: both read the text
    ).steps[0]
    texts = _texts(
        smollm2_tokenizer(), max_positions=2048, calibration_texts=None, eval_texts=None,
        dtype=torch.float32,
    )  # fmt: skip
    chosen, tried = _quantize(source, step, "vllm", texts, tmp_path / "work", lambda *_: None)
    blocks = texts.calibration.shape[0] + texts.held_out.shape[0]
    assert chosen.refit_blocks == blocks and texts.held_out.shape[0] >= 2
    assert chosen.figures == min(tried, key=lambda c: c.figures.held_out_perplexity).figures
    # the same method on the calibration blocks alone gives other weights: the refit saw more
    alone = run_candidate(
        source, chosen.method, workdir=tmp_path / "alone", bits=16, group_size=None,
        symmetric=False, calibration=texts.calibration, held_out=texts.held_out,
        with_checkpoint=False, progress=lambda _: None, sparsity=(2, 4),
    )  # fmt: skip
    refit, first = _weights(chosen.folder), _weights(alone.folder)
    name = "model.layers.0.mlp.down_proj.weight"
    assert refit.keys() == first.keys() and not torch.equal(refit[name], first[name])


def test_round_to_nearest_is_not_walked_again_unless_smoothing_reads_the_text() -> None:
    assert not reads_calibration("rtn", w8a8=False)
    assert reads_calibration("rtn", w8a8=True)
    assert reads_calibration("gptq", w8a8=False) and reads_calibration("awq", w8a8=False)
