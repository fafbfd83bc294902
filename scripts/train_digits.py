"""Train the digits models used by tests and benchmarks, deterministically, in seconds.

    .venv/bin/python scripts/train_digits.py --family mlp --out /tmp/digits-mlp
    .venv/bin/python scripts/train_digits.py --family cnn --out /tmp/digits-cnn

Each output folder holds ``architecture.json`` + ``model.safetensors`` (an architecture-reference
upload) and ``eval.npz`` (held-out ``input`` and ``labels``). Data: scikit-learn's bundled
digits (1797 8x8 images), pixels scaled to [0, 1], a fixed stratified 80/20 split.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from compressor.zoo import ARCHITECTURE_FILE, WEIGHTS_FILE, ArchitectureSpec

SPLIT_SEED = 0
TRAIN_SEED = 0

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # LeNet-300-100 shape on 8x8 inputs.
    "mlp": {"family": "mlp", "args": {"in_features": 64, "hidden": [300, 100], "num_classes": 10}},
    "cnn": {
        "family": "cnn",
        "args": {
            "in_channels": 1,
            "image_size": 8,
            "channels": [32, 64],
            "kernel_size": 3,
            "hidden": [128],
            "num_classes": 10,
        },
    },
}

EPOCHS = {"mlp": 40, "cnn": 25}


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray


def digits_split(*, image: bool) -> DigitsSplit:
    """Fixed stratified 80/20 split; ``image`` gives [N, 1, 8, 8] instead of [N, 64]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    x_tr, x_ev, y_tr, y_ev = train_test_split(
        x, y, test_size=0.2, random_state=SPLIT_SEED, stratify=y
    )
    return DigitsSplit(x_tr, y_tr, x_ev, y_ev)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(-1).numpy()
    return float((pred == y).mean())


def train(
    family: str,
    *,
    epochs: int | None = None,
    seed: int = TRAIN_SEED,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[nn.Module, DigitsSplit]:
    """``rows``: train on these (a part of the training split) instead of the whole split."""
    spec = ArchitectureSpec.model_validate(ARCHITECTURES[family])
    split = digits_split(image=family == "cnn")
    torch.manual_seed(seed)
    model = spec.build()
    optim = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x_rows, y_rows = rows if rows is not None else (split.x_train, split.y_train)
    x = torch.from_numpy(x_rows)
    y = torch.from_numpy(y_rows)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs or EPOCHS[family]):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            optim.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optim.step()
    return model.eval(), split


def train_and_save(
    family: str,
    out: Path,
    *,
    epochs: int | None = None,
    seed: int = TRAIN_SEED,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Train ``family`` ('mlp' or 'cnn') and write the upload folder; returns a summary."""
    torch.set_num_threads(1)
    model, split = train(family, epochs=epochs, seed=seed, rows=rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / ARCHITECTURE_FILE).write_text(json.dumps(ARCHITECTURES[family], indent=2))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS_FILE))
    np.savez(out / "eval.npz", input=split.x_eval, labels=split.y_eval)
    return {
        "family": family,
        "out": str(out),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_samples": len(rows[1]) if rows is not None else len(split.y_train),
        "eval_samples": len(split.y_eval),
        "eval_accuracy": accuracy(model, split.x_eval, split.y_eval),
    }


def load_eval(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "eval.npz") as data:
        return {k: data[k] for k in data.files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(ARCHITECTURES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(train_and_save(args.family, args.out, epochs=args.epochs)))


if __name__ == "__main__":
    main()
