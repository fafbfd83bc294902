"""Every technique: its config joins ``TechniqueConfig``; its handler registers itself on import."""

from typing import Annotated

from pydantic import Field

from compressor.techniques.pruning import PruningConfig
from compressor.techniques.quantization import QuantizationConfig

TechniqueConfig = Annotated[
    PruningConfig | QuantizationConfig,
    Field(discriminator="technique"),
]

__all__ = ["PruningConfig", "QuantizationConfig", "TechniqueConfig"]
