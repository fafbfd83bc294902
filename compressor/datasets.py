"""User datasets: tensors in .npz or .safetensors (named inputs + optional ``labels``), or JSONL text.

Files are untrusted: .npz is read with ``allow_pickle=False`` and safetensors by header, so no
object arrays or code can come in.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from compressor.formats.archive import ArchiveLimits, check_archive_totals
from compressor.formats.detect import inspect_model_dir
from compressor.inputs import LABELS, InvalidDatasetError, inputs_from_arrays
from compressor.target import Target

MAX_JSONL_LINE = 1024 * 1024


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


def sniff_dataset(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head.lstrip()[:1] == b"{":
        return "jsonl"
    raise InvalidDatasetError(
        "unknown dataset format: upload .npz or .safetensors tensors (named model inputs and "
        'optional \'labels\'), or JSONL lines of {"text": ..., "label": ...}'
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidDatasetError(f"the .npz file is corrupt or truncated: {exc}") from exc
    check_archive_totals(
        len(infos), sum(i.file_size for i in infos), path.stat().st_size, ArchiveLimits()
    )
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InvalidDatasetError(f"the .npz file cannot be read safely: {exc}") from exc


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        with safe_open(str(path), framework="numpy") as fh:
            return {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise InvalidDatasetError(f"the safetensors file is not valid: {exc}") from exc


def _read_jsonl(path: Path) -> tuple[list[str], np.ndarray | None]:
    texts: list[str] = []
    labels: list[int] = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if len(raw) > MAX_JSONL_LINE:
                raise InvalidDatasetError(
                    f"JSONL line {number} is longer than {MAX_JSONL_LINE} bytes"
                )
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidDatasetError(f"JSONL line {number} is not JSON: {exc}") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise InvalidDatasetError(f'JSONL line {number} needs a string "text" field')
            texts.append(row["text"])
            if "label" in row:
                if not isinstance(row["label"], int) or isinstance(row["label"], bool):
                    raise InvalidDatasetError(f'JSONL line {number}: "label" must be an integer')
                labels.append(row["label"])
    if not texts:
        raise InvalidDatasetError("the JSONL file holds no rows")
    if labels and len(labels) != len(texts):
        raise InvalidDatasetError("either every JSONL row has a label or none has")
    return texts, np.asarray(labels, dtype=np.int64) if labels else None


def read_dataset(path: Path) -> Dataset:
    kind = sniff_dataset(path)
    if kind == "jsonl":
        texts, labels = _read_jsonl(path)
        return Dataset(arrays=None, texts=texts, labels=labels)
    arrays = _read_npz(path) if kind == "npz" else _read_safetensors(path)
    if not arrays:
        raise InvalidDatasetError("the dataset holds no arrays")
    labels = arrays.get(LABELS)
    return Dataset(arrays=arrays, texts=None, labels=labels)


def inspect_dataset(path: Path) -> dict[str, Any]:
    """Format, sample count and per-array shapes and dtypes, for the dataset resource."""
    kind = sniff_dataset(path)
    data = read_dataset(path)
    if data.texts is not None:
        return {
            "format": "jsonl",
            "samples": len(data.texts),
            "has_labels": data.labels is not None,
            "tensors": {},
        }
    assert data.arrays is not None
    counts = {a.shape[0] if a.ndim else 0 for a in data.arrays.values()}
    if len(counts) != 1 or 0 in counts:
        raise InvalidDatasetError("the dataset's arrays disagree on the number of samples")
    return {
        "format": kind,
        "samples": counts.pop(),
        "has_labels": LABELS in data.arrays,
        "tensors": {
            name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in data.arrays.items()
        },
    }


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
    # Zero-copy stand-ins with the recorded shapes: the check reads no data.
    stand_ins = {
        name: np.broadcast_to(
            np.zeros((), dtype=t["dtype"]), [min(t["shape"][0], 2), *t["shape"][1:]]
        )
        for name, t in dataset["tensors"].items()
    }
    inputs_from_arrays(stand_ins, model_inputs, role=role)


def tokenize_texts(
    tokenizer: Any, texts: list[str], input_names: list[str], *, max_length: int
) -> dict[str, np.ndarray]:
    enc = tokenizer(
        texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="np"
    )
    return {name: np.asarray(enc[name], dtype=np.int64) for name in input_names if name in enc}


def _as_arrays(data: Dataset, encode: Any) -> dict[str, np.ndarray]:
    if data.arrays is not None:
        return data.arrays
    assert data.texts is not None
    tensors: dict[str, np.ndarray] = encode(data.texts)
    return tensors if data.labels is None else {**tensors, LABELS: data.labels}


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
