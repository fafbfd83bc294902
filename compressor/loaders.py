"""Loading each kind of upload into what the pipeline works on.

Kinds: a Hugging Face directory (torch module), an ONNX model (graph only: ONNX steps apply
directly), and an architecture reference (zoo family + safetensors state dict, torch module).
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from compressor.formats.detect import ModelKind, find_onnx_file, inspect_model_dir
from compressor.formats.onnx_io import check_external_data, export_onnx
from compressor.formats.onnx_shapes import declared_batch
from compressor.inputs import (
    HELD_OUT_SENTENCES,
    EvalInputs,
    InputRole,
    generated_tensor_inputs,
    generated_token_inputs,
    text_inputs,
)
from compressor.target import Target


@dataclass
class SourceModel:
    kind: ModelKind
    root: Path
    inspection: dict[str, Any]
    input_specs: list[dict[str, Any]]
    module: torch.nn.Module | None = None
    onnx_path: Path | None = None
    tokenizer: Any | None = None
    # Token inputs get a dynamic sequence axis on export; images and feature vectors do not.
    sequence_axis: bool = True
    notes: list[str] = field(default_factory=list)
    # Set for an ONNX upload converted to torch: exports under the upload's input/output names.
    exporter: Callable[[torch.nn.Module, dict[str, np.ndarray], Path], None] | None = None
    # An ONNX upload exported with a fixed batch takes only that many rows per run.
    fixed_batch: int | None = None

    def export(self, module: torch.nn.Module, example: dict[str, np.ndarray], path: Path) -> None:
        if self.exporter is not None:
            self.exporter(module, example, path)
            return
        export_onnx(module, example, path, output_name="output", sequence_axis=self.sequence_axis)

    def default_inputs(self, target: Target, *, role: InputRole = "calibration") -> EvalInputs:
        """Inputs for a job without data; the two roles never share a row.

        Text models: the sample sentences calibrate and a second fixed set judges. Generated
        inputs: one seed calibrates, another judges.
        """
        count = max(32, target.batch_size)
        seed = 0 if role == "calibration" else 1
        if self.kind == "huggingface":
            names = [s["name"] for s in self.input_specs]
            if self.tokenizer is not None:
                if role == "calibration":
                    return text_inputs(
                        self.tokenizer, names, sequence_length=target.sequence_length
                    )
                return text_inputs(
                    self.tokenizer,
                    names,
                    sequence_length=target.sequence_length,
                    sentences=HELD_OUT_SENTENCES,
                    label="fixed held-out English sentences",
                )
            vocab = int(self.inspection.get("vocab_size") or 1000)
            return generated_token_inputs(
                names,
                vocab_size=vocab,
                sequence_length=target.sequence_length,
                count=count,
                seed=seed,
            )
        seq = target.sequence_length
        specs = [
            {**s, "shape": [d if isinstance(d, int) else seq for d in s["shape"]]}
            for s in self.input_specs
        ]
        return generated_tensor_inputs(specs, count=count, seed=seed)


def _hf_input_specs(module: torch.nn.Module, tokenizer: Any | None) -> list[dict[str, Any]]:
    accepted = set(inspect.signature(module.forward).parameters)
    names = list(tokenizer.model_input_names) if tokenizer is not None else ["input_ids"]
    if "attention_mask" in accepted and "attention_mask" not in names:
        names.append("attention_mask")
    return [{"name": n, "shape": [None, None], "dtype": "int64"} for n in names if n in accepted]


def _copy_onnx(src: Path, dest_dir: Path) -> Path:
    """Copy the vetted model and exactly the external data files it names."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(src), load_external_data=False)
    for name in check_external_data(model, src.parent):
        (dest_dir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.parent / name, dest_dir / name)
    dest = dest_dir / src.name
    shutil.copyfile(src, dest)
    return dest


def load_source(root: Path, *, workdir: Path, torch_steps: bool = False) -> SourceModel:
    """``torch_steps``: the recipe changes a torch module, so an ONNX upload is converted."""
    inspection = inspect_model_dir(root)
    kind: ModelKind = inspection["format"]
    if kind == "huggingface":
        from compressor.formats.hf import load_hf_model, load_tokenizer, read_config

        module = load_hf_model(root)
        tokenizer = load_tokenizer(root)
        inspection = {**inspection, "vocab_size": read_config(root).get("vocab_size")}
        return SourceModel(
            kind,
            root,
            inspection,
            _hf_input_specs(module, tokenizer),
            module=module,
            tokenizer=tokenizer,
        )
    if kind == "architecture":
        from compressor.zoo import load_architecture_model

        module, _spec = load_architecture_model(root)
        return SourceModel(
            kind, root, inspection, inspection["inputs"], module=module, sequence_axis=False
        )
    src = find_onnx_file(root)
    assert src is not None
    folder = root if root.is_dir() else root.parent
    copied = _copy_onnx(src, workdir / "source")
    source = SourceModel(kind, folder, inspection, inspection["inputs"], onnx_path=copied)
    source.fixed_batch = declared_batch(onnx.load(str(copied), load_external_data=False))
    if torch_steps:
        from compressor.formats.onnx_torch import torch_from_onnx

        converted = torch_from_onnx(
            copied, input_names=[str(s["name"]) for s in source.input_specs]
        )
        source.module = converted.module
        source.exporter = converted.export
        source.notes.append(converted.note)
    return source
