"""Pruning: unstructured magnitude pruning (``unstructured.py``), structured pruning that
removes heads, neurons and channels (``structured.py``, with the dependency graph of
``depgraph.py`` for convolutional networks), and N:M semi-structured sparsity
(``nm_sparsity.py``)."""

from compressor.techniques.pruning.nm_sparsity import NMSparsityConfig
from compressor.techniques.pruning.structured import StructuredPruningConfig
from compressor.techniques.pruning.unstructured import PruningConfig

__all__ = ["NMSparsityConfig", "PruningConfig", "StructuredPruningConfig"]
