from enum import StrEnum


class QuantizationConfigMethod(StrEnum):
    AUTO = "auto"
    GPTQ = "gptq"
    RTN = "rtn"

    def __str__(self) -> str:
        return str(self.value)
