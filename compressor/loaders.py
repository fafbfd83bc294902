"""Loading each kind of upload into what the pipeline works on, and saving artifacts back.

Kinds: a Hugging Face directory (torch module), an ONNX model (graph only: ONNX steps apply
directly), and an architecture reference (zoo family + safetensors state dict, torch module).
"""

from __future__ import annotations

import inspect
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from compressor.errors import InvalidRecipeError
from compressor.formats.detect import ModelKind, find_onnx_file, inspect_model_dir
from compressor.formats.onnx_io import check_external_data, export_onnx
from compressor.inputs import (
    HELD_OUT_SENTENCES,
    EvalInputs,
    InputRole,
    generated_tensor_inputs,
    generated_token_inputs,
    text_inputs,
)
from compressor.recipe import Recipe
from compressor.target import Target
from compressor.techniques.base import Stage, handler_for

# Below this many bytes the artifact is also packed as .tar.xz: encoding is where small,
# sparse models win (Deep Compression counts the encoded size), and it costs milliseconds.
PACK_LIMIT_BYTES = 32 * 1024**2


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

    def export(self, module: torch.nn.Module, example: dict[str, np.ndarray], path: Path) -> None:
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


def check_recipe_for_kind(recipe: Recipe, kind: ModelKind, target: Target) -> None:
    """Refuse, before any work, what this kind of upload cannot go through."""
    if kind == "onnx":
        for step in recipe.steps:
            if handler_for(step).stage is Stage.TORCH:
                raise InvalidRecipeError(
                    f"step {step.technique!r} changes a torch model, but the upload is an ONNX "
                    "graph, which is not converted back to torch; upload the Hugging Face "
                    "directory or architecture.json + model.safetensors for this technique"
                )
        if target.runtime != "onnxruntime":
            raise InvalidRecipeError(
                "an ONNX upload runs on ONNX Runtime: set target.runtime to 'onnxruntime'"
            )
    if kind == "architecture" and target.runtime != "onnxruntime":
        raise InvalidRecipeError(
            "an architecture.json + safetensors model is delivered as ONNX: set "
            "target.runtime to 'onnxruntime'"
        )


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


def load_source(root: Path, *, workdir: Path) -> SourceModel:
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
    return SourceModel(kind, folder, inspection, inspection["inputs"], onnx_path=copied)


def pack_artifact(artifact_dir: Path, dest: Path) -> int:
    """Pack the artifact folder as .tar.xz (plain ``tar xf`` unpacks it); return its bytes."""
    import lzma
    import tarfile

    size = sum(p.stat().st_size for p in artifact_dir.rglob("*") if p.is_file())
    # The extreme preset pays off on small models; on tens of MB it costs minutes of CPU.
    preset = 9 | lzma.PRESET_EXTREME if size <= 4 * 1024**2 else 6
    with (
        lzma.LZMAFile(dest, "w", preset=preset) as xz,
        tarfile.open(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(artifact_dir.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(artifact_dir)))
            # Fixed ownership and times: the same model packs to the same bytes.
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_file():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return dest.stat().st_size
