from enum import StrEnum


class QuantizationConfigCalibrationMethod(StrEnum):
    AUTO = "auto"
    ENTROPY = "entropy"
    MINMAX = "minmax"
    PERCENTILE = "percentile"

    def __str__(self) -> str:
        return str(self.value)
