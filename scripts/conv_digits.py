"""Convolutional digits models uploaded as ONNX, for the conv int8 tests and benchmark.

    .venv/bin/python scripts/conv_digits.py --family residual --out /tmp/resnet.onnx

Families: ``residual`` (a small ResNet with BatchNorm), ``convonly`` (Conv/BatchNorm/ReLU and a
1x1-conv head, no MatMul or Gemm anywhere) and ``mobilenet`` (torchvision's
mobilenet_v3_small: depthwise convs, squeeze-excite, hard activations) on the digits upscaled
to 32x32. Training takes seconds; the split is scripts/train_digits.py's, so calibration
rows come from the training split and the held-out images never calibrate anything.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from scripts.train_digits import digits_split

FAMILIES = ("residual", "convonly", "mobilenet")
EPOCHS = {"residual": 6, "convonly": 6, "mobilenet": 5}
INPUT = "pixels"
OUTPUT = "logits"


class _Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class ResidualCNN(nn.Module):
    """Stem, two residual blocks around a strided conv, global pool, linear head."""

    def __init__(self, width: int = 32, *, conv_head: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.block1 = _Block(width)
        self.down = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        )
        self.block2 = _Block(2 * width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = conv_head
        self.head: nn.Module = (
            nn.Conv2d(2 * width, 10, 1) if conv_head else nn.Linear(2 * width, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.down(self.block1(self.stem(x))))
        x = self.pool(x)
        if self.conv_head:
            return torch.flatten(self.head(x), 1)
        return self.head(torch.flatten(x, 1))


@dataclass(frozen=True)
class ConvDigits:
    model: nn.Module
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    eval_accuracy: float


def images(family: str, x: np.ndarray) -> np.ndarray:
    if family != "mobilenet":
        return x
    # mobilenet_v3_small downsamples 32x: 8x8 digits are upscaled, 3 channels.
    t = torch.nn.functional.interpolate(torch.from_numpy(x), size=32, mode="bilinear")
    return t.repeat(1, 3, 1, 1).numpy().astype(np.float32)


def _recompute_batchnorm(model: nn.Module, x: torch.Tensor) -> None:
    """mobilenet_v3's BatchNorm momentum (0.01) leaves running statistics far from the data
    after a few hundred steps: they are recomputed as plain averages over the training split."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        for chunk in x.split(256):
            model(chunk)


def build(family: str) -> nn.Module:
    if family == "mobilenet":
        from torchvision.models import mobilenet_v3_small

        return mobilenet_v3_small(num_classes=10)
    return ResidualCNN(conv_head=family == "convonly")


def train(family: str, *, epochs: int | None = None, seed: int = 0) -> ConvDigits:
    split = digits_split(image=True)
    x_tr, x_ev = images(family, split.x_train), images(family, split.x_eval)
    epochs = epochs or EPOCHS[family]
    torch.manual_seed(seed)
    model = build(family)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3 if family == "mobilenet" else 1e-2)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(split.y_train)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    _recompute_batchnorm(model, xt)
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x_ev)).argmax(-1).numpy()
    acc = float((pred == split.y_eval).mean())
    return ConvDigits(model, x_tr, split.y_train, x_ev, split.y_eval, acc)


def export(
    model: nn.Module, example: np.ndarray, out: Path, *, opset: int = 12, fixed: bool = False
) -> Path:
    """A user's export: opset 12 by default; ``fixed`` gives batch 1 and no dynamic axes.
    Constants are not folded, so BatchNormalization stays a node as other exporters leave it."""
    x = torch.from_numpy(example[:1])
    torch.onnx.export(
        model,
        (x,),
        str(out),
        input_names=[INPUT],
        output_names=[OUTPUT],
        opset_version=opset,
        do_constant_folding=False,
        dynamic_axes=None if fixed else {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        dynamo=False,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", choices=FAMILIES, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--opset", type=int, default=12)
    args = parser.parse_args()
    trained = train(args.family)
    export(trained.model, trained.x_eval, args.out, opset=args.opset)
    print(f"{args.family}: held-out accuracy {trained.eval_accuracy:.4f} -> {args.out}")


if __name__ == "__main__":
    main()
