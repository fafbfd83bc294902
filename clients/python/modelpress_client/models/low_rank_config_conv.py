from enum import StrEnum


class LowRankConfigConv(StrEnum):
    AUTO = "auto"
    CHANNEL_SVD = "channel_svd"
    TUCKER2 = "tucker2"

    def __str__(self) -> str:
        return str(self.value)
