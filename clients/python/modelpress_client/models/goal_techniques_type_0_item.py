from enum import StrEnum


class GoalTechniquesType0Item(StrEnum):
    DISTILLATION = "distillation"
    LOW_RANK = "low_rank"
    NM_SPARSITY = "nm_sparsity"
    PRUNING = "pruning"
    QUANTIZATION = "quantization"
    STRUCTURED_PRUNING = "structured_pruning"
    WEIGHT_SHARING = "weight_sharing"

    def __str__(self) -> str:
        return str(self.value)
