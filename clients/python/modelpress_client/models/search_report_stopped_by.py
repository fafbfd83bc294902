from enum import StrEnum


class SearchReportStoppedBy(StrEnum):
    CONVERGED = "converged"
    NO_CANDIDATES_LEFT = "no candidates left"
    ROUND_LIMIT = "round limit"
    TIME_BUDGET = "time budget"

    def __str__(self) -> str:
        return str(self.value)
