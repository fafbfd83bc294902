"""What a stored recipe refers to besides the job's own model."""

from __future__ import annotations

from typing import Any


def uploaded_students(recipe: dict[str, Any] | None) -> list[str]:
    """Model ids a distillation step trains as its student (``student: uploaded``); none for a
    goal job that has no recipe yet."""
    if not recipe:
        return []
    return [
        str(step["student_model_id"])
        for step in recipe.get("steps", [])
        if step.get("technique") == "distillation" and step.get("student") == "uploaded"
    ]
