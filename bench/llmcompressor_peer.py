"""The llm-compressor peer, run by the bench in its own virtual environment (.venv-llmcompressor,
pinned whole in constraints-llmcompressor.txt): llmcompressor's releases require torch <= 2.14.0
and transformers <= 5.17, and the product pins torch 2.14.1 and transformers 5.24, so the peer
cannot install beside us. This file imports nothing of ours.

    python bench/llmcompressor_peer.py MODEL_DIR BLOCKS_JSON OUT_DIR --method gptq --group-size 64

BLOCKS_JSON holds the calibration token blocks ({"blocks": [[id, ...], ...]}) that our own job
calibrates on, so both sides see the same text. OUT_DIR receives the compressed-tensors
directory that vLLM serves, and ``peer.json`` with the wall time (or the error when the peer
refused the setting).
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path
from typing import Any

METHODS = ("gptq", "rtn", "w8a8", "sparsegpt-2:4")


def _w4a16(group_size: int) -> dict[str, Any]:
    """The W4A16 preset (symmetric int4 weights in groups), at the given group size."""
    return {
        "group_0": {
            "targets": ["Linear"],
            "weights": {
                "num_bits": 4,
                "type": "int",
                "symmetric": True,
                "strategy": "group",
                "group_size": group_size,
            },
        }
    }


def _recipe(method: str, group_size: int) -> list[Any]:
    from llmcompressor.modifiers.pruning import SparseGPTModifier
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from llmcompressor.modifiers.smoothquant import SmoothQuantModifier

    # lm_head stays in 16-bit float, as llm-compressor's own examples keep it.
    ignore = ["lm_head"]
    if method == "gptq":
        return [GPTQModifier(config_groups=_w4a16(group_size), ignore=ignore)]
    if method == "rtn":
        return [QuantizationModifier(config_groups=_w4a16(group_size), ignore=ignore)]
    if method == "w8a8":
        return [
            SmoothQuantModifier(smoothing_strength=0.8),
            GPTQModifier(targets="Linear", scheme="W8A8", ignore=ignore),
        ]
    return [
        SparseGPTModifier(
            sparsity=0.5, mask_structure="2:4", targets=[r"re:.*layers\.\d+$"], ignore=ignore
        )
    ]


def run(model_dir: Path, blocks_json: Path, out: Path, method: str, group_size: int) -> dict:
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    blocks = json.loads(blocks_json.read_text())["blocks"]
    data = Dataset.from_dict(
        {"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks]}
    )
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    start = time.perf_counter()
    oneshot(
        model=model,
        dataset=data,
        recipe=_recipe(method, group_size),
        num_calibration_samples=len(blocks),
        max_seq_length=len(blocks[0]),
        shuffle_calibration_samples=False,
    )
    seconds = time.perf_counter() - start
    # Calibrated in fp32; what is left in float (embedding, lm_head, norms, scales) is stored in
    # fp16, as our compressed-tensors artifacts store it, so bytes compare like for like.
    model.to(torch.float16)  # type: ignore[arg-type]
    model.save_pretrained(str(out), save_compressed=True)
    tokenizer.save_pretrained(str(out))
    return {"seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("blocks_json", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--group-size", type=int, default=128)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args.model_dir, args.blocks_json, args.out, args.method, args.group_size)
    except Exception as error:  # the peer refusing a setting is a result the page reports
        tail = traceback.format_exception_only(type(error), error)[-1]
        result = {"error": " ".join(tail.split())[:400]}  # one line on the page
    import llmcompressor

    result["llmcompressor"] = llmcompressor.__version__
    (args.out / "peer.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
