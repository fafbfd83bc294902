"""Judging a dataset file before anything is allocated for it.

.npz and .safetensors are judged from their headers alone: each array's declared shape times its
itemsize must equal the bytes it really holds, and only numeric dtypes (bool, int, uint, float)
are accepted, so neither a huge declared shape nor a structured or object dtype ever reaches
numpy's reader. JSONL is read a bounded line at a time. Row and field counts are capped.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from compressor.formats.archive import ArchiveLimits, check_archive_totals
from compressor.inputs import LABELS, InvalidDatasetError

NUMERIC_KINDS = "biuf"
MAX_SAFETENSORS_HEADER = 16 * 1024**2
# numpy's own names for safetensors dtypes; bfloat16 and float8 have none, so they are refused.
SAFETENSORS_DTYPES = {
    "BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
    "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8",
}  # fmt: skip
FORMAT_HINT = (
    "upload .npz or .safetensors tensors (named model inputs and optional 'labels'), "
    'or JSONL lines of {"text": ..., "label": ...}'
)


@dataclass(frozen=True)
class DatasetLimits:
    max_rows: int = 2**24
    max_fields: int = 256  # arrays in a tensor file, keys in a JSONL row
    max_line_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class TensorHeader:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def _label(name: str) -> str:
    return repr(name[:64] + ("..." if len(name) > 64 else ""))


def sniff_dataset(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head.lstrip()[:1] == b"{":
        return "jsonl"
    raise InvalidDatasetError(f"unknown dataset format: {FORMAT_HINT}")


def _checked(name: str, shape: tuple[int, ...], dtype: np.dtype[Any], nbytes: int) -> TensorHeader:
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise InvalidDatasetError(
            f"array {_label(name)} has dtype {str(dtype)[:80]}; only bool, integer and float "
            "arrays are accepted"
        )
    if any(d < 0 for d in shape):
        raise InvalidDatasetError(f"array {_label(name)} declares a negative dimension")
    declared = math.prod(shape) * dtype.itemsize
    if declared != nbytes:
        raise InvalidDatasetError(
            f"array {_label(name)} declares shape {list(shape)[:8]} ({declared} bytes) but "
            f"holds {nbytes} bytes"
        )
    return TensorHeader(name, shape, dtype)


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> TensorHeader:
    name = info.filename.removesuffix(".npy")
    if info.is_dir() or not info.filename.endswith(".npy"):
        raise InvalidDatasetError(f"the .npz member {_label(info.filename)} is not an .npy array")
    with zf.open(info) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, TypeError, SyntaxError, EOFError) as exc:
            raise InvalidDatasetError(
                f"the .npz member {_label(info.filename)} has no readable .npy header"
            ) from exc
        return _checked(name, tuple(shape), dtype, info.file_size - fh.tell())


def npz_headers(path: Path, limits: DatasetLimits) -> list[TensorHeader]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            check_archive_totals(len(infos), total, path.stat().st_size, ArchiveLimits())
            _check_fields(len(infos), limits)
            return [_npy_header(zf, info) for info in infos]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise InvalidDatasetError("the .npz file is corrupt or truncated") from exc


def _ints(value: Any, length: int | None = None) -> tuple[int, ...] | None:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    return tuple(value)


def _read_safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    size = path.stat().st_size
    with path.open("rb") as fh:
        length = int.from_bytes(fh.read(8), "little")
        if length > MAX_SAFETENSORS_HEADER or 8 + length > size:
            raise InvalidDatasetError("the safetensors header is longer than the file or the limit")
        raw = fh.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidDatasetError("the safetensors header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise InvalidDatasetError("the safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    return header, size - 8 - length


def safetensors_headers(path: Path, limits: DatasetLimits) -> list[TensorHeader]:
    header, data_bytes = _read_safetensors_header(path)
    _check_fields(len(header), limits)
    tensors, spans = [], []
    for name, entry in header.items():
        entry = entry if isinstance(entry, dict) else {}
        dtype_name, shape = entry.get("dtype"), _ints(entry.get("shape"))
        offsets = _ints(entry.get("data_offsets"), 2)
        if shape is None or offsets is None or not isinstance(dtype_name, str):
            raise InvalidDatasetError(
                f"tensor {_label(name)} has no valid dtype, shape and offsets"
            )
        if dtype_name not in SAFETENSORS_DTYPES:
            raise InvalidDatasetError(
                f"tensor {_label(name)} has dtype {dtype_name[:16]}; only bool, integer and "
                "float tensors with a numpy dtype are accepted (not bfloat16 or float8)"
            )
        begin, end = offsets
        dtype = np.dtype(SAFETENSORS_DTYPES[dtype_name])
        tensors.append(_checked(name, shape, dtype, end - begin))
        spans.append((begin, end))
    # The buffer must be exactly the tensors, back to back, as the safetensors reader requires.
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise InvalidDatasetError("the safetensors tensors overlap or leave gaps")
        position = end
    if position != data_bytes:
        raise InvalidDatasetError("the safetensors data does not match its header's offsets")
    return tensors


def _check_fields(count: int, limits: DatasetLimits) -> None:
    if count > limits.max_fields:
        raise InvalidDatasetError(f"the dataset has more than {limits.max_fields} arrays")


def tensor_inspection(
    kind: str, tensors: list[TensorHeader], limits: DatasetLimits
) -> dict[str, Any]:
    """Sample count and per-array shapes and dtypes, for the dataset resource."""
    if not tensors:
        raise InvalidDatasetError("the dataset holds no arrays")
    if any(not t.shape for t in tensors):
        raise InvalidDatasetError("every array needs a first dimension: one row per sample")
    counts = {t.shape[0] for t in tensors}
    if len(counts) != 1 or 0 in counts:
        raise InvalidDatasetError("the dataset's arrays disagree on the number of samples")
    rows = counts.pop()
    if rows > limits.max_rows:
        raise InvalidDatasetError(f"the dataset has more than {limits.max_rows} rows")
    return {
        "format": kind,
        "samples": rows,
        "has_labels": any(t.name == LABELS for t in tensors),
        "tensors": {t.name: {"shape": list(t.shape), "dtype": str(t.dtype)} for t in tensors},
    }


def _lines(fh: IO[bytes], limits: DatasetLimits) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines, each read with a bound, so a file without newlines is not one huge read."""
    number = 0
    while raw := fh.readline(limits.max_line_bytes + 1):
        number += 1
        if len(raw) > limits.max_line_bytes:
            raise InvalidDatasetError(
                f"JSONL line {number} is longer than {limits.max_line_bytes} bytes"
            )
        if raw.strip():
            yield number, raw


def jsonl_rows(path: Path, limits: DatasetLimits) -> Iterator[tuple[str, int | None]]:
    """(text, label) per row, validated; the row count is capped."""
    with path.open("rb") as fh:
        for rows, (number, raw) in enumerate(_lines(fh, limits), start=1):
            if rows > limits.max_rows:
                raise InvalidDatasetError(f"the JSONL file has more than {limits.max_rows} rows")
            try:
                row = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise InvalidDatasetError(f"JSONL line {number} is not JSON") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise InvalidDatasetError(f'JSONL line {number} needs a string "text" field')
            if len(row) > limits.max_fields:
                raise InvalidDatasetError(
                    f"JSONL line {number} has more than {limits.max_fields} fields"
                )
            label = row.get("label")
            if "label" in row and (not isinstance(label, int) or isinstance(label, bool)):
                raise InvalidDatasetError(f'JSONL line {number}: "label" must be an integer')
            yield row["text"], label


def check_jsonl_labels(rows: int, labelled: int) -> None:
    if not rows:
        raise InvalidDatasetError("the JSONL file holds no rows")
    if labelled and labelled != rows:
        raise InvalidDatasetError("either every JSONL row has a label or none has")


def jsonl_inspection(path: Path, limits: DatasetLimits) -> dict[str, Any]:
    rows = labelled = 0
    for _, label in jsonl_rows(path, limits):
        rows += 1
        labelled += label is not None
    check_jsonl_labels(rows, labelled)
    return {"format": "jsonl", "samples": rows, "has_labels": labelled > 0, "tensors": {}}


def screen_dataset(path: Path, limits: DatasetLimits) -> str:
    """The upload request's check: tensor headers in full, JSONL by its first row only."""
    kind = sniff_dataset(path)
    if kind == "jsonl":
        next(jsonl_rows(path, limits), None)
    else:
        tensor_inspection(kind, tensor_headers(kind, path, limits), limits)
    return kind


def tensor_headers(kind: str, path: Path, limits: DatasetLimits) -> list[TensorHeader]:
    return npz_headers(path, limits) if kind == "npz" else safetensors_headers(path, limits)


def inspect_dataset(path: Path, limits: DatasetLimits) -> dict[str, Any]:
    """The worker's full check, still without loading arrays: JSONL is read row by row."""
    kind = sniff_dataset(path)
    if kind == "jsonl":
        return jsonl_inspection(path, limits)
    return tensor_inspection(kind, tensor_headers(kind, path, limits), limits)
