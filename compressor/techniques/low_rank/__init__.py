"""Low-rank factorization: the config (``config.py``), the step (``handler.py``), the
factorized forms of a layer (``factorization.py``) and the choice of its ranks
(``rank_search.py``: by kept energy, parameter ratio or measured speed-up)."""

from compressor.techniques.low_rank.config import LowRankConfig
from compressor.techniques.low_rank.handler import LowRankHandler

__all__ = ["LowRankConfig", "LowRankHandler"]
