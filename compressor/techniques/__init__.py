"""Every technique: its config joins ``TechniqueConfig``; its handler registers itself on import.

One package per family (``quantization/``, ``pruning/``, ``low_rank/``, ``distillation/``);
each package's ``__init__`` imports its handlers, so importing the configs here registers them.
"""

from typing import Annotated

from pydantic import Field

from compressor.techniques.distillation import DistillationConfig
from compressor.techniques.low_rank import LowRankConfig
from compressor.techniques.pruning import NMSparsityConfig, PruningConfig, StructuredPruningConfig
from compressor.techniques.quantization import QuantizationConfig, WeightSharingConfig

TechniqueConfig = Annotated[
    PruningConfig
    | QuantizationConfig
    | DistillationConfig
    | LowRankConfig
    | StructuredPruningConfig
    | NMSparsityConfig
    | WeightSharingConfig,
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
    "WeightSharingConfig",
]
