"""What kind of model an unpacked upload is, and what it holds, from headers only.

Nothing here unpickles, imports user code or loads weights: safetensors headers, JSON configs
and the ONNX protobuf (without its external data) are read, and that is all.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from compressor.errors import InvalidModelError
from compressor.formats.bounds import NAME_CHARS, bounded_tree
from compressor.llm.inspect import causal_lm_facts, is_causal_lm

ModelKind = Literal["huggingface", "onnx", "architecture"]

SAFE_FORMATS = (
    "a Hugging Face directory (config.json + *.safetensors), an ONNX model (.onnx, with its "
    "external data files beside it), or architecture.json + model.safetensors"
)
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
_ZIP_MAGIC = b"PK\x03\x04"


def _looks_pickled(path: Path) -> bool:
    """torch.save writes a zip holding data.pkl (or, in old versions, a raw pickle)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head.startswith(_ZIP_MAGIC) or (len(head) >= 2 and head[0] == 0x80 and head[1] <= 5)


def _refuse_pickle(name: str) -> InvalidModelError:
    return InvalidModelError(
        f"{name} is a pickled (torch.save) file, which can execute code when loaded and is "
        f"never opened here; upload one of the safe formats instead: {SAFE_FORMATS}"
    )


def find_onnx_file(root: Path) -> Path | None:
    if root.is_file():
        return root if root.suffix == ".onnx" else None
    files = sorted(p for p in root.glob("*.onnx") if p.is_file())
    if not files:
        return None
    if (root / "model.onnx") in files:
        return root / "model.onnx"
    if len(files) > 1:
        raise InvalidModelError(
            f"the upload holds {len(files)} .onnx files ({', '.join(p.name for p in files[:5])}); "
            "upload one model (name it model.onnx)"
        )
    return files[0]


def detect_kind(root: Path) -> ModelKind:
    """Decide the format by the files present; refuse pickles and empty uploads."""
    from compressor.zoo import ARCHITECTURE_FILE, WEIGHTS_FILE

    if root.is_file():
        if root.suffix == ".onnx":
            return "onnx"
        raise InvalidModelError(f"{root.name} is not a model; expected {SAFE_FORMATS}")
    if not root.is_dir():
        raise InvalidModelError("the model folder does not exist")
    if (root / "config.json").is_file():
        return "huggingface"
    if (root / ARCHITECTURE_FILE).is_file():
        return "architecture"
    if find_onnx_file(root) is not None:
        return "onnx"
    pickled = sorted(p.name for p in root.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickled:
        raise _refuse_pickle(pickled[0])
    if any(root.glob("*.safetensors")):
        raise InvalidModelError(
            f"safetensors weights alone do not say which model they belong to; add "
            f"config.json (Hugging Face) or {ARCHITECTURE_FILE} naming an architecture "
            f'(e.g. {{"family": "mlp", "args": {{...}}}}) beside {WEIGHTS_FILE}'
        )
    raise InvalidModelError(f"no model found: expected {SAFE_FORMATS}")


def safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from the header; the library checks the file is complete."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise InvalidModelError(f"{path.name} is missing")
    if path.stat().st_size == 0:
        raise InvalidModelError(f"{path.name} is empty")
    if _looks_pickled(path):
        raise _refuse_pickle(path.name)
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    try:
        with safe_open(str(path), framework="numpy") as fh:
            for key in fh.keys():  # noqa: SIM118 (safe_open is not iterable)
                sl = fh.get_slice(key)
                out[key] = (str(sl.get_dtype()), tuple(int(d) for d in sl.get_shape()))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise InvalidModelError(f"{path.name} is not a valid safetensors file: {exc}") from exc
    return out


def _count(header: dict[str, tuple[str, tuple[int, ...]]]) -> tuple[int, dict[str, int]]:
    dtypes: dict[str, int] = {}
    for dtype, shape in header.values():
        dtypes[dtype] = dtypes.get(dtype, 0) + math.prod(shape)
    return sum(dtypes.values()), dtypes


def _inspect_architecture(root: Path) -> dict[str, Any]:
    from compressor.zoo import WEIGHTS_FILE, check_state_dict, read_architecture

    spec = read_architecture(root)
    weights = root / WEIGHTS_FILE
    if not weights.is_file():
        pickled = sorted(p.name for p in root.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        if pickled:
            raise _refuse_pickle(pickled[0])
        raise InvalidModelError(f"{WEIGHTS_FILE} is missing beside architecture.json")
    header = safetensors_header(weights)
    check_state_dict(spec, {k: shape for k, (_dtype, shape) in header.items()})
    parameters, dtypes = _count(header)
    return {
        "format": "architecture",
        "architecture": spec.label,
        "architecture_args": spec.describe()["args"],
        "parameters": parameters,
        "dtypes": dtypes,
        "weight_files": [WEIGHTS_FILE],
        "weight_bytes": weights.stat().st_size,
        "inputs": [i.as_dict() for i in spec.inputs()],
    }


def _hf_inputs(root: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    names: list[str] = ["input_ids", "attention_mask"]
    tok_config = root / "tokenizer_config.json"
    if tok_config.is_file():
        try:
            declared = json.loads(tok_config.read_text()).get("model_input_names")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            declared = None
        if isinstance(declared, list) and all(isinstance(n, str) for n in declared):
            names = list(declared)
    if any(len(n) > NAME_CHARS for n in names):  # a name is how the model is fed: not shortened
        raise InvalidModelError(f"an input name is longer than {NAME_CHARS} characters")
    elif int(config.get("type_vocab_size", 0) or 0) > 1:
        names.append("token_type_ids")
    return [{"name": n, "shape": [None, None], "dtype": "int64"} for n in names]


def _inspect_hf(root: Path) -> dict[str, Any]:
    from compressor.formats.hf import inspect_hf_dir, max_sequence_length, read_config

    for path in sorted(root.glob("*.safetensors")):
        if _looks_pickled(path):
            raise _refuse_pickle(path.name)
    found = inspect_hf_dir(root).as_dict()
    found.pop("input_names", None)
    config = read_config(root)
    found["inputs"] = _hf_inputs(root, config)
    limit = max_sequence_length(config)
    if limit is not None:  # a job's target.sequence_length is checked against it at submission
        found["max_sequence_length"] = limit
    if is_causal_lm(config):  # the API says which steps and runtimes apply by this
        found["kind"] = "causal_lm"
        found["causal_lm"] = causal_lm_facts(
            config, dtypes=found["dtypes"], weight_bytes=found["weight_bytes"]
        )
    return found


def inspect_model_dir(root: Path) -> dict[str, Any]:
    """Format, architecture, parameters, dtypes and inputs of an unpacked upload.

    Raises InvalidModelError for anything unusable, with a message for the uploader.
    """
    kind = detect_kind(root)
    if kind == "huggingface":
        return bounded_tree(_inspect_hf(root))
    if kind == "architecture":
        return bounded_tree(_inspect_architecture(root))
    from compressor.formats.onnx_io import inspect_onnx

    path = find_onnx_file(root)
    assert path is not None
    return bounded_tree(inspect_onnx(path))
