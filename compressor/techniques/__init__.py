"""Every technique: its config joins ``TechniqueConfig``; its handler registers itself on import."""

from typing import Annotated

from pydantic import Field

from compressor.techniques.distillation import DistillationConfig
from compressor.techniques.low_rank import LowRankConfig
from compressor.techniques.nm_sparsity import NMSparsityConfig
from compressor.techniques.pruning import PruningConfig
from compressor.techniques.quantization import QuantizationConfig
from compressor.techniques.structured_pruning import StructuredPruningConfig

TechniqueConfig = Annotated[
    PruningConfig
    | QuantizationConfig
    | DistillationConfig
    | LowRankConfig
    | StructuredPruningConfig
    | NMSparsityConfig,
    Field(discriminator="technique"),
]

__all__ = [
    "DistillationConfig",
    "LowRankConfig",
    "NMSparsityConfig",
    "PruningConfig",
    "QuantizationConfig",
    "StructuredPruningConfig",
    "TechniqueConfig",
]
