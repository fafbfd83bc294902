"""An ONNX Runtime GenAI folder measured in its own runtime: logits of a whole window from one
prefill (for perplexity and next-token fidelity) and greedy continuations with its KV cache.

The artifact's MatMulNBits may compute with int8 activations (accuracy_level 4), so its figures
are read here, from the folder the user gets, not from a torch model with the same weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch


class GenaiScorer:
    """Duck-types the part of a transformers causal LM that ``measure.perplexity`` calls."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime_genai as og

        self._og = og
        self.model = og.Model(str(folder))

    def parameters(self) -> Iterator[torch.Tensor]:
        yield torch.empty(0)  # the device perplexity() puts token ids on: the CPU

    def __call__(self, input_ids: torch.Tensor, use_cache: bool = False) -> Any:
        rows = []
        for ids in input_ids.tolist():
            params = self._og.GeneratorParams(self.model)
            params.set_search_options(max_length=len(ids) + 1, do_sample=False)
            generator = self._og.Generator(self.model, params)
            generator.append_tokens(ids)  # one prefill: logits for every position
            rows.append(torch.from_numpy(np.array(generator.get_output("logits"))[0]))
            del generator
        return SimpleNamespace(logits=torch.stack(rows))


def genai_greedy(
    folder: Path, tokenizer: Any, prompts: list[str], *, new_tokens: int
) -> list[list[int]]:
    """Greedy continuations on the same prompt ids the transformers side gets."""
    import onnxruntime_genai as og

    model = og.Model(str(folder))
    found = []
    for prompt in prompts:
        ids = tokenizer(prompt)["input_ids"]
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=len(ids) + new_tokens)
        generator = og.Generator(model, params)
        generator.append_tokens(ids)
        out: list[int] = []
        while not generator.is_done() and len(out) < new_tokens:
            generator.generate_next_token()
            out.append(int(generator.get_next_tokens()[0]))
        found.append(out)
        del generator
    return found
