"""Every technique's config survives serialisation: Python dump, JSON, and the API's job schema.

The configs are the API's recipe schema (JobCreate reuses them), so a field that does not come
back equal would silently change what a stored or resubmitted job does.
"""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel, ValidationError

from app.jobs.schemas import JobCreate
from compressor.recipe import Recipe
from compressor.techniques import TechniqueConfig
from compressor.techniques.base import StepConfig, registered_techniques

CONFIGS: dict[str, type[StepConfig]] = {
    cls.model_fields["technique"].default: cls
    for cls in typing.get_args(typing.get_args(TechniqueConfig)[0])
}

# Every field away from its default where it can be, nested configs and tuples included.
NON_DEFAULT: dict[str, dict[str, typing.Any]] = {
    "pruning": {"sparsity": 0.8, "scope": "global"},
    "quantization": {
        "scheme": "int8_static",
        "per_channel": False,
        "quantize_embeddings": False,
        "embedding_bits": 4,
        "small_table_bits": 8,
        "smoothing": 0.0,
        "float_fallback": 2,
        "calibration_method": "percentile",
        "weight_dtype": "uint8",
        "exclude": ("classifier", "pooler"),
    },
    "distillation": {
        "student": "derived",
        "num_layers": 2,
        "lr": 1e-3,
        "epochs": 1,
        "temperature": 4.0,
        "max_seconds": 30.0,
    },
    "low_rank": {
        "rank_by": "ratio",
        "ratio": 0.25,
        "conv": "tucker2",
        "exclude": ("head",),
        "heal": {"epochs": 2, "lr": 1e-4},
    },
    "structured_pruning": {"amount": 0.5, "importance": "l1", "heads": True},
    "nm_sparsity": {"exclude": ("lm_head",)},
    "weight_sharing": {"clusters": 8, "exclude": ("classifier",)},
}


def _variants() -> list[tuple[str, dict[str, typing.Any]]]:
    return [
        (name, fields) for name in sorted(CONFIGS) for fields in ({}, NON_DEFAULT.get(name, {}))
    ]


def test_every_registered_technique_has_a_config_and_a_case() -> None:
    assert sorted(CONFIGS) == registered_techniques()
    assert sorted(NON_DEFAULT) == registered_techniques()


@pytest.mark.parametrize(("technique", "fields"), _variants())
def test_config_round_trips(technique: str, fields: dict[str, typing.Any]) -> None:
    cls = CONFIGS[technique]
    config = cls.model_validate({"technique": technique, **fields})
    for name, value in fields.items():
        got = getattr(config, name)
        if isinstance(got, BaseModel):
            got = {k: v for k, v in got.model_dump().items() if k in value}
        assert got == value, name

    assert cls.model_validate(config.model_dump()) == config
    assert cls.model_validate_json(config.model_dump_json()) == config
    assert config.version == 1

    # The API's job schema carries the engine's config, and gives it back unchanged.
    job = JobCreate.model_validate(
        {"model_id": "m", "recipe": {"steps": [config.model_dump(mode="json")]}}
    )
    back = JobCreate.model_validate_json(job.model_dump_json())
    assert back == job
    assert back.recipe.steps == [config]
    assert Recipe.model_validate(back.recipe.model_dump()) == job.recipe


@pytest.mark.parametrize("technique", sorted(CONFIGS))
def test_config_refuses_unknown_fields_and_is_frozen(technique: str) -> None:
    cls = CONFIGS[technique]
    config = cls()
    with pytest.raises(ValidationError, match="extra"):
        cls.model_validate({**config.model_dump(), "not_a_field": 1})
    with pytest.raises(ValidationError, match="frozen"):
        config.version = 2  # type: ignore[misc]
