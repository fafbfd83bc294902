from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.calibration_inputs import CalibrationInputs
    from ..models.fidelity_inputs import FidelityInputs


T = TypeVar("T", bound="Measurement")


@_attrs_define
class Measurement:
    """
    Attributes:
        fresh_process (bool):
        inputs (str):
        iterations (int):
        labelled (bool):
        sequence_length (int):
        threads (int):
        training_data (None | str):
        warmup (int):
        calibration_inputs (CalibrationInputs | None | Unset):
        fidelity_inputs (FidelityInputs | None | Unset):
    """

    fresh_process: bool
    inputs: str
    iterations: int
    labelled: bool
    sequence_length: int
    threads: int
    training_data: None | str
    warmup: int
    calibration_inputs: CalibrationInputs | None | Unset = UNSET
    fidelity_inputs: FidelityInputs | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.calibration_inputs import CalibrationInputs  # noqa: PLC0415
        from ..models.fidelity_inputs import FidelityInputs  # noqa: PLC0415

        fresh_process = self.fresh_process

        inputs = self.inputs

        iterations = self.iterations

        labelled = self.labelled

        sequence_length = self.sequence_length

        threads = self.threads

        training_data: None | str
        training_data = self.training_data

        warmup = self.warmup

        calibration_inputs: dict[str, Any] | None | Unset
        if isinstance(self.calibration_inputs, Unset):
            calibration_inputs = UNSET
        elif isinstance(self.calibration_inputs, CalibrationInputs):
            calibration_inputs = self.calibration_inputs.to_dict()
        else:
            calibration_inputs = self.calibration_inputs

        fidelity_inputs: dict[str, Any] | None | Unset
        if isinstance(self.fidelity_inputs, Unset):
            fidelity_inputs = UNSET
        elif isinstance(self.fidelity_inputs, FidelityInputs):
            fidelity_inputs = self.fidelity_inputs.to_dict()
        else:
            fidelity_inputs = self.fidelity_inputs

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "fresh_process": fresh_process,
                "inputs": inputs,
                "iterations": iterations,
                "labelled": labelled,
                "sequence_length": sequence_length,
                "threads": threads,
                "training_data": training_data,
                "warmup": warmup,
            }
        )
        if calibration_inputs is not UNSET:
            field_dict["calibration_inputs"] = calibration_inputs
        if fidelity_inputs is not UNSET:
            field_dict["fidelity_inputs"] = fidelity_inputs

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.calibration_inputs import CalibrationInputs  # noqa: PLC0415
        from ..models.fidelity_inputs import FidelityInputs  # noqa: PLC0415

        d = dict(src_dict)
        fresh_process = d.pop("fresh_process")

        inputs = d.pop("inputs")

        iterations = d.pop("iterations")

        labelled = d.pop("labelled")

        sequence_length = d.pop("sequence_length")

        threads = d.pop("threads")

        def _parse_training_data(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        training_data = _parse_training_data(d.pop("training_data"))

        warmup = d.pop("warmup")

        def _parse_calibration_inputs(data: object) -> CalibrationInputs | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                calibration_inputs_type_0 = CalibrationInputs.from_dict(data)

                return calibration_inputs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(CalibrationInputs | None | Unset, data)

        calibration_inputs = _parse_calibration_inputs(d.pop("calibration_inputs", UNSET))

        def _parse_fidelity_inputs(data: object) -> FidelityInputs | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                fidelity_inputs_type_0 = FidelityInputs.from_dict(data)

                return fidelity_inputs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(FidelityInputs | None | Unset, data)

        fidelity_inputs = _parse_fidelity_inputs(d.pop("fidelity_inputs", UNSET))

        measurement = cls(
            fresh_process=fresh_process,
            inputs=inputs,
            iterations=iterations,
            labelled=labelled,
            sequence_length=sequence_length,
            threads=threads,
            training_data=training_data,
            warmup=warmup,
            calibration_inputs=calibration_inputs,
            fidelity_inputs=fidelity_inputs,
        )

        return measurement
