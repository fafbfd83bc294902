from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.compressed_model import CompressedModel
    from ..models.delivered_artifact import DeliveredArtifact
    from ..models.fidelity import Fidelity
    from ..models.llm_report import LLMReport
    from ..models.measurement import Measurement
    from ..models.original_model import OriginalModel
    from ..models.ran_on import RanOn
    from ..models.search_report import SearchReport
    from ..models.step_report import StepReport
    from ..models.target import Target


T = TypeVar("T", bound="CompressionReport")


@_attrs_define
class CompressionReport:
    """
    Attributes:
        compressed (CompressedModel):
        compression_ratio (float):
        fidelity (Fidelity):
        measurement (Measurement):
        original (OriginalModel):
        speedup_p50 (float):
        steps (list[StepReport]):
        target (Target): Where the compressed model will run; latency is measured at these shapes on this runtime.
        archive_compression_ratio (float | None | Unset):
        artifact (DeliveredArtifact | None | Unset):
        llm (LLMReport | None | Unset):
        ran_on (None | RanOn | Unset):
        search (None | SearchReport | Unset):
        version (int | Unset):  Default: 1.
        warnings (list[str] | Unset):
    """

    compressed: CompressedModel
    compression_ratio: float
    fidelity: Fidelity
    measurement: Measurement
    original: OriginalModel
    speedup_p50: float
    steps: list[StepReport]
    target: Target
    archive_compression_ratio: float | None | Unset = UNSET
    artifact: DeliveredArtifact | None | Unset = UNSET
    llm: LLMReport | None | Unset = UNSET
    ran_on: None | RanOn | Unset = UNSET
    search: None | SearchReport | Unset = UNSET
    version: int | Unset = 1
    warnings: list[str] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.delivered_artifact import DeliveredArtifact  # noqa: PLC0415
        from ..models.llm_report import LLMReport  # noqa: PLC0415
        from ..models.ran_on import RanOn  # noqa: PLC0415
        from ..models.search_report import SearchReport  # noqa: PLC0415

        compressed = self.compressed.to_dict()

        compression_ratio = self.compression_ratio

        fidelity = self.fidelity.to_dict()

        measurement = self.measurement.to_dict()

        original = self.original.to_dict()

        speedup_p50 = self.speedup_p50

        steps = []
        for steps_item_data in self.steps:
            steps_item = steps_item_data.to_dict()
            steps.append(steps_item)

        target = self.target.to_dict()

        archive_compression_ratio: float | None | Unset
        if isinstance(self.archive_compression_ratio, Unset):
            archive_compression_ratio = UNSET
        else:
            archive_compression_ratio = self.archive_compression_ratio

        artifact: dict[str, Any] | None | Unset
        if isinstance(self.artifact, Unset):
            artifact = UNSET
        elif isinstance(self.artifact, DeliveredArtifact):
            artifact = self.artifact.to_dict()
        else:
            artifact = self.artifact

        llm: dict[str, Any] | None | Unset
        if isinstance(self.llm, Unset):
            llm = UNSET
        elif isinstance(self.llm, LLMReport):
            llm = self.llm.to_dict()
        else:
            llm = self.llm

        ran_on: dict[str, Any] | None | Unset
        if isinstance(self.ran_on, Unset):
            ran_on = UNSET
        elif isinstance(self.ran_on, RanOn):
            ran_on = self.ran_on.to_dict()
        else:
            ran_on = self.ran_on

        search: dict[str, Any] | None | Unset
        if isinstance(self.search, Unset):
            search = UNSET
        elif isinstance(self.search, SearchReport):
            search = self.search.to_dict()
        else:
            search = self.search

        version = self.version

        warnings: list[str] | Unset = UNSET
        if not isinstance(self.warnings, Unset):
            warnings = self.warnings

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "compressed": compressed,
                "compression_ratio": compression_ratio,
                "fidelity": fidelity,
                "measurement": measurement,
                "original": original,
                "speedup_p50": speedup_p50,
                "steps": steps,
                "target": target,
            }
        )
        if archive_compression_ratio is not UNSET:
            field_dict["archive_compression_ratio"] = archive_compression_ratio
        if artifact is not UNSET:
            field_dict["artifact"] = artifact
        if llm is not UNSET:
            field_dict["llm"] = llm
        if ran_on is not UNSET:
            field_dict["ran_on"] = ran_on
        if search is not UNSET:
            field_dict["search"] = search
        if version is not UNSET:
            field_dict["version"] = version
        if warnings is not UNSET:
            field_dict["warnings"] = warnings

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.compressed_model import CompressedModel  # noqa: PLC0415
        from ..models.delivered_artifact import DeliveredArtifact  # noqa: PLC0415
        from ..models.fidelity import Fidelity  # noqa: PLC0415
        from ..models.llm_report import LLMReport  # noqa: PLC0415
        from ..models.measurement import Measurement  # noqa: PLC0415
        from ..models.original_model import OriginalModel  # noqa: PLC0415
        from ..models.ran_on import RanOn  # noqa: PLC0415
        from ..models.search_report import SearchReport  # noqa: PLC0415
        from ..models.step_report import StepReport  # noqa: PLC0415
        from ..models.target import Target  # noqa: PLC0415

        d = dict(src_dict)
        compressed = CompressedModel.from_dict(d.pop("compressed"))

        compression_ratio = d.pop("compression_ratio")

        fidelity = Fidelity.from_dict(d.pop("fidelity"))

        measurement = Measurement.from_dict(d.pop("measurement"))

        original = OriginalModel.from_dict(d.pop("original"))

        speedup_p50 = d.pop("speedup_p50")

        steps = []
        _steps = d.pop("steps")
        for steps_item_data in _steps:
            steps_item = StepReport.from_dict(steps_item_data)

            steps.append(steps_item)

        target = Target.from_dict(d.pop("target"))

        def _parse_archive_compression_ratio(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        archive_compression_ratio = _parse_archive_compression_ratio(d.pop("archive_compression_ratio", UNSET))

        def _parse_artifact(data: object) -> DeliveredArtifact | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                artifact_type_0 = DeliveredArtifact.from_dict(data)

                return artifact_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DeliveredArtifact | None | Unset, data)

        artifact = _parse_artifact(d.pop("artifact", UNSET))

        def _parse_llm(data: object) -> LLMReport | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                llm_type_0 = LLMReport.from_dict(data)

                return llm_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(LLMReport | None | Unset, data)

        llm = _parse_llm(d.pop("llm", UNSET))

        def _parse_ran_on(data: object) -> None | RanOn | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                ran_on_type_0 = RanOn.from_dict(data)

                return ran_on_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RanOn | Unset, data)

        ran_on = _parse_ran_on(d.pop("ran_on", UNSET))

        def _parse_search(data: object) -> None | SearchReport | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                search_type_0 = SearchReport.from_dict(data)

                return search_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SearchReport | Unset, data)

        search = _parse_search(d.pop("search", UNSET))

        version = d.pop("version", UNSET)

        warnings = cast(list[str], d.pop("warnings", UNSET))

        compression_report = cls(
            compressed=compressed,
            compression_ratio=compression_ratio,
            fidelity=fidelity,
            measurement=measurement,
            original=original,
            speedup_p50=speedup_p50,
            steps=steps,
            target=target,
            archive_compression_ratio=archive_compression_ratio,
            artifact=artifact,
            llm=llm,
            ran_on=ran_on,
            search=search,
            version=version,
            warnings=warnings,
        )

        return compression_report
