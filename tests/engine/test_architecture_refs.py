"""architecture.json may name a torchvision or timm network: the library builds it (no weight
download) and inspection checks the safetensors weights fit it, tensor by tensor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from compressor.errors import InvalidModelError
from compressor.formats.detect import inspect_model_dir
from compressor.zoo import load_architecture_model


def _upload(folder: Path, reference: dict[str, object], module: torch.nn.Module) -> Path:
    folder.mkdir()
    (folder / "architecture.json").write_text(json.dumps(reference))
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    return folder


def test_torchvision_resnet18_reference_is_built_and_filled(tmp_path: Path) -> None:
    import torchvision

    trained = torchvision.models.resnet18(num_classes=10).eval()
    ref = {"library": "torchvision", "name": "resnet18", "args": {"num_classes": 10}}
    root = _upload(tmp_path / "rn18", ref, trained)

    found = inspect_model_dir(root)
    assert found["format"] == "architecture"
    assert found["architecture"] == "torchvision/resnet18"
    assert found["inputs"] == [{"name": "input", "shape": [None, 3, 224, 224], "dtype": "float32"}]
    assert found["parameters"] == sum(v.numel() for v in trained.state_dict().values())

    module, _spec = load_architecture_model(root)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, 64, 64), np.float32))
    with torch.no_grad():
        assert torch.equal(module(x), trained(x))  # the upload's weights, not a fresh init


def test_weights_that_do_not_fit_are_refused_naming_the_tensor(tmp_path: Path) -> None:
    import torchvision

    other = torchvision.models.resnet18(num_classes=7)
    ref = {"library": "torchvision", "name": "resnet18", "args": {"num_classes": 10}}
    root = _upload(tmp_path / "rn18", ref, other)
    with pytest.raises(InvalidModelError, match=r"'fc\.weight' has shape \[7, 512\].*\[10, 512\]"):
        inspect_model_dir(root)


def test_timm_reference_is_accepted(tmp_path: Path) -> None:
    import timm

    trained = timm.create_model("test_resnet", pretrained=False, num_classes=5).eval()
    ref = {"library": "timm", "name": "test_resnet", "args": {"num_classes": 5}}
    root = _upload(tmp_path / "timm", ref, trained)
    found = inspect_model_dir(root)
    size = trained.pretrained_cfg["input_size"]
    assert found["architecture"] == "timm/test_resnet"
    assert found["inputs"][0]["shape"] == [None, *size]
    module, _spec = load_architecture_model(root)
    x = torch.zeros(1, *size)
    with torch.no_grad():
        assert torch.equal(module(x), trained(x))


@pytest.mark.parametrize(
    ("library", "hint"),
    [("torchvision", r"torchvision\.models\.list_models\(\)"), ("timm", r"timm\.list_models\(\)")],
)
def test_unknown_name_is_rejected_with_where_to_look(
    tmp_path: Path, library: str, hint: str
) -> None:
    ref = {"library": library, "name": "resnet_does_not_exist"}
    root = _upload(tmp_path / "x", ref, torch.nn.Linear(2, 2))
    with pytest.raises(InvalidModelError, match=rf"no architecture named.*{hint}"):
        inspect_model_dir(root)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"weights": "IMAGENET1K_V1"}, "weights come from model.safetensors"),
        ({"checkpoint_path": "/etc/passwd"}, "not accepted"),
        ({"num_classes": [1, 2]}, "args.num_classes"),
        ({"num_classes": 10**9}, "within"),
        ({"norm_layer": "x" * 100}, "longer than"),
    ],
)
def test_untrusted_arguments_are_bounded(
    tmp_path: Path, args: dict[str, object], problem: str
) -> None:
    ref = {"library": "torchvision", "name": "resnet18", "args": args}
    root = _upload(tmp_path / "x", ref, torch.nn.Linear(2, 2))
    with pytest.raises(InvalidModelError, match=problem):
        inspect_model_dir(root)


def test_builtin_family_still_works(tmp_path: Path) -> None:
    from compressor.zoo import ArchitectureSpec

    spec = ArchitectureSpec(family="mlp", args={"in_features": 4, "hidden": [3], "num_classes": 2})
    root = _upload(tmp_path / "mlp", {"family": "mlp", "args": dict(spec.args)}, spec.build())
    found = inspect_model_dir(root)
    assert found["architecture"] == "mlp"
    assert found["architecture_args"]["hidden"] == [3]
