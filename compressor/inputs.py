"""Evaluation inputs: the same fixed inputs feed fidelity and latency for original and result.

Inputs that calibrate or train a step never judge it: measurement uses a separate set (the
user's evaluation data, a held-out share of the calibration data, or a second fixed set).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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

# Judges jobs without data; never used to calibrate or train. Written apart from the set above
# and not tuned on any model's results.
HELD_OUT_SENTENCES = (
    "The ferry to the island runs twice a day in winter.",
    "Why does my code compile on Linux but fail on Windows?",
    "Grandpa keeps his old records in a wooden box under the stairs.",
    "The central bank raised its forecast for inflation next year.",
    "A thin layer of frost covered the cars parked along the street.",
    "Add two eggs, then whisk the batter until it is smooth.",
    "The referee stopped the game after the floodlights failed.",
    "Enzymes speed up chemical reactions without being consumed.",
    "We regret to inform you that your application was unsuccessful.",
    "The hikers reached the summit just before the clouds rolled in.",
    "Is there a pharmacy open on Sunday somewhere in this town?",
    "The orchestra tuned their instruments while the audience settled.",
    "Shares of the chipmaker jumped nine percent in early trading.",
    "My neighbour's dog barks whenever the postman walks by.",
    "Compilers translate source code into instructions a processor can run.",
    "The river burst its banks and flooded the lower part of the village.",
    "Please attach a copy of your passport to the registration form.",
    "Volcanic ash grounded hundreds of flights across northern Europe.",
    "The toddler giggled as the bubbles floated across the garden.",
    "Our quarterly survey shows that customers want faster delivery.",
    "Bats navigate in the dark by listening to the echoes of their calls.",
    "The hotel room was small, but the view of the harbour was wonderful.",
    "Turn left at the second roundabout and the office is on your right.",
    "Vaccines train the immune system to recognise a specific pathogen.",
    "The detective noticed that the clock on the wall had stopped at noon.",
    "Wind turbines produced a record share of the country's electricity.",
    "I have been trying to learn the guitar, but my fingers still hurt.",
    "The city council approved a new bicycle lane along the main avenue.",
    "Old maps often showed sea monsters in the unexplored parts of the ocean.",
    "Restart the router and wait a minute before you reconnect.",
    "The bakery on the corner sells out of croissants by eight o'clock.",
    "Glaciers in the Alps have lost a large part of their volume since 1900.",
)

InputRole = Literal["calibration", "measurement"]

# A calibration set is split only when both parts stay useful.
HELD_OUT_SHARE = 0.25
MIN_ROWS_TO_SPLIT = 8


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

    @property
    def rows(self) -> int:
        return int(next(iter(self.tensors.values())).shape[0])

    def take(self, rows: np.ndarray, source: str) -> EvalInputs:
        return EvalInputs({k: v[rows] for k, v in self.tensors.items()}, source)

    def row_digests(self) -> list[bytes]:
        """One hash per sample over every model input, to find rows two sets share."""
        names = sorted(k for k in self.tensors if k != LABELS)
        digests = []
        for i in range(self.rows):
            h = hashlib.blake2b(digest_size=16)
            for name in names:
                row = np.ascontiguousarray(self.tensors[name][i])
                h.update(f"{name}:{row.dtype}:{row.shape}".encode())
                h.update(row.tobytes())
            digests.append(h.digest())
        return digests

    def shared_rows(self, other: EvalInputs) -> int:
        """How many of these rows also occur in ``other`` (same values for every input)."""
        theirs = set(other.row_digests())
        return sum(d in theirs for d in self.row_digests())


def held_out_rows(n: int) -> np.ndarray | None:
    """Sorted row indices of a fixed ~25% share of ``n`` rows, or None if too few to split.

    A seeded permutation rather than the tail: uploaded sets are often sorted by class.
    """
    if n < MIN_ROWS_TO_SPLIT:
        return None
    count = max(2, round(n * HELD_OUT_SHARE))
    return np.sort(np.random.default_rng(0).permutation(n)[:count])


def text_inputs(
    tokenizer: Any,
    input_names: list[str],
    *,
    sequence_length: int,
    count: int | None = None,
    sentences: tuple[str, ...] = SAMPLE_SENTENCES,
    label: str = "fixed English sentences",
) -> EvalInputs:
    chosen = list(sentences[: count or len(sentences)])
    tensors = tokenize_texts(tokenizer, chosen, input_names, max_length=sequence_length)
    return EvalInputs(tensors, f"{len(chosen)} {label}, tokenized")


def tokenize_texts(
    tokenizer: Any, texts: list[str], input_names: list[str], *, max_length: int
) -> dict[str, np.ndarray]:
    enc = tokenizer(
        texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="np"
    )
    return {name: np.asarray(enc[name], dtype=np.int64) for name in input_names if name in enc}


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
    return EvalInputs(
        tensors, f"{count} generated token sequences, seed {seed} (no tokenizer shipped)"
    )


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
    return EvalInputs(
        tensors, f"{count} generated inputs of the declared shapes, seed {seed} (no dataset)"
    )


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


Labelled = tuple[EvalInputs, np.ndarray | None]


@dataclass(frozen=True)
class InputPlan:
    """What calibrates the steps, what measures the result, and the report's account of both."""

    calibration: EvalInputs
    measurement: EvalInputs
    labels: np.ndarray | None
    calibration_report: dict[str, Any]
    measurement_report: dict[str, Any]


def _split_calibration(
    data: Labelled,
) -> tuple[EvalInputs, EvalInputs, np.ndarray | None, str] | None:
    inputs, labels = data
    n = inputs.rows
    rows = held_out_rows(n)
    if rows is None:
        return None
    keep = np.setdiff1d(np.arange(n), rows)
    held = inputs.take(rows, f"{rows.size} of {n} supplied calibration samples, held out")
    calibration = inputs.take(
        keep, f"{keep.size} of {n} supplied calibration samples ({rows.size} held out)"
    )
    held_labels = labels[rows] if labels is not None else None
    return calibration, held, held_labels, "calibration_data (held-out share)"


def _overlaps(
    measurement: EvalInputs, seen: list[tuple[str, EvalInputs]]
) -> tuple[list[str], dict[str, str]]:
    """The sets the measured rows are disjoint from, and a note for each one they are not."""
    shared: dict[str, int] = {}
    for name, other in seen:
        shared[name] = shared.get(name, 0) + measurement.shared_rows(other)
    n = measurement.rows
    notes = {
        name: (
            f"all {n} measured rows are also {name} inputs: figures are on {name} data"
            if count >= n
            else f"{count} of {n} measured rows are also {name} inputs: figures are partly "
            f"on {name} data"
        )
        for name, count in shared.items()
        if count
    }
    return sorted(name for name, count in shared.items() if not count), notes


def plan_inputs(
    *,
    calibration: Labelled | None,
    evaluation: Labelled | None,
    training: EvalInputs | None,
    training_texts: EvalInputs | None,
    defaults: Callable[[InputRole], EvalInputs],
) -> InputPlan:
    """Calibration: ``calibration``, else ``training``, else the defaults' calibration set.
    Measurement: ``evaluation``, else a held-out share of ``calibration``, else the defaults'
    held-out set. ``defaults(role)`` gives the inputs for a job without data."""
    notes: list[str] = []
    measured: Labelled | None = evaluation
    meas_source = "eval_data"
    if calibration is not None:
        cal, cal_source = calibration[0], "calibration_data"
        if evaluation is None:
            split = _split_calibration(calibration)
            if split is None:
                measured, meas_source = calibration, "calibration_data"
                notes.append(
                    f"figures are on calibration data: its {cal.rows} rows are too few to hold "
                    f"out a share (at least {MIN_ROWS_TO_SPLIT} are needed); supply eval data "
                    "for held-out figures"
                )
            else:
                cal, held, held_labels, meas_source = split
                measured = (held, held_labels)
    elif training is not None:
        cal = EvalInputs(
            {k: v for k, v in training.tensors.items() if k != LABELS}, training.source
        )
        cal_source = "training_data"
    else:
        cal, cal_source = defaults("calibration"), "default"
    if measured is None:
        measured, meas_source = (defaults("measurement"), None), "default (held-out set)"
    measurement, labels = measured
    trained = [t for t in (training, training_texts) if t is not None]
    seen = [("calibration", cal), *(("training", t) for t in trained)]
    disjoint, overlap = _overlaps(measurement, seen)
    if meas_source == "calibration_data":
        overlap.pop("calibration", None)  # said above, with the reason
    notes.extend(overlap.values())
    held_out = not overlap and meas_source != "calibration_data"
    if held_out:
        notes.append(
            "no measured row was used to calibrate"
            + (" or train" if trained else "")
            + "; fidelity, accuracy and latency are all on these rows"
        )
    return InputPlan(
        calibration=cal,
        measurement=measurement,
        labels=labels,
        calibration_report={"source": cal_source, "description": cal.source, "rows": cal.rows},
        measurement_report={
            "source": meas_source,
            "description": measurement.source,
            "rows": measurement.rows,
            "labelled": labels is not None,
            "held_out": held_out,
            "disjoint_from": disjoint,
            "note": " ".join(notes),
        },
    )


Arrays = dict[str, np.ndarray]


def training_inputs(train_data: Arrays | None, specs: list[dict[str, Any]]) -> EvalInputs | None:
    """A job's training arrays as inputs, class labels (when given) under ``LABELS``."""
    if train_data is None:
        return None
    inputs, labels = inputs_from_arrays(train_data, specs, role="training")
    tensors = dict(inputs.tensors)
    if labels is not None:
        tensors[LABELS] = labels
    return EvalInputs(tensors, inputs.source)


def plan_job_inputs(
    *,
    specs: list[dict[str, Any]],
    tokenizer: Any | None,
    sequence_length: int,
    defaults: Callable[[InputRole], EvalInputs],
    calibration_data: Arrays | None,
    eval_data: Arrays | None,
    train: EvalInputs | None,
    train_texts: Sequence[str] | None,
) -> InputPlan:
    """``plan_inputs`` from a job's arrays and sentences, checked against the model's inputs.

    Training sentences are encoded as the measurement encodes text, so rows can be compared.
    """
    texts = None
    if train_texts and tokenizer is not None:
        names = [s["name"] for s in specs]
        encoded = tokenize_texts(tokenizer, list(train_texts), names, max_length=sequence_length)
        texts = EvalInputs(encoded, f"{len(train_texts)} training sentences")
    return plan_inputs(
        calibration=(
            inputs_from_arrays(calibration_data, specs, role="calibration")
            if calibration_data is not None
            else None
        ),
        evaluation=(
            inputs_from_arrays(eval_data, specs, role="evaluation")
            if eval_data is not None
            else None
        ),
        training=train,
        training_texts=texts,
        defaults=defaults,
    )
