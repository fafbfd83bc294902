"""Evaluation inputs: the same fixed inputs feed fidelity and latency for original and result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from compressor.errors import CompressionError

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


class InvalidDatasetError(CompressionError):
    """User-supplied data does not fit the model (names, shapes, dtypes, size)."""


LABELS = "labels"

_INTEGER_KINDS = "iu"


def generated_tensor_inputs(
    specs: list[dict[str, Any]], *, count: int = 64, seed: int = 0
) -> EvalInputs:
    """Random inputs of the declared shapes, for models shipped without data.

    Float inputs are standard normal; integer inputs (token ids without a tokenizer) small
    non-negative ids; ``attention_mask`` ones. Symbolic dimensions past the batch get 8.
    """
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for spec in specs:
        dims = [d if isinstance(d, int) and d > 0 else 8 for d in list(spec["shape"])[1:]]
        shape = (count, *dims)
        dtype = np.dtype(spec.get("dtype", "float32"))
        if spec["name"] == "attention_mask":
            tensors[spec["name"]] = np.ones(shape, dtype=dtype)
        elif dtype.kind in _INTEGER_KINDS:
            tensors[spec["name"]] = rng.integers(0, 100, shape).astype(dtype)
        elif dtype.kind == "b":
            tensors[spec["name"]] = np.ones(shape, dtype=dtype)
        else:
            tensors[spec["name"]] = rng.standard_normal(shape).astype(dtype)
    return EvalInputs(tensors, f"{count} generated inputs of the declared shapes (no dataset)")


def inputs_from_arrays(
    data: dict[str, np.ndarray], specs: list[dict[str, Any]], *, role: str
) -> tuple[EvalInputs, np.ndarray | None]:
    """Check user arrays against the model's declared inputs; split off ``labels``.

    ``specs`` are the model's inputs as ``{"name", "shape", "dtype"}`` (``None`` or a string
    for a free dimension). Extra names, missing names, wrong ranks or fixed sizes, and
    mismatched sample counts raise InvalidDatasetError naming the problem.
    """
    arrays = {k: np.asarray(v) for k, v in data.items()}
    labels = arrays.pop(LABELS, None)
    if not arrays:
        raise InvalidDatasetError(f"the {role} data holds no model inputs")
    declared = {s["name"]: s for s in specs}
    unknown = sorted(set(arrays) - set(declared))
    if unknown:
        raise InvalidDatasetError(
            f"the {role} data has arrays {unknown} the model does not take; "
            f"its inputs are {sorted(declared)} (plus optional {LABELS!r})"
        )
    counts = {name: arr.shape[0] if arr.ndim else 0 for name, arr in arrays.items()}
    if labels is not None:
        counts[LABELS] = labels.shape[0] if labels.ndim else 0
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise InvalidDatasetError(f"the {role} arrays disagree on the number of samples: {counts}")
    tensors: dict[str, np.ndarray] = {}
    for name, spec in declared.items():
        if name not in arrays:
            if name in ("attention_mask", "token_type_ids") and "input_ids" in arrays:
                continue  # filled in below from input_ids
            raise InvalidDatasetError(f"the {role} data lacks the model input {name!r}")
        arr = arrays[name]
        shape = list(spec["shape"])
        if arr.ndim != len(shape):
            raise InvalidDatasetError(
                f"{role} input {name!r} has {arr.ndim} dimensions, the model takes {len(shape)}"
            )
        for axis, (got, want) in enumerate(zip(arr.shape[1:], shape[1:], strict=True), start=1):
            if isinstance(want, int) and want > 0 and got != want:
                raise InvalidDatasetError(
                    f"{role} input {name!r} has size {got} on axis {axis}, the model needs {want}"
                )
        want_dtype = np.dtype(spec.get("dtype", "float32"))
        if want_dtype.kind != arr.dtype.kind and not (
            want_dtype.kind == "f" and arr.dtype.kind in _INTEGER_KINDS
        ):
            raise InvalidDatasetError(
                f"{role} input {name!r} is {arr.dtype}, the model takes {want_dtype}"
            )
        tensors[name] = np.ascontiguousarray(arr.astype(want_dtype, copy=False))
    if "input_ids" in tensors:
        ids = tensors["input_ids"]
        if "attention_mask" in declared and "attention_mask" not in tensors:
            tensors["attention_mask"] = np.ones_like(ids)
        if "token_type_ids" in declared and "token_type_ids" not in tensors:
            tensors["token_type_ids"] = np.zeros_like(ids)
    if labels is not None:
        if labels.ndim != 1 or labels.dtype.kind not in _INTEGER_KINDS:
            raise InvalidDatasetError(
                f"{role} {LABELS!r} must be a 1-D integer array of class ids, got "
                f"{labels.dtype} with shape {list(labels.shape)}"
            )
        labels = labels.astype(np.int64)
    n = next(iter(tensors.values())).shape[0]
    return EvalInputs(tensors, f"{n} supplied {role} samples"), labels
