"""Safetensors shards written as tensors arrive, so a sink never holds the whole model."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


class ShardWriter:
    def __init__(self, out_dir: Path, *, shard_bytes: int) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.shard_bytes = shard_bytes
        self.weight_map: dict[str, str] = {}
        self._pending: dict[str, torch.Tensor] = {}
        self._pending_bytes = 0

    def put(self, key: str, tensor: torch.Tensor) -> None:
        tensor = tensor.detach().to("cpu").contiguous()
        self._pending[key] = tensor
        self._pending_bytes += tensor.numel() * tensor.element_size()
        if self._pending_bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        shard = f"model-{len(set(self.weight_map.values())) + 1:05d}.safetensors"
        save_file(self._pending, str(self.out_dir / shard), metadata={"format": "pt"})
        self.weight_map.update(dict.fromkeys(self._pending, shard))
        self._pending, self._pending_bytes = {}, 0

    def finish(self, *, single_file: bool) -> None:
        """Flush; one shard becomes model.safetensors when ``single_file``, else an index."""
        self.flush()
        shards = sorted(set(self.weight_map.values()))
        if single_file and len(shards) == 1:
            (self.out_dir / shards[0]).rename(self.out_dir / "model.safetensors")
            return
        total = sum((self.out_dir / shard).stat().st_size for shard in shards)
        index = {"metadata": {"total_size": total}, "weight_map": self.weight_map}
        (self.out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
