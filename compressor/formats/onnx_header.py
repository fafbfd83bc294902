"""Recognise an ONNX file from its protobuf framing, without loading it.

An ONNX file is one serialized ModelProto. Its top level holds a handful of fields (the graph
is a single length-delimited field however large it is), so walking the top level reads a few
bytes per field and skips each field's body: cost bounded by the field count, not the size.
Whether the graph itself is sound is the worker's inspection, which loads it in full.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

_VARINT, _LEN = 0, 2  # protobuf wire types
# ModelProto (onnx.proto): ir_version, producer_name/version, domain, model_version,
# doc_string, graph, opset_import, metadata_props, training_info, functions, configuration.
_MODEL_FIELDS = {
    1: _VARINT, 2: _LEN, 3: _LEN, 4: _LEN, 5: _VARINT, 6: _LEN, 7: _LEN, 8: _LEN,
    14: _LEN, 20: _LEN, 25: _LEN, 26: _LEN,
}  # fmt: skip
_IR_VERSION, _GRAPH = 1, 7
_MAX_FIELDS = 100_000


class _NotProtobuf(Exception):
    pass


def _varint(fh: BinaryIO) -> int:
    value = 0
    for shift in range(0, 70, 7):
        byte = fh.read(1)
        if not byte:
            raise _NotProtobuf("truncated varint")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
    raise _NotProtobuf("varint longer than 10 bytes")


def looks_like_onnx(path: Path) -> bool:
    """True if ``path`` frames exactly as a ModelProto with an ir_version and a graph."""
    size = path.stat().st_size
    seen: dict[int, int] = {}
    try:
        with path.open("rb") as fh:
            for _ in range(_MAX_FIELDS):
                if fh.tell() == size:
                    break
                tag = _varint(fh)
                number, wire = tag >> 3, tag & 7
                if _MODEL_FIELDS.get(number) != wire:
                    return False
                if wire == _VARINT:
                    seen[number] = _varint(fh)
                    continue
                length = _varint(fh)
                if fh.tell() + length > size:
                    return False
                seen[number] = length
                fh.seek(length, 1)
            else:
                return False
    except _NotProtobuf:
        return False
    return seen.get(_IR_VERSION, 0) > 0 and seen.get(_GRAPH, 0) > 0
