from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.model_inspection_architecture_args_type_0 import ModelInspectionArchitectureArgsType0
    from ..models.model_inspection_converted_from_type_0 import ModelInspectionConvertedFromType0
    from ..models.model_inspection_dtypes_type_0 import ModelInspectionDtypesType0
    from ..models.model_inspection_opsets_type_0 import ModelInspectionOpsetsType0
    from ..models.model_inspection_torch_conversion_type_0 import ModelInspectionTorchConversionType0
    from ..models.model_inspection_weight_ops_type_0 import ModelInspectionWeightOpsType0
    from ..models.model_inspection_weights_check_type_0 import ModelInspectionWeightsCheckType0
    from ..models.tensor_spec import TensorSpec


T = TypeVar("T", bound="ModelInspection")


@_attrs_define
class ModelInspection:
    """Empty while the model is pending; filled by the worker that inspected it.

    Attributes:
        architecture (None | str | Unset):
        architecture_args (ModelInspectionArchitectureArgsType0 | None | Unset):
        converted_from (ModelInspectionConvertedFromType0 | None | Unset):
        dtypes (ModelInspectionDtypesType0 | None | Unset):
        format_ (None | str | Unset):
        has_tokenizer (bool | None | Unset):
        inputs (list[TensorSpec] | None | Unset):
        model_type (None | str | Unset):
        opsets (ModelInspectionOpsetsType0 | None | Unset):
        outputs (list[TensorSpec] | None | Unset):
        parameters (int | None | Unset):
        producer (None | str | Unset):
        torch_conversion (ModelInspectionTorchConversionType0 | None | Unset):
        weight_bytes (int | None | Unset):
        weight_files (list[str] | None | Unset):
        weight_ops (ModelInspectionWeightOpsType0 | None | Unset):
        weights_check (ModelInspectionWeightsCheckType0 | None | Unset):
    """

    architecture: None | str | Unset = UNSET
    architecture_args: ModelInspectionArchitectureArgsType0 | None | Unset = UNSET
    converted_from: ModelInspectionConvertedFromType0 | None | Unset = UNSET
    dtypes: ModelInspectionDtypesType0 | None | Unset = UNSET
    format_: None | str | Unset = UNSET
    has_tokenizer: bool | None | Unset = UNSET
    inputs: list[TensorSpec] | None | Unset = UNSET
    model_type: None | str | Unset = UNSET
    opsets: ModelInspectionOpsetsType0 | None | Unset = UNSET
    outputs: list[TensorSpec] | None | Unset = UNSET
    parameters: int | None | Unset = UNSET
    producer: None | str | Unset = UNSET
    torch_conversion: ModelInspectionTorchConversionType0 | None | Unset = UNSET
    weight_bytes: int | None | Unset = UNSET
    weight_files: list[str] | None | Unset = UNSET
    weight_ops: ModelInspectionWeightOpsType0 | None | Unset = UNSET
    weights_check: ModelInspectionWeightsCheckType0 | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.model_inspection_architecture_args_type_0 import ModelInspectionArchitectureArgsType0  # noqa: PLC0415
        from ..models.model_inspection_converted_from_type_0 import ModelInspectionConvertedFromType0  # noqa: PLC0415
        from ..models.model_inspection_dtypes_type_0 import ModelInspectionDtypesType0  # noqa: PLC0415
        from ..models.model_inspection_opsets_type_0 import ModelInspectionOpsetsType0  # noqa: PLC0415
        from ..models.model_inspection_torch_conversion_type_0 import ModelInspectionTorchConversionType0  # noqa: PLC0415
        from ..models.model_inspection_weight_ops_type_0 import ModelInspectionWeightOpsType0  # noqa: PLC0415
        from ..models.model_inspection_weights_check_type_0 import ModelInspectionWeightsCheckType0  # noqa: PLC0415

        architecture: None | str | Unset
        if isinstance(self.architecture, Unset):
            architecture = UNSET
        else:
            architecture = self.architecture

        architecture_args: dict[str, Any] | None | Unset
        if isinstance(self.architecture_args, Unset):
            architecture_args = UNSET
        elif isinstance(self.architecture_args, ModelInspectionArchitectureArgsType0):
            architecture_args = self.architecture_args.to_dict()
        else:
            architecture_args = self.architecture_args

        converted_from: dict[str, Any] | None | Unset
        if isinstance(self.converted_from, Unset):
            converted_from = UNSET
        elif isinstance(self.converted_from, ModelInspectionConvertedFromType0):
            converted_from = self.converted_from.to_dict()
        else:
            converted_from = self.converted_from

        dtypes: dict[str, Any] | None | Unset
        if isinstance(self.dtypes, Unset):
            dtypes = UNSET
        elif isinstance(self.dtypes, ModelInspectionDtypesType0):
            dtypes = self.dtypes.to_dict()
        else:
            dtypes = self.dtypes

        format_: None | str | Unset
        if isinstance(self.format_, Unset):
            format_ = UNSET
        else:
            format_ = self.format_

        has_tokenizer: bool | None | Unset
        if isinstance(self.has_tokenizer, Unset):
            has_tokenizer = UNSET
        else:
            has_tokenizer = self.has_tokenizer

        inputs: list[dict[str, Any]] | None | Unset
        if isinstance(self.inputs, Unset):
            inputs = UNSET
        elif isinstance(self.inputs, list):
            inputs = []
            for inputs_type_0_item_data in self.inputs:
                inputs_type_0_item = inputs_type_0_item_data.to_dict()
                inputs.append(inputs_type_0_item)

        else:
            inputs = self.inputs

        model_type: None | str | Unset
        if isinstance(self.model_type, Unset):
            model_type = UNSET
        else:
            model_type = self.model_type

        opsets: dict[str, Any] | None | Unset
        if isinstance(self.opsets, Unset):
            opsets = UNSET
        elif isinstance(self.opsets, ModelInspectionOpsetsType0):
            opsets = self.opsets.to_dict()
        else:
            opsets = self.opsets

        outputs: list[dict[str, Any]] | None | Unset
        if isinstance(self.outputs, Unset):
            outputs = UNSET
        elif isinstance(self.outputs, list):
            outputs = []
            for outputs_type_0_item_data in self.outputs:
                outputs_type_0_item = outputs_type_0_item_data.to_dict()
                outputs.append(outputs_type_0_item)

        else:
            outputs = self.outputs

        parameters: int | None | Unset
        if isinstance(self.parameters, Unset):
            parameters = UNSET
        else:
            parameters = self.parameters

        producer: None | str | Unset
        if isinstance(self.producer, Unset):
            producer = UNSET
        else:
            producer = self.producer

        torch_conversion: dict[str, Any] | None | Unset
        if isinstance(self.torch_conversion, Unset):
            torch_conversion = UNSET
        elif isinstance(self.torch_conversion, ModelInspectionTorchConversionType0):
            torch_conversion = self.torch_conversion.to_dict()
        else:
            torch_conversion = self.torch_conversion

        weight_bytes: int | None | Unset
        if isinstance(self.weight_bytes, Unset):
            weight_bytes = UNSET
        else:
            weight_bytes = self.weight_bytes

        weight_files: list[str] | None | Unset
        if isinstance(self.weight_files, Unset):
            weight_files = UNSET
        elif isinstance(self.weight_files, list):
            weight_files = self.weight_files

        else:
            weight_files = self.weight_files

        weight_ops: dict[str, Any] | None | Unset
        if isinstance(self.weight_ops, Unset):
            weight_ops = UNSET
        elif isinstance(self.weight_ops, ModelInspectionWeightOpsType0):
            weight_ops = self.weight_ops.to_dict()
        else:
            weight_ops = self.weight_ops

        weights_check: dict[str, Any] | None | Unset
        if isinstance(self.weights_check, Unset):
            weights_check = UNSET
        elif isinstance(self.weights_check, ModelInspectionWeightsCheckType0):
            weights_check = self.weights_check.to_dict()
        else:
            weights_check = self.weights_check

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if architecture is not UNSET:
            field_dict["architecture"] = architecture
        if architecture_args is not UNSET:
            field_dict["architecture_args"] = architecture_args
        if converted_from is not UNSET:
            field_dict["converted_from"] = converted_from
        if dtypes is not UNSET:
            field_dict["dtypes"] = dtypes
        if format_ is not UNSET:
            field_dict["format"] = format_
        if has_tokenizer is not UNSET:
            field_dict["has_tokenizer"] = has_tokenizer
        if inputs is not UNSET:
            field_dict["inputs"] = inputs
        if model_type is not UNSET:
            field_dict["model_type"] = model_type
        if opsets is not UNSET:
            field_dict["opsets"] = opsets
        if outputs is not UNSET:
            field_dict["outputs"] = outputs
        if parameters is not UNSET:
            field_dict["parameters"] = parameters
        if producer is not UNSET:
            field_dict["producer"] = producer
        if torch_conversion is not UNSET:
            field_dict["torch_conversion"] = torch_conversion
        if weight_bytes is not UNSET:
            field_dict["weight_bytes"] = weight_bytes
        if weight_files is not UNSET:
            field_dict["weight_files"] = weight_files
        if weight_ops is not UNSET:
            field_dict["weight_ops"] = weight_ops
        if weights_check is not UNSET:
            field_dict["weights_check"] = weights_check

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.model_inspection_architecture_args_type_0 import ModelInspectionArchitectureArgsType0  # noqa: PLC0415
        from ..models.model_inspection_converted_from_type_0 import ModelInspectionConvertedFromType0  # noqa: PLC0415
        from ..models.model_inspection_dtypes_type_0 import ModelInspectionDtypesType0  # noqa: PLC0415
        from ..models.model_inspection_opsets_type_0 import ModelInspectionOpsetsType0  # noqa: PLC0415
        from ..models.model_inspection_torch_conversion_type_0 import ModelInspectionTorchConversionType0  # noqa: PLC0415
        from ..models.model_inspection_weight_ops_type_0 import ModelInspectionWeightOpsType0  # noqa: PLC0415
        from ..models.model_inspection_weights_check_type_0 import ModelInspectionWeightsCheckType0  # noqa: PLC0415
        from ..models.tensor_spec import TensorSpec  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_architecture(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        architecture = _parse_architecture(d.pop("architecture", UNSET))

        def _parse_architecture_args(data: object) -> ModelInspectionArchitectureArgsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                architecture_args_type_0 = ModelInspectionArchitectureArgsType0.from_dict(data)

                return architecture_args_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelInspectionArchitectureArgsType0 | None | Unset, data)

        architecture_args = _parse_architecture_args(d.pop("architecture_args", UNSET))

        def _parse_converted_from(data: object) -> ModelInspectionConvertedFromType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                converted_from_type_0 = ModelInspectionConvertedFromType0.from_dict(data)

                return converted_from_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelInspectionConvertedFromType0 | None | Unset, data)

        converted_from = _parse_converted_from(d.pop("converted_from", UNSET))

        def _parse_dtypes(data: object) -> ModelInspectionDtypesType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                dtypes_type_0 = ModelInspectionDtypesType0.from_dict(data)

                return dtypes_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelInspectionDtypesType0 | None | Unset, data)

        dtypes = _parse_dtypes(d.pop("dtypes", UNSET))

        def _parse_format_(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        format_ = _parse_format_(d.pop("format", UNSET))

        def _parse_has_tokenizer(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        has_tokenizer = _parse_has_tokenizer(d.pop("has_tokenizer", UNSET))

        def _parse_inputs(data: object) -> list[TensorSpec] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                inputs_type_0 = []
                _inputs_type_0 = data
                for inputs_type_0_item_data in _inputs_type_0:
                    inputs_type_0_item = TensorSpec.from_dict(inputs_type_0_item_data)

                    inputs_type_0.append(inputs_type_0_item)

                return inputs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[TensorSpec] | None | Unset, data)

        inputs = _parse_inputs(d.pop("inputs", UNSET))

        def _parse_model_type(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model_type = _parse_model_type(d.pop("model_type", UNSET))

        def _parse_opsets(data: object) -> ModelInspectionOpsetsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                opsets_type_0 = ModelInspectionOpsetsType0.from_dict(data)

                return opsets_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelInspectionOpsetsType0 | None | Unset, data)

        opsets = _parse_opsets(d.pop("opsets", UNSET))

        def _parse_outputs(data: object) -> list[TensorSpec] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                outputs_type_0 = []
                _outputs_type_0 = data
                for outputs_type_0_item_data in _outputs_type_0:
                    outputs_type_0_item = TensorSpec.from_dict(outputs_type_0_item_data)

                    outputs_type_0.append(outputs_type_0_item)

                return outputs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[TensorSpec] | None | Unset, data)

        outputs = _parse_outputs(d.pop("outputs", UNSET))

        def _parse_parameters(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        parameters = _parse_parameters(d.pop("parameters", UNSET))

        def _parse_producer(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        producer = _parse_producer(d.pop("producer", UNSET))

        def _parse_torch_conversion(data: object) -> ModelInspectionTorchConversionType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                torch_conversion_type_0 = ModelInspectionTorchConversionType0.from_dict(data)

                return torch_conversion_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelInspectionTorchConversionType0 | None | Unset, data)

        torch_conversion = _parse_torch_conversion(d.pop("torch_conversion", UNSET))

        def _parse_weight_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        weight_bytes = _parse_weight_bytes(d.pop("weight_bytes", UNSET))

        def _parse_weight_files(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                weight_files_type_0 = cast(list[str], data)

                return weight_files_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        weight_files = _parse_weight_files(d.pop("weight_files", UNSET))

        def _parse_weight_ops(data: object) -> ModelInspectionWeightOpsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                weight_ops_type_0 = ModelInspectionWeightOpsType0.from_dict(data)

                return weight_ops_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelInspectionWeightOpsType0 | None | Unset, data)

        weight_ops = _parse_weight_ops(d.pop("weight_ops", UNSET))

        def _parse_weights_check(data: object) -> ModelInspectionWeightsCheckType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                weights_check_type_0 = ModelInspectionWeightsCheckType0.from_dict(data)

                return weights_check_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ModelInspectionWeightsCheckType0 | None | Unset, data)

        weights_check = _parse_weights_check(d.pop("weights_check", UNSET))

        model_inspection = cls(
            architecture=architecture,
            architecture_args=architecture_args,
            converted_from=converted_from,
            dtypes=dtypes,
            format_=format_,
            has_tokenizer=has_tokenizer,
            inputs=inputs,
            model_type=model_type,
            opsets=opsets,
            outputs=outputs,
            parameters=parameters,
            producer=producer,
            torch_conversion=torch_conversion,
            weight_bytes=weight_bytes,
            weight_files=weight_files,
            weight_ops=weight_ops,
            weights_check=weights_check,
        )

        model_inspection.additional_properties = d
        return model_inspection

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
