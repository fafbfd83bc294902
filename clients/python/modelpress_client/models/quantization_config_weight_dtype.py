from enum import StrEnum


class QuantizationConfigWeightDtype(StrEnum):
    AUTO = "auto"
    INT8 = "int8"
    UINT8 = "uint8"

    def __str__(self) -> str:
        return str(self.value)
