"""Library architectures named in ``architecture.json``: torchvision and timm networks.

``{"library": "torchvision", "name": "resnet18", "args": {"num_classes": 10}}`` builds the
network with the library itself and never downloads weights (torchvision ``weights=None``,
timm ``pretrained=False``); the uploaded safetensors then fill it. The arguments come from an
untrusted file, so only bounded JSON scalars pass, and the arguments that load files or fetch
weights are refused by name.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from compressor.errors import InvalidModelError
from compressor.formats.input_spec import INPUT_NAME, InputSpec

MAX_ARGS = 32
MAX_STRING = 64
MAX_NUMBER = 1_000_000
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Arguments that would load a file, fetch weights or take a config object: never from a user.
_FORBIDDEN_ARGS = frozenset(
    {
        "weights",
        "weights_backbone",
        "pretrained",
        "pretrained_backbone",
        "pretrained_cfg",
        "pretrained_cfg_overlay",
        "pretrained_strict",
        "checkpoint_path",
        "cache_dir",
        "model_dir",
        "file",
        "path",
        "url",
        "progress",
    }
)
# Most classifiers of both libraries are defined for 224 px RGB images.
DEFAULT_INPUT_SIZE = (3, 224, 224)


class Library(StrEnum):
    TORCHVISION = "torchvision"
    TIMM = "timm"


_WHERE_NAMES = {
    Library.TORCHVISION: "torchvision.models.list_models()",
    Library.TIMM: "timm.list_models()",
}

Scalar = bool | int | float | str | None


class LibraryArchitecture(BaseModel):
    """``architecture.json`` naming a library network; ``input_size`` is (C, H, W)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    library: Library
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    args: dict[str, Scalar] = Field(default_factory=dict)
    input_size: tuple[int, ...] | None = Field(None, min_length=1, max_length=4)

    @field_validator("args")
    @classmethod
    def _bounded(cls, args: dict[str, Scalar]) -> dict[str, Scalar]:
        if len(args) > MAX_ARGS:
            raise ValueError(f"at most {MAX_ARGS} arguments")
        for key, value in args.items():
            if not _ARG_NAME.match(key):
                raise ValueError(f"argument name {key!r} is not an identifier")
            if key in _FORBIDDEN_ARGS:
                raise ValueError(
                    f"argument {key!r} is not accepted: the weights come from model.safetensors"
                )
            if isinstance(value, str) and len(value) > MAX_STRING:
                raise ValueError(f"argument {key!r} is longer than {MAX_STRING} characters")
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and not abs(value) <= MAX_NUMBER:  # type: ignore[arg-type]
                raise ValueError(f"argument {key!r} must be within ±{MAX_NUMBER}")
        return args

    @field_validator("input_size")
    @classmethod
    def _sizes(cls, size: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if size is not None and any(not 1 <= d <= 4096 for d in size):
            raise ValueError("every input_size dimension must be between 1 and 4096")
        return size

    @property
    def label(self) -> str:
        return f"{self.library}/{self.name}"

    def check_name(self) -> None:
        known = _known(self.library, self.name)
        if not known:
            raise InvalidModelError(
                f"{self.library} has no architecture named {self.name!r}; the valid names are "
                f"listed by {_WHERE_NAMES[self.library]}"
            )

    def build(self) -> nn.Module:
        """The network, randomly initialised by the library; no download, no user code."""
        self.check_name()
        args: dict[str, Any] = dict(self.args)
        try:
            if self.library is Library.TORCHVISION:
                import torchvision

                return torchvision.models.get_model(self.name, weights=None, **args)
            import timm

            return timm.create_model(self.name, pretrained=False, **args)
        except Exception as exc:  # libraries raise anything on bad arguments
            raise InvalidModelError(
                f"{self.label} cannot be built with args {self.args}: {type(exc).__name__}: {exc}"
            ) from exc

    def expected_tensors(self) -> dict[str, tuple[int, ...]]:
        with torch.device("meta"):
            module = self.build()
        return {k: tuple(v.shape) for k, v in module.state_dict().items()}

    def image_size(self) -> tuple[int, ...]:
        if self.input_size is not None:
            return self.input_size
        if self.library is Library.TIMM:
            with torch.device("meta"):
                cfg = getattr(self.build(), "pretrained_cfg", None) or {}
            size = cfg.get("input_size")
            if size:
                channels = self.args.get("in_chans")
                rest = tuple(int(d) for d in size[1:])
                return (int(channels) if isinstance(channels, int) else int(size[0]), *rest)
        return DEFAULT_INPUT_SIZE

    def input_shape(self) -> tuple[int | None, ...]:
        """The batch dimension is ``None``."""
        return (None, *self.image_size())

    def inputs(self) -> list[InputSpec]:
        return [InputSpec(INPUT_NAME, self.input_shape())]

    def describe(self) -> dict[str, Any]:
        return {"library": str(self.library), "name": self.name, "args": dict(self.args)}


def _known(library: Library, name: str) -> bool:
    if library is Library.TORCHVISION:
        import torchvision

        return name in torchvision.models.list_models()
    import timm

    return bool(timm.is_model(name))
