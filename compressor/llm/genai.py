"""Runtime ``onnxruntime-genai``: a folder that ONNX Runtime GenAI loads and generates from
(``genai_config.json``, ``model.onnx`` + ``model.onnx.data`` with KV-cache inputs/outputs and
``MatMulNBits`` weights, tokenizer files), built by ONNX Runtime GenAI's own model builder.

Our weights reach the builder as a GPTQ checkpoint (``GptqCheckpointSink``); the builder maps
each packed weight to ``MatMulNBits`` with our codes, scales and zero points. Tables the
checkpoint leaves in float (the token embedding, and the LM head when the walker did not
quantize it) are quantized by the builder's RTN at ``embedding_bits``:

- tied model, LM head in the checkpoint: the embedding lookup is a ``GatherBlockQuantized`` that
  reads the LM head's own ``MatMulNBits`` weights (our 4 or 8 bits), one table in the file
  (``embedding_bits`` does not apply);
- tied model, LM head left in float: the builder quantizes it (``last_matmul`` int8 + rtn names
  for 8 bits) and shares it the same way; ``embedding_bits=None`` shares one float table;
- untied model: the builder quantizes a float LM head to ``embedding_bits``, and the embedding
  lookup to int4; its export refuses int8 lookups (ONNX Runtime runs them), so for 8 bits we
  replace the float ``Gather`` after the build (``quantize_embedding_int8``, RTN).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from compressor.errors import CompressionError, UnsupportedModelError

# Decoder architectures whose checkpoints the builder's GPTQ loader maps (llama-style tensor
# names) and whose exports we generate from in the tests. The builder knows more architectures
# from float checkpoints; GPT-2 is not among them.
SUPPORTED_ARCHITECTURES = (
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Phi3ForCausalLM",
    "Qwen2ForCausalLM",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)
ONNX_FILES = ("model.onnx", "model.onnx.data")
BUILD_TIMEOUT_S = 3600


@dataclass(frozen=True)
class GenaiBuild:
    """``onnx_bytes``: model.onnx (graph) plus model.onnx.data (weights), what a runtime loads."""

    folder: Path
    onnx_bytes: int
    seconds: float
    options: dict[str, str] = field(default_factory=dict)


def check_supported(config: dict) -> str:
    """The architecture name, or ``UnsupportedModelError`` naming the ones that work."""
    architectures = config.get("architectures") or [config.get("model_type", "unknown")]
    if architectures[0] not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"runtime onnxruntime-genai does not build {architectures[0]}; it builds "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    return str(architectures[0])


def build_genai_folder(
    checkpoint_dir: Path,
    out_dir: Path,
    *,
    cache_dir: Path,
    tokenizer_dir: Path | None = None,
    embedding_bits: int | None = 8,
    accuracy_level: int = 4,
) -> GenaiBuild:
    """Build the GenAI folder for CPU from a ``GptqCheckpointSink`` folder.

    ``accuracy_level``: MatMulNBits' activation precision (4: int8 activations, the builder's
    CPU default and fastest; 1: float32, bit-faithful to the dequantized weights)."""
    checkpoint_dir = Path(checkpoint_dir)
    config = json.loads((checkpoint_dir / "config.json").read_text())
    check_supported(config)
    if embedding_bits not in (4, 8, None):
        raise ValueError(f"embedding_bits must be 4, 8 or None, not {embedding_bits}")
    quant = config.get("quantization_config") or {}
    if quant.get("quant_method") != "gptq":
        raise ValueError(f"{checkpoint_dir} is not a GPTQ checkpoint")
    if tokenizer_dir is not None:
        copy_tokenizer(Path(tokenizer_dir), checkpoint_dir)
    options = {
        "block_size": str(quant["group_size"]),  # for the tables the builder quantizes itself
        "is_symmetric": "true" if quant.get("sym", True) else "false",
        "accuracy_level": str(accuracy_level),
        **float_table_options(config, checkpoint_dir, embedding_bits),
    }
    build = run_builder(checkpoint_dir, Path(out_dir), cache_dir=Path(cache_dir), options=options)
    reshape_shared_lm_head_tables(build.folder / "model.onnx")
    if embedding_bits == 8 and not config.get("tie_word_embeddings", False):
        started = time.perf_counter()
        quantize_embedding_int8(build.folder / "model.onnx", int(quant["group_size"]))
        build = replace(
            build,
            onnx_bytes=onnx_bytes(build.folder),
            seconds=build.seconds + time.perf_counter() - started,
            options={**build.options, "embedding": "int8 GatherBlockQuantized (modelpress RTN)"},
        )
    return build


def builder_int4_peer(source_dir: Path, out_dir: Path, *, cache_dir: Path) -> GenaiBuild:
    """The builder's own ``-p int4 -e cpu`` on the float model: the peer modelpress must beat."""
    check_supported(json.loads((Path(source_dir) / "config.json").read_text()))
    return run_builder(Path(source_dir), Path(out_dir), cache_dir=Path(cache_dir), options={})


def float_table_options(config: dict, checkpoint_dir: Path, bits: int | None) -> dict[str, str]:
    """Builder options for the embedding / LM head tables the checkpoint left in float."""
    tied = bool(config.get("tie_word_embeddings", False))
    lm_head_quantized = "lm_head.qweight" in checkpoint_tensor_names(checkpoint_dir)
    options: dict[str, str] = {"shared_embeddings": "true" if tied else "false"}
    if bits is None:
        if not lm_head_quantized:
            # both excluded: a tied model then shares one float table (Transpose + Gather)
            options["nodes_to_exclude"] = "/model/embed_tokens/Gather,/lm_head/MatMul"
        return options
    if not lm_head_quantized and bits == 8:
        options["matmul_mixed_precision"] = "last_matmul:int8"
        # the shared lookup is wired to rtn's initializer names (default's int8 names differ)
        options["algo_config"] = "rtn"
    if not tied and bits == 4:
        options["op_types_to_quantize"] = "MatMul/Gather"
    return options


def checkpoint_tensor_names(checkpoint_dir: Path) -> set[str]:
    index = checkpoint_dir / "model.safetensors.index.json"
    if index.exists():
        return set(json.loads(index.read_text())["weight_map"])
    from safetensors import safe_open

    names: set[str] = set()
    for shard in checkpoint_dir.glob("*.safetensors"):
        with safe_open(str(shard), framework="pt") as handle:
            names.update(handle.keys())
    return names


def copy_tokenizer(source: Path, dest: Path) -> None:
    for name in TOKENIZER_FILES:
        if (source / name).exists() and not (dest / name).exists():
            shutil.copy2(source / name, dest / name)


def reshape_shared_lm_head_tables(model_path: Path) -> None:
    """Give a shared, pre-quantized LM head's scales and zero points the 2-D shape
    (vocab, ...) that ``GatherBlockQuantized`` requires (``MatMulNBits`` takes either).

    The builder's GPTQ loader flattens them (its quant_auto loader does not), so a tied model's
    folder would not load: "GatherBlockQuantized: scales must have the same rank as data". Only
    the shapes in ``model.onnx`` change; the bytes in ``model.onnx.data`` stay where they are."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    lookups = [node for node in model.graph.node if node.op_type == "GatherBlockQuantized"]
    tables = {name for node in lookups for name in node.input[2:]}
    # the LM head's MatMulNBits reads the same initializers; its N is the vocabulary size
    rows = {
        name: attribute.i
        for node in model.graph.node
        if node.op_type == "MatMulNBits"
        for attribute in node.attribute
        if attribute.name == "N"
        for name in node.input[2:]
        if name in tables
    }
    changed = False
    for init in model.graph.initializer:
        if init.name in rows and len(init.dims) == 1:
            init.dims[:] = [rows[init.name], init.dims[0] // rows[init.name]]
            changed = True
    if changed:
        onnx.save(model, str(model_path))


def quantize_embedding_int8(model_path: Path, block_size: int) -> None:
    """Replace an untied float embedding ``Gather`` by an int8 ``GatherBlockQuantized`` (RTN,
    symmetric, ``block_size``-wide blocks along the hidden size): the builder exports only int4
    lookups, ONNX Runtime runs 8-bit ones."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(model_path))  # with model.onnx.data, rewritten below
    inits = {init.name: init for init in model.graph.initializer}
    node = next(
        (n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in inits), None
    )
    if node is None:
        return
    table = torch.from_numpy(numpy_helper.to_array(inits[node.input[0]]).astype("float32"))
    vocab, hidden = table.shape
    while hidden % block_size and block_size > 16:  # GatherBlockQuantized: power of 2, >= 16
        block_size //= 2
    if hidden % block_size:
        return
    blocks = table.reshape(vocab, hidden // block_size, block_size)
    scales = (blocks.abs().amax(-1) / 127).clamp(min=1e-12)
    codes = (torch.round(blocks / scales[..., None]) + 128).clamp(0, 255).to(torch.uint8)
    name = node.input[0]
    model.graph.initializer.remove(inits[name])
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(codes.reshape(vocab, hidden).numpy(), f"{name}_Q8"),
            numpy_helper.from_array(scales.numpy(), f"{name}_scales"),
            numpy_helper.from_array(torch.full_like(codes[..., 0], 128).numpy(), f"{name}_zp"),
        ]
    )
    lookup = onnx.helper.make_node(
        "GatherBlockQuantized",
        [f"{name}_Q8", node.input[1], f"{name}_scales", f"{name}_zp"],
        list(node.output),
        name=node.name.replace("/Gather", "/GatherBlockQuantized"),
        domain="com.microsoft",
        bits=8,
        block_size=block_size,
        gather_axis=0,
        quantize_axis=1,
    )
    position = list(model.graph.node).index(node)
    model.graph.node.remove(node)
    model.graph.node.insert(position, lookup)
    data = model_path.with_name(ONNX_FILES[1])
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(
        model,
        str(model_path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=1024,
    )


def build_genai_original(source_dir: Path, out_dir: Path, *, cache_dir: Path) -> GenaiBuild:
    """The upload exported in fp32 by the builder: the original, timed in the same runtime."""
    check_supported(json.loads((Path(source_dir) / "config.json").read_text()))
    return run_builder(
        Path(source_dir), Path(out_dir), cache_dir=Path(cache_dir), options={}, precision="fp32"
    )


def run_builder(
    input_dir: Path,
    out_dir: Path,
    *,
    cache_dir: Path,
    options: dict[str, str],
    precision: str = "int4",
) -> GenaiBuild:
    """The builder in a child process (it prints a lot and holds the whole model while it
    works), offline: it reads ``input_dir`` only."""
    argv = ["-i", str(input_dir), "-o", str(out_dir), "-p", precision, "-e", "cpu"]
    argv += ["-c", str(cache_dir)]
    if options:
        argv += ["--extra_options", *(f"{key}={value}" for key, value in options.items())]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    shutil.rmtree(out_dir, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "onnxruntime_genai.models.builder", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=BUILD_TIMEOUT_S,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not (out_dir / "genai_config.json").exists():
        tail = (done.stdout + done.stderr)[-2000:]
        raise CompressionError(f"the onnxruntime-genai model builder failed:\n{tail}")
    used = {"precision": precision, "execution_provider": "cpu", **options}
    return GenaiBuild(folder=out_dir, onnx_bytes=onnx_bytes(out_dir), seconds=seconds, options=used)


def onnx_bytes(folder: Path) -> int:
    return sum((folder / name).stat().st_size for name in ONNX_FILES if (folder / name).exists())
