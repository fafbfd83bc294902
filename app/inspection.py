"""What inspection found in an upload, typed for clients, and returned exactly as stored.

Which keys an inspection holds depends on the format (a Hugging Face folder, an ONNX graph, an
architecture.json, a dataset), so every field is optional and unknown keys pass through.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class AsStored(BaseModel):
    """Serialises only the keys the stored JSON had, so typing it changes no response."""

    model_config = ConfigDict(extra="allow")

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # No return annotation: one would replace this model's JSON schema with a bare object.
        kept = self.model_fields_set | set(self.model_extra or {})
        return {k: v for k, v in handler(self).items() if k in kept}


class TensorSpec(AsStored):
    """A model input or output: its name, shape (symbolic or unknown dimensions as names or
    null) and dtype."""

    name: str
    shape: list[int | str | None]
    dtype: str


class ModelInspection(AsStored):
    """Empty while the model is pending; filled by the worker that inspected it."""

    format: str | None = None
    architecture: str | None = None
    model_type: str | None = None
    architecture_args: dict[str, Any] | None = None
    parameters: int | None = None
    dtypes: dict[str, int] | None = None
    weight_files: list[str] | None = None
    weight_bytes: int | None = None
    has_tokenizer: bool | None = None
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None
    opsets: dict[str, int] | None = None
    producer: str | None = None
    weight_ops: dict[str, Any] | None = None
    torch_conversion: dict[str, Any] | None = None
    converted_from: dict[str, Any] | None = None
    weights_check: dict[str, Any] | None = None


class DatasetTensor(AsStored):
    shape: list[int]
    dtype: str


class DatasetInspection(AsStored):
    """Format, sample count, whether labels are present, and each array's shape and dtype
    (empty for JSONL text)."""

    format: str | None = None
    samples: int | None = None
    has_labels: bool | None = None
    tensors: dict[str, DatasetTensor] | None = None
