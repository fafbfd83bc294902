"""User datasets: tensors in .npz or .safetensors (named inputs + optional ``labels``), or JSONL text.

Files are untrusted: they are judged from their headers first (compressor/dataset_headers.py),
then .npz is read with ``allow_pickle=False`` and safetensors by header, so no object arrays or
code can come in and no array is allocated from an unchecked shape.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from compressor.dataset_headers import (
    NUMERIC_KINDS,
    DatasetLimits,
    check_jsonl_labels,
    jsonl_rows,
    sniff_dataset,
    tensor_headers,
    tensor_inspection,
)
from compressor.formats.detect import inspect_model_dir
from compressor.inputs import LABELS, InvalidDatasetError, inputs_from_arrays, tokenize_texts
from compressor.llm.inspect import LLM_RUNTIMES
from compressor.target import Target

# Caps on rows and fields are the inspection's; the job reads what was accepted.
JOB_TIME_LIMITS = DatasetLimits(max_rows=2**62, max_fields=2**62)


class DatasetRole(StrEnum):
    """What a job's dataset is for; each keeps its role (the engine picks what stands in)."""

    CALIBRATION = "calibration"
    EVAL = "eval"
    TRAIN = "train"


@dataclass(frozen=True)
class Dataset:
    arrays: dict[str, np.ndarray] | None
    texts: list[str] | None
    labels: np.ndarray | None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InvalidDatasetError("the .npz file cannot be read safely") from exc


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        with safe_open(str(path), framework="numpy") as fh:
            return {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise InvalidDatasetError("the safetensors file is not valid") from exc


def read_dataset(path: Path) -> Dataset:
    """Load a dataset a worker has inspected. Its headers are judged again before numpy reads
    it (cheap), so an array is never allocated from a shape nobody checked; the row caps were
    applied at inspection, with the deployment's settings."""
    kind = sniff_dataset(path)
    if kind == "jsonl":
        rows = list(jsonl_rows(path, JOB_TIME_LIMITS))
        labels = [label for _, label in rows if label is not None]
        check_jsonl_labels(len(rows), len(labels))
        return Dataset(
            arrays=None,
            texts=[text for text, _ in rows],
            labels=np.asarray(labels, dtype=np.int64) if labels else None,
        )
    tensor_inspection(kind, tensor_headers(kind, path, JOB_TIME_LIMITS), JOB_TIME_LIMITS)
    arrays = _read_npz(path) if kind == "npz" else _read_safetensors(path)
    return Dataset(arrays=arrays, texts=None, labels=arrays.get(LABELS))


def _numeric_dtype(name: str) -> bool:
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError):
        return False
    return dtype.kind in NUMERIC_KINDS and dtype.fields is None


def check_dataset_fits(
    dataset: dict[str, Any], model_inputs: list[dict[str, Any]], *, has_tokenizer: bool, role: str
) -> None:
    """Raise InvalidDatasetError if a dataset (by its inspection) cannot feed the model."""
    if dataset["format"] == "jsonl":
        if not has_tokenizer:
            raise InvalidDatasetError(
                f"the {role} dataset is text, but the model ships no tokenizer to encode it"
            )
        return
    for name, t in dataset["tensors"].items():
        # Rows recorded before dtypes were checked at inspection may hold a structured dtype.
        if not _numeric_dtype(str(t["dtype"])):
            raise InvalidDatasetError(
                f"the {role} dataset's array {name!r} has dtype {t['dtype']}; only bool, integer "
                "and float arrays are accepted"
            )
    # Zero-copy stand-ins with the recorded shapes: the check reads no data.
    stand_ins = {
        name: np.broadcast_to(
            np.zeros((), dtype=t["dtype"]), [min(t["shape"][0], 2), *t["shape"][1:]]
        )
        for name, t in dataset["tensors"].items()
    }
    inputs_from_arrays(stand_ins, model_inputs, role=role)


def _as_arrays(data: Dataset, encode: Any) -> dict[str, np.ndarray]:
    if data.arrays is not None:
        return data.arrays
    assert data.texts is not None
    tensors: dict[str, np.ndarray] = encode(data.texts)
    return tensors if data.labels is None else {**tensors, LABELS: data.labels}


def _llm_texts(loaded: Mapping[DatasetRole, Any]) -> dict[str, Any]:
    """A causal LM calibrates and is judged on plain text (perplexity), not tokenized rows."""
    kwargs: dict[str, Any] = {}
    for role, keyword in (
        (DatasetRole.CALIBRATION, "calibration_texts"),
        (DatasetRole.EVAL, "eval_texts"),
    ):
        if role not in loaded:
            continue
        texts = loaded[role].texts
        if texts is None:
            raise InvalidDatasetError(
                f"the {role.value} dataset must be text for a causal LM: JSONL rows "
                '{"text": "..."}, one document each'
            )
        kwargs[keyword] = list(texts)
    if DatasetRole.TRAIN in loaded:
        raise InvalidDatasetError(
            "a causal LM on an LLM runtime takes data.calibration and data.eval (text); "
            "data.train has no step to feed"
        )
    return kwargs


def job_inputs(
    source_dir: Path, datasets_by_role: Mapping[str, Path], target: Target
) -> dict[str, Any]:
    """compress_model keyword arguments from a job's dataset files, by role.

    Text is tokenized with the model's own tokenizer at the target's sequence length. No set
    stands in for another here: without an eval set, compress_model holds out calibration rows.
    Unlabelled training text stays text (``train_texts``) for steps that train on sentences.
    """
    loaded = {DatasetRole(role): read_dataset(path) for role, path in datasets_by_role.items()}
    if not loaded:
        return {}
    if target.runtime in LLM_RUNTIMES:
        return _llm_texts(loaded)

    @cache
    def tokenizer_and_names() -> tuple[Any, list[str]]:
        from compressor.formats.hf import load_tokenizer

        tokenizer = load_tokenizer(source_dir)
        if tokenizer is None:
            raise InvalidDatasetError("the dataset is text, but the model ships no tokenizer")
        return tokenizer, [i["name"] for i in inspect_model_dir(source_dir).get("inputs", [])]

    def encode(texts: list[str]) -> dict[str, np.ndarray]:
        tokenizer, names = tokenizer_and_names()
        return tokenize_texts(tokenizer, texts, names, max_length=target.sequence_length)

    kwargs: dict[str, Any] = {}
    for role, keyword in (
        (DatasetRole.CALIBRATION, "calibration_data"),
        (DatasetRole.EVAL, "eval_data"),
    ):
        if role in loaded:
            kwargs[keyword] = _as_arrays(loaded[role], encode)
    train = loaded.get(DatasetRole.TRAIN)
    if train is not None:
        if train.texts is not None and train.labels is None:
            kwargs["train_texts"] = train.texts
        else:
            kwargs["train_data"] = _as_arrays(train, encode)
    return kwargs
