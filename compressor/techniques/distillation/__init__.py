"""Distillation: a smaller student learns the original's outputs (``handler.py``); the students
themselves are derived in ``compressor/students.py`` and trained by ``compressor/training.py``."""

from compressor.techniques.distillation.handler import DistillationConfig, DistillationHandler

__all__ = ["DistillationConfig", "DistillationHandler"]
