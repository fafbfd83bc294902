from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

from ..models.quantization_config_calibration_method import QuantizationConfigCalibrationMethod
from ..models.quantization_config_embedding_bits import QuantizationConfigEmbeddingBits
from ..models.quantization_config_group_size_type_0 import QuantizationConfigGroupSizeType0
from ..models.quantization_config_method import QuantizationConfigMethod
from ..models.quantization_config_scheme import QuantizationConfigScheme
from ..models.quantization_config_small_table_bits import QuantizationConfigSmallTableBits
from ..models.quantization_config_weight_dtype import QuantizationConfigWeightDtype
from ..types import UNSET, Unset

T = TypeVar("T", bound="QuantizationConfig")


@_attrs_define
class QuantizationConfig:
    """
    Attributes:
        calibration_method (QuantizationConfigCalibrationMethod | Unset): int8_static: how activation ranges are set
            from the calibration inputs. auto: on convolutional graphs, each method is tried and the one with the best
            fidelity on a held-out slice of the calibration inputs is kept; minmax on MatMul-only graphs. Default:
            QuantizationConfigCalibrationMethod.AUTO.
        embedding_bits (QuantizationConfigEmbeddingBits | Unset): int8_dynamic: bits of the largest (vocabulary)
            embedding table. A causal LM for onnxruntime-genai: bits of its LM head and embedding table (4: quantized with
            the layers' method, groups of 16; 8: the GenAI builder's round to nearest). Default:
            QuantizationConfigEmbeddingBits.VALUE_8.
        exclude (list[str] | Unset): Node-name substrings to keep in float, e.g. sensitive layers.
        float_fallback (int | Unset): int8_dynamic/int8_static: keep this many MatMuls (convolutional graphs: layers) in
            float, the ones with the largest measured int8 error on the calibration inputs. Unset on a convolutional graph
            with no bound set, the step keeps float only the layers that stay within 3% of the fully int8 graph's measured
            p50, the most faithful such choice (report: tradeoff). Default: 0.
        group_size (None | QuantizationConfigGroupSizeType0 | Unset): Weight-only schemes: weights per quantization
            group (default 128).
        keep_8bit (list[str] | Unset): A causal LM's int4_weight_only for vllm or llama.cpp: Linear layers kept at 8
            bits (symmetric, same groups), named by suffix ('mlp.down_proj', 'self_attn.v_proj'), full name, or a layer's
            prefix ('model.layers.0'). Each name must match at least one Linear. llama.cpp's Q4_K_M keeps attention values
            and MLP down projections at higher precision for the same reason: they lose the most at 4 bits.
        max_output_error (float | Unset): int8_static on convolutional graphs, dense outputs (maps, embeddings): the
            bound on relative output error (L2) on held-out calibration rows, met with the fewest float layers. Unset, 0.05
            is reported against, not enforced. Default: 0.05.
        method (QuantizationConfigMethod | Unset): Causal LMs (runtimes vllm, onnxruntime-genai, llama.cpp), weight-only
            schemes: how weights are rounded. gptq: GPTQ with act-order, layer by layer on the calibration text; awq:
            activation-aware scaling (each norm/linear feeding a group of linears scaled per channel, searched for the
            lowest output error), then round to nearest; rtn: round to nearest; auto: all three, keeping the one with the
            lowest perplexity on the held-out quarter of the calibration text. int8_dynamic on a causal LM (vllm, W8A8): rtn
            or gptq after SmoothQuant (auto tries both). Default: QuantizationConfigMethod.AUTO.
        min_top1_agreement (float | Unset): int8_static on convolutional graphs, classifier outputs: the most sensitive
            layers stay float until top-1 agreement with the original on held-out calibration rows reaches this, even where
            that makes the model slower (the report's tradeoff table says what each point cost). Unset, 0.98 is reported
            against, not enforced. Default: 0.98.
        per_channel (bool | Unset):  Default: True.
        quantize_embeddings (bool | Unset): int8_dynamic: store embedding tables quantized too (weight-only). Default:
            True.
        scheme (QuantizationConfigScheme | Unset):  Default: QuantizationConfigScheme.INT8_DYNAMIC.
        small_table_bits (QuantizationConfigSmallTableBits | Unset): int8_dynamic: bits of the other embedding tables
            (positions, token types). 4 stores them block-wise (GatherBlockQuantized), which saved 74 KB on all-MiniLM-L6-v2
            but cost about 0.3 ms of its 15 ms at batch 1. Default: QuantizationConfigSmallTableBits.VALUE_8.
        smoothing (float | Unset): int8_dynamic/int8_static: SmoothQuant migration strength alpha; 0 disables. Moves
            activation outliers into the per-channel-quantized weights (outlier channels only shrink; none is amplified).
            The smoothed and the plain int8 graph are both built, and held-out calibration rows keep the one nearer the
            float output. A causal LM (int8_dynamic for vllm, W8A8): the largest alpha tried; each norm/linear feeding a
            group of linears keeps the alpha up to it, or none, whose int8 output lies nearest the float one on the
            calibration text. Default: 0.8.
        symmetric (bool | None | Unset): Causal LMs, weight-only schemes: a grid symmetric around zero (no zero points).
            Default: the runtime's (vllm symmetric, as its kernels and the compressed-tensors loader read it; onnxruntime-
            genai asymmetric, which loses less).
        technique (Literal['quantization'] | Unset):  Default: 'quantization'.
        version (int | Unset):  Default: 1.
        weight_dtype (QuantizationConfigWeightDtype | Unset): int8_dynamic/int8_static: storage type of the 8-bit
            weights. x86 CPUs without VNNI multiply uint8 x int8 with 16-bit saturation, which costs accuracy; uint8 weights
            use kernels that do not saturate. auto: int8 on the worker's CPU when it has VNNI, uint8 otherwise. Default:
            QuantizationConfigWeightDtype.AUTO.
    """

    calibration_method: QuantizationConfigCalibrationMethod | Unset = QuantizationConfigCalibrationMethod.AUTO
    embedding_bits: QuantizationConfigEmbeddingBits | Unset = QuantizationConfigEmbeddingBits.VALUE_8
    exclude: list[str] | Unset = UNSET
    float_fallback: int | Unset = 0
    group_size: None | QuantizationConfigGroupSizeType0 | Unset = UNSET
    keep_8bit: list[str] | Unset = UNSET
    max_output_error: float | Unset = 0.05
    method: QuantizationConfigMethod | Unset = QuantizationConfigMethod.AUTO
    min_top1_agreement: float | Unset = 0.98
    per_channel: bool | Unset = True
    quantize_embeddings: bool | Unset = True
    scheme: QuantizationConfigScheme | Unset = QuantizationConfigScheme.INT8_DYNAMIC
    small_table_bits: QuantizationConfigSmallTableBits | Unset = QuantizationConfigSmallTableBits.VALUE_8
    smoothing: float | Unset = 0.8
    symmetric: bool | None | Unset = UNSET
    technique: Literal["quantization"] | Unset = "quantization"
    version: int | Unset = 1
    weight_dtype: QuantizationConfigWeightDtype | Unset = QuantizationConfigWeightDtype.AUTO

    def to_dict(self) -> dict[str, Any]:
        calibration_method: str | Unset = UNSET
        if not isinstance(self.calibration_method, Unset):
            calibration_method = self.calibration_method.value

        embedding_bits: int | Unset = UNSET
        if not isinstance(self.embedding_bits, Unset):
            embedding_bits = self.embedding_bits.value

        exclude: list[str] | Unset = UNSET
        if not isinstance(self.exclude, Unset):
            exclude = self.exclude

        float_fallback = self.float_fallback

        group_size: int | None | Unset
        if isinstance(self.group_size, Unset):
            group_size = UNSET
        elif isinstance(self.group_size, QuantizationConfigGroupSizeType0):
            group_size = self.group_size.value
        else:
            group_size = self.group_size

        keep_8bit: list[str] | Unset = UNSET
        if not isinstance(self.keep_8bit, Unset):
            keep_8bit = self.keep_8bit

        max_output_error = self.max_output_error

        method: str | Unset = UNSET
        if not isinstance(self.method, Unset):
            method = self.method.value

        min_top1_agreement = self.min_top1_agreement

        per_channel = self.per_channel

        quantize_embeddings = self.quantize_embeddings

        scheme: str | Unset = UNSET
        if not isinstance(self.scheme, Unset):
            scheme = self.scheme.value

        small_table_bits: int | Unset = UNSET
        if not isinstance(self.small_table_bits, Unset):
            small_table_bits = self.small_table_bits.value

        smoothing = self.smoothing

        symmetric: bool | None | Unset
        if isinstance(self.symmetric, Unset):
            symmetric = UNSET
        else:
            symmetric = self.symmetric

        technique = self.technique

        version = self.version

        weight_dtype: str | Unset = UNSET
        if not isinstance(self.weight_dtype, Unset):
            weight_dtype = self.weight_dtype.value

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if calibration_method is not UNSET:
            field_dict["calibration_method"] = calibration_method
        if embedding_bits is not UNSET:
            field_dict["embedding_bits"] = embedding_bits
        if exclude is not UNSET:
            field_dict["exclude"] = exclude
        if float_fallback is not UNSET:
            field_dict["float_fallback"] = float_fallback
        if group_size is not UNSET:
            field_dict["group_size"] = group_size
        if keep_8bit is not UNSET:
            field_dict["keep_8bit"] = keep_8bit
        if max_output_error is not UNSET:
            field_dict["max_output_error"] = max_output_error
        if method is not UNSET:
            field_dict["method"] = method
        if min_top1_agreement is not UNSET:
            field_dict["min_top1_agreement"] = min_top1_agreement
        if per_channel is not UNSET:
            field_dict["per_channel"] = per_channel
        if quantize_embeddings is not UNSET:
            field_dict["quantize_embeddings"] = quantize_embeddings
        if scheme is not UNSET:
            field_dict["scheme"] = scheme
        if small_table_bits is not UNSET:
            field_dict["small_table_bits"] = small_table_bits
        if smoothing is not UNSET:
            field_dict["smoothing"] = smoothing
        if symmetric is not UNSET:
            field_dict["symmetric"] = symmetric
        if technique is not UNSET:
            field_dict["technique"] = technique
        if version is not UNSET:
            field_dict["version"] = version
        if weight_dtype is not UNSET:
            field_dict["weight_dtype"] = weight_dtype

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        _calibration_method = d.pop("calibration_method", UNSET)
        calibration_method: QuantizationConfigCalibrationMethod | Unset
        if isinstance(_calibration_method, Unset):
            calibration_method = UNSET
        else:
            calibration_method = QuantizationConfigCalibrationMethod(_calibration_method)

        _embedding_bits = d.pop("embedding_bits", UNSET)
        embedding_bits: QuantizationConfigEmbeddingBits | Unset
        if isinstance(_embedding_bits, Unset):
            embedding_bits = UNSET
        else:
            embedding_bits = QuantizationConfigEmbeddingBits(_embedding_bits)

        exclude = cast(list[str], d.pop("exclude", UNSET))

        float_fallback = d.pop("float_fallback", UNSET)

        def _parse_group_size(data: object) -> None | QuantizationConfigGroupSizeType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, int):
                    raise TypeError()
                group_size_type_0 = QuantizationConfigGroupSizeType0(data)

                return group_size_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | QuantizationConfigGroupSizeType0 | Unset, data)

        group_size = _parse_group_size(d.pop("group_size", UNSET))

        keep_8bit = cast(list[str], d.pop("keep_8bit", UNSET))

        max_output_error = d.pop("max_output_error", UNSET)

        _method = d.pop("method", UNSET)
        method: QuantizationConfigMethod | Unset
        if isinstance(_method, Unset):
            method = UNSET
        else:
            method = QuantizationConfigMethod(_method)

        min_top1_agreement = d.pop("min_top1_agreement", UNSET)

        per_channel = d.pop("per_channel", UNSET)

        quantize_embeddings = d.pop("quantize_embeddings", UNSET)

        _scheme = d.pop("scheme", UNSET)
        scheme: QuantizationConfigScheme | Unset
        if isinstance(_scheme, Unset):
            scheme = UNSET
        else:
            scheme = QuantizationConfigScheme(_scheme)

        _small_table_bits = d.pop("small_table_bits", UNSET)
        small_table_bits: QuantizationConfigSmallTableBits | Unset
        if isinstance(_small_table_bits, Unset):
            small_table_bits = UNSET
        else:
            small_table_bits = QuantizationConfigSmallTableBits(_small_table_bits)

        smoothing = d.pop("smoothing", UNSET)

        def _parse_symmetric(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        symmetric = _parse_symmetric(d.pop("symmetric", UNSET))

        technique = cast(Literal["quantization"] | Unset, d.pop("technique", UNSET))
        if technique != "quantization" and not isinstance(technique, Unset):
            raise ValueError(f"technique must match const 'quantization', got '{technique}'")

        version = d.pop("version", UNSET)

        _weight_dtype = d.pop("weight_dtype", UNSET)
        weight_dtype: QuantizationConfigWeightDtype | Unset
        if isinstance(_weight_dtype, Unset):
            weight_dtype = UNSET
        else:
            weight_dtype = QuantizationConfigWeightDtype(_weight_dtype)

        quantization_config = cls(
            calibration_method=calibration_method,
            embedding_bits=embedding_bits,
            exclude=exclude,
            float_fallback=float_fallback,
            group_size=group_size,
            keep_8bit=keep_8bit,
            max_output_error=max_output_error,
            method=method,
            min_top1_agreement=min_top1_agreement,
            per_channel=per_channel,
            quantize_embeddings=quantize_embeddings,
            scheme=scheme,
            small_table_bits=small_table_bits,
            smoothing=smoothing,
            symmetric=symmetric,
            technique=technique,
            version=version,
            weight_dtype=weight_dtype,
        )

        return quantization_config
