from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="DecodeFigures")


@_attrs_define
class DecodeFigures:
    """
    Attributes:
        device (str):
        new_tokens (int):
        note (str):
        runtime (str): What generated: onnxruntime-genai, or transformers.
        tokens_per_s_compressed (float):
        tokens_per_s_original (float):
        ttft_ms_compressed (float):
        ttft_ms_original (float):
    """

    device: str
    new_tokens: int
    note: str
    runtime: str
    tokens_per_s_compressed: float
    tokens_per_s_original: float
    ttft_ms_compressed: float
    ttft_ms_original: float

    def to_dict(self) -> dict[str, Any]:
        device = self.device

        new_tokens = self.new_tokens

        note = self.note

        runtime = self.runtime

        tokens_per_s_compressed = self.tokens_per_s_compressed

        tokens_per_s_original = self.tokens_per_s_original

        ttft_ms_compressed = self.ttft_ms_compressed

        ttft_ms_original = self.ttft_ms_original

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "device": device,
                "new_tokens": new_tokens,
                "note": note,
                "runtime": runtime,
                "tokens_per_s_compressed": tokens_per_s_compressed,
                "tokens_per_s_original": tokens_per_s_original,
                "ttft_ms_compressed": ttft_ms_compressed,
                "ttft_ms_original": ttft_ms_original,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        device = d.pop("device")

        new_tokens = d.pop("new_tokens")

        note = d.pop("note")

        runtime = d.pop("runtime")

        tokens_per_s_compressed = d.pop("tokens_per_s_compressed")

        tokens_per_s_original = d.pop("tokens_per_s_original")

        ttft_ms_compressed = d.pop("ttft_ms_compressed")

        ttft_ms_original = d.pop("ttft_ms_original")

        decode_figures = cls(
            device=device,
            new_tokens=new_tokens,
            note=note,
            runtime=runtime,
            tokens_per_s_compressed=tokens_per_s_compressed,
            tokens_per_s_original=tokens_per_s_original,
            ttft_ms_compressed=ttft_ms_compressed,
            ttft_ms_original=ttft_ms_original,
        )

        return decode_figures
