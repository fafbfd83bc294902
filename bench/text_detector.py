"""A PP-OCR-style text detector of our own making, exported the way Paddle2ONNX writes it.

The shape of the network issue 23 was filed on (PaddleOCR's mobile detector, DB head):
torchvision's mobilenet_v3_small trunk (depthwise convolutions, squeeze-excitation gated by
HardSigmoid, HardSwish), a feature pyramid joined by nearest Resize, and a DB head of
ConvTranspose layers ending in a per-pixel text probability. Exported at opset 12 with dynamic
batch, height and width, HardSwish written as x * HardSigmoid(x), Paddle's node names.

It is trained for about half a minute on synthetic pages (dark strokes in boxes of absolute pixel
sizes on a noisy background), so its probability maps have structure to keep; it is judged, as
a detector is, by the F1 of its text pixels (probability > 0.3, DB's threshold) against the float
network's on held-out 320 x 320 pages.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import nn
from torch.nn import functional as F

INPUT, OUTPUT = "x", "sigmoid_0.tmp_0"
OPSET = 12
SIZE = 320
TRAIN_SIZE = 128
THRESHOLD = 0.3  # DB's binarisation threshold for the probability map
# mobilenet_v3_small feature indices at strides 4, 8, 16, 32, and their channels.
_TAPS = {1: 16, 3: 24, 8: 48, 12: 576}
_PYRAMID = 64


class TextDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v3_small

        self.trunk = mobilenet_v3_small(weights=None).features
        self.lateral = nn.ModuleList(nn.Conv2d(c, _PYRAMID, 1) for c in _TAPS.values())
        self.smooth = nn.ModuleList(nn.Conv2d(_PYRAMID, _PYRAMID // 4, 3, padding=1) for _ in _TAPS)
        self.head = nn.Sequential(
            nn.Conv2d(_PYRAMID, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 16, 2, 2),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 2, 2),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = []
        for i, layer in enumerate(self.trunk):
            x = layer(x)
            if i in _TAPS:
                taps.append(x)
        levels = [lat(t) for lat, t in zip(self.lateral, taps, strict=True)]
        for i in range(len(levels) - 1, 0, -1):
            levels[i - 1] = levels[i - 1] + F.interpolate(levels[i], scale_factor=2.0)
        joined = [
            F.interpolate(s(level), scale_factor=float(2**i)) if i else s(level)
            for i, (s, level) in enumerate(zip(self.smooth, levels, strict=True))
        ]
        return self.head(torch.cat(joined, dim=1))


def pages(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy pages with lines of dark strokes; the text mask is each line's box."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.55, 0.08, (n, 3, size, size)).astype(np.float32)
    x += rng.normal(0, 0.05, (n, 3, 1, 1)).astype(np.float32)  # paper tint
    mask = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        for _ in range(int(rng.integers(2, 3 + size // 40))):
            h = int(rng.integers(8, 22))
            w = int(rng.integers(24, max(25, size // 2)))
            top, left = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
            strokes = rng.random(w) < 0.55  # character strokes and the gaps between them
            ink = rng.uniform(0.0, 0.25)
            box = x[i, :, top : top + h, left : left + w]
            box[:, 1:-1, strokes] = ink + rng.normal(0, 0.03, (3, h - 2, int(strokes.sum())))
            mask[i, 0, top : top + h, left : left + w] = 1.0
    return x, mask


@dataclass(frozen=True)
class Detector:
    onnx_bytes: bytes
    calibration: np.ndarray  # 16 pages, as the issue calibrated the peer
    held_out: np.ndarray
    truth: np.ndarray  # the held-out pages' text masks


def _rename_like_paddle(model: onnx.ModelProto) -> None:
    counts: dict[str, int] = {}
    kinds = {
        "Conv": "conv2d",
        "ConvTranspose": "conv2d_transpose",
        "Resize": "nearest_interp_v2",
        "HardSigmoid": "hard_sigmoid",
    }
    for node in model.graph.node:
        kind = kinds.get(node.op_type, node.op_type.lower())
        node.name = f"{kind}_{counts.setdefault(kind, 0)}"
        counts[kind] += 1


def _train(model: TextDetector, steps: int, seed: int) -> None:
    x, y = pages(256, TRAIN_SIZE, seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (16,), generator=gen)
        opt.zero_grad()
        F.binary_cross_entropy(model(xt[idx]), yt[idx]).backward()
        opt.step()
    # torchvision's trunk moves its BatchNorm statistics by 1% a step: after a short training
    # they are still near their initial values, so they are measured once more on the pages.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the passes below
    with torch.no_grad():
        for start in range(0, len(xt), 32):
            model(xt[start : start + 32])
    model.eval()


def trained_detector(steps: int = 250, seed: int = 0) -> Detector:
    torch.manual_seed(seed)
    model = TextDetector()
    with torch.enable_grad():
        _train(model, steps, seed)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, SIZE, SIZE),),
            buf,
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=OPSET,
            dynamic_axes={INPUT: {0: "N", 2: "H", 3: "W"}, OUTPUT: {0: "N", 2: "H", 3: "W"}},
            do_constant_folding=True,
            dynamo=False,
        )
    exported = onnx.load_from_string(buf.getvalue())
    _rename_like_paddle(exported)
    onnx.checker.check_model(exported, full_check=True)
    calibration, _ = pages(16, SIZE, seed + 1)
    held_out, truth = pages(24, SIZE, seed + 2)
    return Detector(exported.SerializeToString(), calibration, held_out, truth)


def pixel_f1(probabilities: np.ndarray, reference: np.ndarray) -> float:
    """F1 of the text pixels of ``probabilities`` against ``reference`` (a mask, or another
    map, binarised the same way)."""
    a = probabilities > THRESHOLD
    b = reference > THRESHOLD
    both = float(np.logical_and(a, b).sum())
    total = float(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * both / total
