from enum import StrEnum


class TenantShareReadSource(StrEnum):
    DEFAULT = "default"
    OPERATOR = "operator"

    def __str__(self) -> str:
        return str(self.value)
