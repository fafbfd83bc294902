"""Named architectures for ``architecture.json`` + ``model.safetensors`` uploads.

A state dict alone is not a model: the upload names a family from this zoo and its arguments,
and the module is built here from plain ``nn.Sequential`` pieces, so no user code ever runs.
Add a family by writing an args model, a builder and an input spec, and listing it in FAMILIES.
The file may instead name a torchvision or timm network (compressor/formats/architecture.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn

from compressor.errors import InvalidModelError
from compressor.formats.architecture import LibraryArchitecture
from compressor.formats.input_spec import INPUT_NAME, InputSpec

ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "model.safetensors"

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MLPArgs(_Args):
    """Fully connected classifier, e.g. LeNet-300-100: in_features=784, hidden=[300, 100]."""

    in_features: int = Field(ge=1, le=1_000_000)
    hidden: list[int] = Field(default_factory=lambda: [300, 100], max_length=32)
    num_classes: int = Field(ge=1, le=100_000)
    activation: Literal["relu", "tanh", "gelu"] = "relu"

    @model_validator(mode="after")
    def _widths(self) -> MLPArgs:
        if any(not 1 <= h <= 65_536 for h in self.hidden):
            raise ValueError("every hidden width must be between 1 and 65536")
        return self


class CNNArgs(_Args):
    """Small image classifier: conv+activation stages, max-pooling, then a linear head."""

    in_channels: int = Field(1, ge=1, le=64)
    image_size: int = Field(8, ge=2, le=1024)
    channels: list[int] = Field(default_factory=lambda: [32, 64], min_length=1, max_length=16)
    kernel_size: Literal[1, 3, 5, 7] = 3
    pool_after: list[int] | None = Field(
        None, description="0-based conv stages followed by 2x2 max-pooling; default: the last."
    )
    hidden: list[int] = Field(default_factory=lambda: [128], max_length=8)
    num_classes: int = Field(10, ge=1, le=100_000)
    activation: Literal["relu", "tanh", "gelu"] = "relu"

    @model_validator(mode="after")
    def _shapes(self) -> CNNArgs:
        if any(not 1 <= c <= 4096 for c in self.channels + self.hidden):
            raise ValueError("channel and hidden widths must be between 1 and 4096")
        pools = self.pools()
        if any(not 0 <= p < len(self.channels) for p in pools):
            raise ValueError(f"pool_after must name conv stages 0..{len(self.channels) - 1}")
        if self.image_size // 2 ** len(pools) < 1:
            raise ValueError(f"{len(pools)} poolings shrink a {self.image_size}px image to nothing")
        return self

    def pools(self) -> set[int]:
        return set(self.pool_after) if self.pool_after is not None else {len(self.channels) - 1}


def _build_mlp(args: MLPArgs) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = args.in_features
    for hidden in args.hidden:
        layers += [nn.Linear(width, hidden), _ACTIVATIONS[args.activation]()]
        width = hidden
    layers.append(nn.Linear(width, args.num_classes))
    return nn.Sequential(*layers)


def _build_cnn(args: CNNArgs) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels, size = args.in_channels, args.image_size
    pools = args.pools()
    for index, out in enumerate(args.channels):
        layers += [
            nn.Conv2d(channels, out, args.kernel_size, padding=args.kernel_size // 2),
            _ACTIVATIONS[args.activation](),
        ]
        if index in pools:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = out
    layers.append(nn.Flatten())
    width = channels * size * size
    for hidden in args.hidden:
        layers += [nn.Linear(width, hidden), _ACTIVATIONS[args.activation]()]
        width = hidden
    layers.append(nn.Linear(width, args.num_classes))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Family:
    args: type[_Args]
    build: Callable[[Any], nn.Module]
    inputs: Callable[[Any], list[InputSpec]]
    description: str


FAMILIES: dict[str, Family] = {
    "mlp": Family(
        MLPArgs,
        _build_mlp,
        lambda a: [InputSpec(INPUT_NAME, (None, a.in_features))],
        "multilayer perceptron (LeNet-300-100 shaped by default)",
    ),
    "cnn": Family(
        CNNArgs,
        _build_cnn,
        lambda a: [InputSpec(INPUT_NAME, (None, a.in_channels, a.image_size, a.image_size))],
        "small convolutional classifier (conv stages, max-pooling, linear head)",
    ),
}


class ArchitectureSpec(BaseModel):
    """The content of ``architecture.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str
    args: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.family

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, "args": self.parsed_args().model_dump()}

    def family_def(self) -> Family:
        family = FAMILIES.get(self.family)
        if family is None:
            raise InvalidModelError(
                f"unknown architecture family {self.family!r}; known families: "
                + ", ".join(f"{name} ({f.description})" for name, f in sorted(FAMILIES.items()))
            )
        return family

    def parsed_args(self) -> Any:
        family = self.family_def()
        try:
            return family.args.model_validate(self.args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidModelError(
                f"bad arguments for architecture {self.family!r}: {problems}"
            ) from exc

    def build(self) -> nn.Module:
        return self.family_def().build(self.parsed_args())

    def inputs(self) -> list[InputSpec]:
        return self.family_def().inputs(self.parsed_args())

    def expected_tensors(self) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the state dict this architecture needs (built on the meta device)."""
        with torch.device("meta"):
            module = self.build()
        return {k: tuple(v.shape) for k, v in module.state_dict().items()}


AnyArchitecture = ArchitectureSpec | LibraryArchitecture


def read_architecture(root: Path) -> AnyArchitecture:
    path = root / ARCHITECTURE_FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidModelError(f"{ARCHITECTURE_FILE} is not valid JSON: {exc}") from exc
    if isinstance(raw, dict) and "library" in raw:
        return _read_library(raw)
    try:
        spec = ArchitectureSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidModelError(
            f"{ARCHITECTURE_FILE} must be an object like "
            '{"family": "mlp", "args": {...}} or {"library": "torchvision", "name": '
            '"resnet18", "args": {...}}: ' + exc.errors()[0]["msg"]
        ) from exc
    spec.parsed_args()  # fail early on bad arguments
    return spec


def _read_library(raw: dict[str, Any]) -> LibraryArchitecture:
    try:
        spec = LibraryArchitecture.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "architecture"
        raise InvalidModelError(
            f"{ARCHITECTURE_FILE}: {where}: {err['msg']} (expected "
            '{"library": "torchvision" or "timm", "name": ..., "args": {scalars}})'
        ) from exc
    spec.check_name()
    return spec


def load_architecture_model(root: Path) -> tuple[nn.Module, AnyArchitecture]:
    """Build the named architecture and fill it from safetensors; no pickle is involved."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    spec = read_architecture(root)
    module = spec.build()
    try:
        tensors = load_file(str(root / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidModelError(f"{WEIGHTS_FILE} is not a valid safetensors file: {exc}") from exc
    check_state_dict(spec, {k: tuple(v.shape) for k, v in tensors.items()})
    module.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return module.eval(), spec


def check_state_dict(spec: AnyArchitecture, shapes: dict[str, tuple[int, ...]]) -> None:
    expected = spec.expected_tensors()
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise InvalidModelError(
            f"{WEIGHTS_FILE} does not match architecture {spec.label!r}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]} "
            f"(expected tensors: {sorted(expected)[:8]})"
        )
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise InvalidModelError(
                f"tensor {name!r} has shape {list(shapes[name])}, "
                f"architecture {spec.label!r} needs {list(shape)}"
            )
