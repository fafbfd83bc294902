"""Evaluation inputs: the same fixed inputs feed fidelity and latency for original and result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Fixed English sentences so every job measures fidelity on the same real text.
SAMPLE_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Model compression trades a little accuracy for a lot of speed.",
    "A cat sat on the warm windowsill watching the rain.",
    "Quarterly revenue grew by twelve percent compared with last year.",
    "How do I reset my password if I no longer have access to my email?",
    "The mitochondria is the powerhouse of the cell.",
    "Please deliver the package to the back door after six o'clock.",
    "Neural networks learn representations from large amounts of data.",
    "She played the violin at the concert hall on Saturday evening.",
    "Interest rates are expected to remain unchanged this quarter.",
    "The museum opens at nine and closes at five on weekdays.",
    "Can you recommend a good Italian restaurant near the station?",
    "Heavy snowfall closed the mountain pass for three days.",
    "The patient reported mild headaches and occasional dizziness.",
    "Our team shipped the new search feature ahead of schedule.",
    "Photosynthesis converts light energy into chemical energy.",
    "He forgot his umbrella and got soaked on the way home.",
    "The contract must be signed by both parties before Friday.",
    "Solar panels are becoming cheaper and more efficient every year.",
    "I would like to book a table for four people tonight.",
    "The library has an extensive collection of rare manuscripts.",
    "Traffic on the highway was slow because of an accident.",
    "Learning a new language takes patience and daily practice.",
    "The stock market fell sharply after the announcement.",
    "Children were playing football in the park all afternoon.",
    "This laptop's battery lasts about ten hours on a single charge.",
    "The chef added a pinch of salt to bring out the flavour.",
    "Astronomers discovered a planet orbiting a distant star.",
    "Remember to water the plants while I am away on holiday.",
    "The software update fixed several security vulnerabilities.",
    "A gentle breeze carried the scent of pine through the valley.",
    "The committee will announce its decision next Monday.",
)


@dataclass(frozen=True)
class EvalInputs:
    """Named numpy inputs; ``source`` says where they came from, for the report."""

    tensors: dict[str, np.ndarray]
    source: str

    def batches(self, batch_size: int) -> list[dict[str, np.ndarray]]:
        n = next(iter(self.tensors.values())).shape[0]
        return [
            {k: v[i : i + batch_size] for k, v in self.tensors.items()}
            for i in range(0, n, batch_size)
        ]

    def head(self, batch_size: int) -> dict[str, np.ndarray]:
        return {k: v[:batch_size] for k, v in self.tensors.items()}


def text_inputs(
    tokenizer: Any, input_names: list[str], *, sequence_length: int, count: int | None = None
) -> EvalInputs:
    sentences = list(SAMPLE_SENTENCES[: count or len(SAMPLE_SENTENCES)])
    enc = tokenizer(
        sentences,
        padding="max_length",
        truncation=True,
        max_length=sequence_length,
        return_tensors="np",
    )
    tensors = {name: np.asarray(enc[name], dtype=np.int64) for name in input_names if name in enc}
    return EvalInputs(tensors, f"{len(sentences)} fixed English sentences, tokenized")


def generated_token_inputs(
    input_names: list[str], *, vocab_size: int, sequence_length: int, count: int = 32, seed: int = 0
) -> EvalInputs:
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name in input_names:
        if name == "input_ids":
            tensors[name] = rng.integers(0, vocab_size, (count, sequence_length), dtype=np.int64)
        elif name == "attention_mask":
            tensors[name] = np.ones((count, sequence_length), dtype=np.int64)
        else:
            tensors[name] = np.zeros((count, sequence_length), dtype=np.int64)
    return EvalInputs(tensors, f"{count} generated token sequences (no tokenizer shipped)")
