from enum import StrEnum


class QuantizationConfigMethod(StrEnum):
    AUTO = "auto"
    AWQ = "awq"
    GPTQ = "gptq"
    RTN = "rtn"

    def __str__(self) -> str:
        return str(self.value)
