from enum import IntEnum


class QuantizationConfigGroupSizeType0(IntEnum):
    VALUE_16 = 16
    VALUE_32 = 32
    VALUE_64 = 64
    VALUE_128 = 128
    VALUE_256 = 256

    def __str__(self) -> str:
        return str(self.value)
