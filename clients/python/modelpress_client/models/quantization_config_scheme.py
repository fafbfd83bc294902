from enum import StrEnum


class QuantizationConfigScheme(StrEnum):
    BF16 = "bf16"
    FP16 = "fp16"
    INT4_WEIGHT_ONLY = "int4_weight_only"
    INT8_DYNAMIC = "int8_dynamic"
    INT8_STATIC = "int8_static"
    INT8_WEIGHT_ONLY = "int8_weight_only"

    def __str__(self) -> str:
        return str(self.value)
