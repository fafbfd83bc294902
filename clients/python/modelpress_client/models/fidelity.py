from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="Fidelity")


@_attrs_define
class Fidelity:
    """
    Attributes:
        cosine_mean (float):
        cosine_min (float):
        max_abs_error (float):
        samples (int):
        accuracy_compressed (float | None | Unset):
        accuracy_original (float | None | Unset):
        kl_divergence (float | None | Unset):
        top1_agreement (float | None | Unset):
    """

    cosine_mean: float
    cosine_min: float
    max_abs_error: float
    samples: int
    accuracy_compressed: float | None | Unset = UNSET
    accuracy_original: float | None | Unset = UNSET
    kl_divergence: float | None | Unset = UNSET
    top1_agreement: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        cosine_mean = self.cosine_mean

        cosine_min = self.cosine_min

        max_abs_error = self.max_abs_error

        samples = self.samples

        accuracy_compressed: float | None | Unset
        if isinstance(self.accuracy_compressed, Unset):
            accuracy_compressed = UNSET
        else:
            accuracy_compressed = self.accuracy_compressed

        accuracy_original: float | None | Unset
        if isinstance(self.accuracy_original, Unset):
            accuracy_original = UNSET
        else:
            accuracy_original = self.accuracy_original

        kl_divergence: float | None | Unset
        if isinstance(self.kl_divergence, Unset):
            kl_divergence = UNSET
        else:
            kl_divergence = self.kl_divergence

        top1_agreement: float | None | Unset
        if isinstance(self.top1_agreement, Unset):
            top1_agreement = UNSET
        else:
            top1_agreement = self.top1_agreement

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "cosine_mean": cosine_mean,
                "cosine_min": cosine_min,
                "max_abs_error": max_abs_error,
                "samples": samples,
            }
        )
        if accuracy_compressed is not UNSET:
            field_dict["accuracy_compressed"] = accuracy_compressed
        if accuracy_original is not UNSET:
            field_dict["accuracy_original"] = accuracy_original
        if kl_divergence is not UNSET:
            field_dict["kl_divergence"] = kl_divergence
        if top1_agreement is not UNSET:
            field_dict["top1_agreement"] = top1_agreement

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        cosine_mean = d.pop("cosine_mean")

        cosine_min = d.pop("cosine_min")

        max_abs_error = d.pop("max_abs_error")

        samples = d.pop("samples")

        def _parse_accuracy_compressed(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        accuracy_compressed = _parse_accuracy_compressed(d.pop("accuracy_compressed", UNSET))

        def _parse_accuracy_original(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        accuracy_original = _parse_accuracy_original(d.pop("accuracy_original", UNSET))

        def _parse_kl_divergence(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        kl_divergence = _parse_kl_divergence(d.pop("kl_divergence", UNSET))

        def _parse_top1_agreement(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        top1_agreement = _parse_top1_agreement(d.pop("top1_agreement", UNSET))

        fidelity = cls(
            cosine_mean=cosine_mean,
            cosine_min=cosine_min,
            max_abs_error=max_abs_error,
            samples=samples,
            accuracy_compressed=accuracy_compressed,
            accuracy_original=accuracy_original,
            kl_divergence=kl_divergence,
            top1_agreement=top1_agreement,
        )

        return fidelity
