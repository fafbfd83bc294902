from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.candidate_figures import CandidateFigures
    from ..models.decode_figures import DecodeFigures
    from ..models.generation_figures import GenerationFigures
    from ..models.memory_figures import MemoryFigures
    from ..models.perplexity_figures import PerplexityFigures
    from ..models.scaling_figures import ScalingFigures


T = TypeVar("T", bound="LLMReport")


@_attrs_define
class LLMReport:
    """
    Attributes:
        bits (int):
        calibration (str):
        candidates (list[CandidateFigures]):
        decode (DecodeFigures):
        embeddings (str): How the embedding table and lm_head are stored.
        generation (GenerationFigures):
        group_sizes (list[int]):
        method (str):
        perplexity (PerplexityFigures):
        symmetric (bool):
        activations (None | str | Unset): W8A8 (int8_dynamic): how activations are quantized at run time.
        awq (None | ScalingFigures | Unset): When the chosen method is awq.
        kept_8bit (list[str] | None | Unset): keep_8bit: the linears at 8 bits in an int4 model, by full name.
        memory (MemoryFigures | None | Unset):
        smoothing (None | ScalingFigures | Unset): W8A8 (int8_dynamic): SmoothQuant's migration of activation outliers.
        sparsity (None | str | Unset): nm_sparsity: the pattern and its method.
    """

    bits: int
    calibration: str
    candidates: list[CandidateFigures]
    decode: DecodeFigures
    embeddings: str
    generation: GenerationFigures
    group_sizes: list[int]
    method: str
    perplexity: PerplexityFigures
    symmetric: bool
    activations: None | str | Unset = UNSET
    awq: None | ScalingFigures | Unset = UNSET
    kept_8bit: list[str] | None | Unset = UNSET
    memory: MemoryFigures | None | Unset = UNSET
    smoothing: None | ScalingFigures | Unset = UNSET
    sparsity: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.memory_figures import MemoryFigures  # noqa: PLC0415
        from ..models.scaling_figures import ScalingFigures  # noqa: PLC0415

        bits = self.bits

        calibration = self.calibration

        candidates = []
        for candidates_item_data in self.candidates:
            candidates_item = candidates_item_data.to_dict()
            candidates.append(candidates_item)

        decode = self.decode.to_dict()

        embeddings = self.embeddings

        generation = self.generation.to_dict()

        group_sizes = self.group_sizes

        method = self.method

        perplexity = self.perplexity.to_dict()

        symmetric = self.symmetric

        activations: None | str | Unset
        if isinstance(self.activations, Unset):
            activations = UNSET
        else:
            activations = self.activations

        awq: dict[str, Any] | None | Unset
        if isinstance(self.awq, Unset):
            awq = UNSET
        elif isinstance(self.awq, ScalingFigures):
            awq = self.awq.to_dict()
        else:
            awq = self.awq

        kept_8bit: list[str] | None | Unset
        if isinstance(self.kept_8bit, Unset):
            kept_8bit = UNSET
        elif isinstance(self.kept_8bit, list):
            kept_8bit = self.kept_8bit

        else:
            kept_8bit = self.kept_8bit

        memory: dict[str, Any] | None | Unset
        if isinstance(self.memory, Unset):
            memory = UNSET
        elif isinstance(self.memory, MemoryFigures):
            memory = self.memory.to_dict()
        else:
            memory = self.memory

        smoothing: dict[str, Any] | None | Unset
        if isinstance(self.smoothing, Unset):
            smoothing = UNSET
        elif isinstance(self.smoothing, ScalingFigures):
            smoothing = self.smoothing.to_dict()
        else:
            smoothing = self.smoothing

        sparsity: None | str | Unset
        if isinstance(self.sparsity, Unset):
            sparsity = UNSET
        else:
            sparsity = self.sparsity

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "bits": bits,
                "calibration": calibration,
                "candidates": candidates,
                "decode": decode,
                "embeddings": embeddings,
                "generation": generation,
                "group_sizes": group_sizes,
                "method": method,
                "perplexity": perplexity,
                "symmetric": symmetric,
            }
        )
        if activations is not UNSET:
            field_dict["activations"] = activations
        if awq is not UNSET:
            field_dict["awq"] = awq
        if kept_8bit is not UNSET:
            field_dict["kept_8bit"] = kept_8bit
        if memory is not UNSET:
            field_dict["memory"] = memory
        if smoothing is not UNSET:
            field_dict["smoothing"] = smoothing
        if sparsity is not UNSET:
            field_dict["sparsity"] = sparsity

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.candidate_figures import CandidateFigures  # noqa: PLC0415
        from ..models.decode_figures import DecodeFigures  # noqa: PLC0415
        from ..models.generation_figures import GenerationFigures  # noqa: PLC0415
        from ..models.memory_figures import MemoryFigures  # noqa: PLC0415
        from ..models.perplexity_figures import PerplexityFigures  # noqa: PLC0415
        from ..models.scaling_figures import ScalingFigures  # noqa: PLC0415

        d = dict(src_dict)
        bits = d.pop("bits")

        calibration = d.pop("calibration")

        candidates = []
        _candidates = d.pop("candidates")
        for candidates_item_data in _candidates:
            candidates_item = CandidateFigures.from_dict(candidates_item_data)

            candidates.append(candidates_item)

        decode = DecodeFigures.from_dict(d.pop("decode"))

        embeddings = d.pop("embeddings")

        generation = GenerationFigures.from_dict(d.pop("generation"))

        group_sizes = cast(list[int], d.pop("group_sizes"))

        method = d.pop("method")

        perplexity = PerplexityFigures.from_dict(d.pop("perplexity"))

        symmetric = d.pop("symmetric")

        def _parse_activations(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        activations = _parse_activations(d.pop("activations", UNSET))

        def _parse_awq(data: object) -> None | ScalingFigures | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                awq_type_0 = ScalingFigures.from_dict(data)

                return awq_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ScalingFigures | Unset, data)

        awq = _parse_awq(d.pop("awq", UNSET))

        def _parse_kept_8bit(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                kept_8bit_type_0 = cast(list[str], data)

                return kept_8bit_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        kept_8bit = _parse_kept_8bit(d.pop("kept_8bit", UNSET))

        def _parse_memory(data: object) -> MemoryFigures | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                memory_type_0 = MemoryFigures.from_dict(data)

                return memory_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(MemoryFigures | None | Unset, data)

        memory = _parse_memory(d.pop("memory", UNSET))

        def _parse_smoothing(data: object) -> None | ScalingFigures | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                smoothing_type_0 = ScalingFigures.from_dict(data)

                return smoothing_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ScalingFigures | Unset, data)

        smoothing = _parse_smoothing(d.pop("smoothing", UNSET))

        def _parse_sparsity(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        sparsity = _parse_sparsity(d.pop("sparsity", UNSET))

        llm_report = cls(
            bits=bits,
            calibration=calibration,
            candidates=candidates,
            decode=decode,
            embeddings=embeddings,
            generation=generation,
            group_sizes=group_sizes,
            method=method,
            perplexity=perplexity,
            symmetric=symmetric,
            activations=activations,
            awq=awq,
            kept_8bit=kept_8bit,
            memory=memory,
            smoothing=smoothing,
            sparsity=sparsity,
        )

        return llm_report
