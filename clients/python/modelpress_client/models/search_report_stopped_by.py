from enum import StrEnum


class SearchReportStoppedBy(StrEnum):
    CONVERGED = "converged"
    NO_CANDIDATES_LEFT = "no candidates left"
    TIME_BUDGET = "time budget"

    def __str__(self) -> str:
        return str(self.value)
