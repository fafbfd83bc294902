from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="GenerationFigures")


@_attrs_define
class GenerationFigures:
    """
    Attributes:
        agreed_mean (float):
        agreed_tokens (list[int]): Per prompt: greedy tokens equal to the original's before the first divergence.
        fully_agreed (int):
        new_tokens (int):
        prompts (int):
    """

    agreed_mean: float
    agreed_tokens: list[int]
    fully_agreed: int
    new_tokens: int
    prompts: int

    def to_dict(self) -> dict[str, Any]:
        agreed_mean = self.agreed_mean

        agreed_tokens = self.agreed_tokens

        fully_agreed = self.fully_agreed

        new_tokens = self.new_tokens

        prompts = self.prompts

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "agreed_mean": agreed_mean,
                "agreed_tokens": agreed_tokens,
                "fully_agreed": fully_agreed,
                "new_tokens": new_tokens,
                "prompts": prompts,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        agreed_mean = d.pop("agreed_mean")

        agreed_tokens = cast(list[int], d.pop("agreed_tokens"))

        fully_agreed = d.pop("fully_agreed")

        new_tokens = d.pop("new_tokens")

        prompts = d.pop("prompts")

        generation_figures = cls(
            agreed_mean=agreed_mean,
            agreed_tokens=agreed_tokens,
            fully_agreed=fully_agreed,
            new_tokens=new_tokens,
            prompts=prompts,
        )

        return generation_figures
