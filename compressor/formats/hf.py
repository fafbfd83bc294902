"""Hugging Face model directories: inspection without executing code, and loading from safetensors."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from compressor.errors import InvalidModelError, UnsupportedModelError

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "merges.txt",
    "vocab.json",
    "sentencepiece.bpe.model",
    "spiece.model",
)


@dataclass(frozen=True)
class HFInspection:
    architecture: str
    model_type: str
    parameters: int
    dtypes: dict[str, int]
    weight_files: list[str]
    weight_bytes: int
    has_tokenizer: bool
    input_names: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": "huggingface",
            "architecture": self.architecture,
            "model_type": self.model_type,
            "parameters": self.parameters,
            "dtypes": self.dtypes,
            "weight_files": self.weight_files,
            "weight_bytes": self.weight_bytes,
            "has_tokenizer": self.has_tokenizer,
            "input_names": self.input_names,
        }


def read_config(root: Path) -> dict[str, Any]:
    try:
        config = json.loads((root / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidModelError(f"config.json is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or "model_type" not in config:
        raise InvalidModelError("config.json has no 'model_type': not a Hugging Face config")
    return config


# Models whose position ids start after the padding index (pad_token_id + 1), so the last
# pad_token_id + 1 rows of the position table are out of reach of a sequence.
_PADDING_OFFSET_POSITIONS = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer",
     "roberta-prelayernorm", "ibert", "mpnet", "markuplm", "layoutlmv3"}
)  # fmt: skip


def max_sequence_length(config: dict[str, Any]) -> int | None:
    """The most tokens the model takes, from config.json's position table size; None if it
    names none. Past it an absolute position embedding has no row (a RuntimeError mid-job)."""
    limit = config.get("max_position_embeddings", config.get("n_positions"))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return None
    if config.get("model_type") in _PADDING_OFFSET_POSITIONS:
        pad = config.get("pad_token_id")
        limit -= (pad if isinstance(pad, int) and not isinstance(pad, bool) else 1) + 1
    return limit if limit >= 1 else None


def inspect_hf_dir(root: Path) -> HFInspection:
    """Read config and safetensors headers only; nothing from the upload is executed."""
    config = read_config(root)
    weight_files = sorted(root.glob("*.safetensors"))
    if not weight_files:
        if any(root.glob("*.bin")) or any(root.glob("*.pt")) or any(root.glob("*.pth")):
            raise InvalidModelError(
                "the model's weights are pickled (.bin/.pt), which can execute code when "
                "loaded; upload *.safetensors weights instead (model.save_pretrained(..., "
                "safe_serialization=True))"
            )
        raise InvalidModelError("the archive holds no *.safetensors weights")
    parameters = 0
    dtypes: dict[str, int] = {}
    for path in weight_files:
        try:
            with safe_open(str(path), framework="numpy") as fh:
                for key in fh.keys():  # noqa: SIM118 (safe_open is not iterable)
                    sl = fh.get_slice(key)
                    count = 1
                    for dim in sl.get_shape():
                        count *= dim
                    parameters += count
                    dtype = sl.get_dtype()
                    dtypes[dtype] = dtypes.get(dtype, 0) + count
        except (SafetensorError, OSError, ValueError, TypeError) as exc:
            raise InvalidModelError(f"{path.name} is not a valid safetensors file: {exc}") from exc
    has_tokenizer = (root / "tokenizer.json").exists() or (root / "vocab.txt").exists()
    architectures = config.get("architectures") or ["AutoModel"]
    return HFInspection(
        architecture=str(architectures[0]),
        model_type=str(config["model_type"]),
        parameters=parameters,
        dtypes=dtypes,
        weight_files=[p.name for p in weight_files],
        weight_bytes=sum(p.stat().st_size for p in weight_files),
        has_tokenizer=has_tokenizer,
    )


def _model_class(config: dict[str, Any]) -> Any:
    """The class config.json names, when transformers has it; AutoModel otherwise."""
    import transformers

    arch_name = (config.get("architectures") or [None])[0]
    model_cls = getattr(transformers, str(arch_name), None) if arch_name else None
    if model_cls is None or not hasattr(model_cls, "from_pretrained"):
        model_cls = transformers.AutoModel
    return model_cls


def check_weights_fit_config(root: Path) -> dict[str, Any]:
    """Build the architecture config.json describes on the meta device (no memory, no weights)
    and check that the safetensors tensors fit it.

    Without this a mismatched upload is "ready" and fails in a job later, or worse, loads with
    layers silently left at random initialisation.
    """
    import torch
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(
            str(root), local_files_only=True, trust_remote_code=False
        )
        model_cls = _model_class(read_config(root))
        with torch.device("meta"):
            model = (
                model_cls.from_config(config)
                if model_cls is transformers.AutoModel
                else model_cls(config)
            )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        if "custom code" in str(exc):  # its message names our directory: not for the user
            raise UnsupportedModelError(
                "config.json needs custom code shipped with the upload (auto_map), and uploaded "
                "code is never run: upload a model_type that transformers includes"
            ) from exc
        reason = str(exc).replace(f"{root}/", "").replace(str(root), "the upload")
        raise UnsupportedModelError(
            f"transformers cannot build this architecture: {reason}"
        ) from exc
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    stored = _stored_shapes(root)
    prefix = f"{model.base_model_prefix}." if model.base_model_prefix else ""
    if prefix and not any(k.startswith(prefix) for k in expected):
        # A base-model checkpoint saved from a model with a head carries the head's prefix.
        stored = {k.removeprefix(prefix): v for k, v in stored.items()}
    common = sorted(stored.keys() & expected.keys())
    wrong = [k for k in common if stored[k] != expected[k]]
    if wrong:
        first = wrong[0]
        raise InvalidModelError(
            f"the weights do not fit config.json: {first} is {list(stored[first])} in the "
            f"safetensors file but {list(expected[first])} for this config"
            + (f" ({len(wrong) - 1} more tensors differ)" if len(wrong) > 1 else "")
        )
    if not common:
        raise InvalidModelError(
            "none of the safetensors tensors belong to the architecture config.json describes"
        )
    missing = sorted(set(expected) - set(stored))
    return {"tensors_matched": len(common), "missing": missing[:10], "missing_count": len(missing)}


def _stored_shapes(root: Path) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for path in sorted(root.glob("*.safetensors")):
        with safe_open(str(path), framework="numpy") as fh:
            for key in fh.keys():  # noqa: SIM118 (safe_open is not iterable)
                shapes[key] = tuple(fh.get_slice(key).get_shape())
    return shapes


def load_hf_model(root: Path) -> Any:
    """Load with the architecture named in config.json, from safetensors only, no remote code."""
    model_cls = _model_class(read_config(root))
    try:
        model = model_cls.from_pretrained(
            str(root),
            use_safetensors=True,
            local_files_only=True,
            trust_remote_code=False,
            attn_implementation="eager",
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise UnsupportedModelError(f"transformers cannot load this model: {exc}") from exc
    return model.eval()


def load_tokenizer(root: Path) -> Any | None:
    """Built-in tokenizer classes only. Left to decide, transformers would ask on stdin (for
    15 s, in a worker's main thread) whether to run code shipped with the upload."""
    from transformers import AutoTokenizer

    if not ((root / "tokenizer.json").exists() or (root / "vocab.txt").exists()):
        return None
    try:
        return AutoTokenizer.from_pretrained(
            str(root), local_files_only=True, trust_remote_code=False
        )
    except ValueError as exc:
        if "custom code" in str(exc):  # its message names our directory: not for the user
            raise InvalidModelError(
                "the tokenizer needs custom code shipped with the upload (auto_map in "
                "tokenizer_config.json), and uploaded code is never run: name a tokenizer_class "
                "that transformers includes"
            ) from exc
        raise InvalidModelError(f"the tokenizer files cannot be loaded: {exc}") from exc
    except (OSError, KeyError) as exc:
        raise InvalidModelError(f"the tokenizer files cannot be loaded: {exc}") from exc


def copy_side_files(src: Path, dest: Path, *, include_config: bool) -> None:
    """Tokenizer (and optionally config) files travel with every artifact so it runs as uploaded."""
    names = list(TOKENIZER_FILES) + (["config.json"] if include_config else [])
    for name in names:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)
