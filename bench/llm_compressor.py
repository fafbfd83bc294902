"""llm-compressor as a peer of our vllm artifacts: it runs in its own virtual environment
(bench/llmcompressor_peer.py says why), on the token blocks our job calibrates on, and what it
writes is judged here exactly as our artifacts are: perplexity on the same held-out ids,
greedy continuations against the original's, bytes of the safetensors vLLM loads."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compressor.artifacts import ArtifactFormat
from compressor.llm.candidates import load_causal_lm
from compressor.llm.evaluate import NEW_TOKENS
from compressor.llm.measure import agreement, greedy_tokens, perplexity
from compressor.llm.pipeline import artifact_weights, calibration_blocks
from compressor.llm.texts import default_calibration_texts, default_prompts

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-llmcompressor" / "bin" / "python"
PEER_SCRIPT = Path(__file__).with_name("llmcompressor_peer.py")
PEER_TIMEOUT_S = 1800


@dataclass(frozen=True)
class PeerSetting:
    label: str  # as the page names it
    method: str  # bench/llmcompressor_peer.py --method
    group_size: int = 128


@dataclass(frozen=True)
class PeerResult:
    setting: PeerSetting
    figures: dict[str, Any]  # perplexity, bytes, greedy agreed; empty when it did not run
    error: str | None
    version: str | None
    seconds: float | None
    calibration: str  # what the peer calibrated on


def write_blocks(source: Path, tokenizer: Any, path: Path) -> str:
    """Our job's calibration blocks, all of them (the peer holds nothing out to choose by),
    written to ``path``; returns what they are, for the page."""
    config = json.loads((source / "config.json").read_text())
    blocks = calibration_blocks(
        tokenizer,
        default_calibration_texts(),
        max_positions=config.get("max_position_embeddings"),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"blocks": blocks.tolist()}))
    return f"{blocks.shape[0]} blocks of {blocks.shape[1]} tokens"


def run_peer(source: Path, blocks: Path, out: Path, setting: PeerSetting) -> dict[str, Any]:
    if not PEER_PYTHON.exists():
        return {"error": f"not installed: {PEER_PYTHON.parent.parent.name} (make bench makes it)"}
    out.mkdir(parents=True, exist_ok=True)
    command = [
        str(PEER_PYTHON), str(PEER_SCRIPT), str(source), str(blocks), str(out),
        "--method", setting.method, "--group-size", str(setting.group_size),
    ]  # fmt: skip
    with (out / "peer.log").open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=PEER_TIMEOUT_S)
    result_file = out / "peer.json"
    if not result_file.exists():
        return {"error": f"the peer exited with {done.returncode}; see {out / 'peer.log'}"}
    return dict(json.loads(result_file.read_text()))


def judge_peers(
    source: Path,
    tokenizer: Any,
    eval_ids: torch.Tensor,
    window: int,
    work: Path,
    settings: list[PeerSetting],
) -> list[PeerResult]:
    blocks = work / "calibration-blocks.json"
    calibration = write_blocks(source, tokenizer, blocks)
    prompts = default_prompts()
    with torch.inference_mode():
        reference = greedy_tokens(load_causal_lm(source), tokenizer, prompts, new_tokens=NEW_TOKENS)
    results = []
    for number, setting in enumerate(settings):
        out = work / f"llmcompressor-{number}"
        ran = run_peer(source, blocks, out, setting)
        figures: dict[str, Any] = {}
        if "error" not in ran:
            figures = _judged(out, tokenizer, eval_ids, window, reference, prompts)
        results.append(
            PeerResult(
                setting,
                figures,
                ran.get("error"),
                ran.get("llmcompressor"),
                ran.get("seconds"),
                calibration,
            )  # fmt: skip
        )
        print(f"llm-compressor {setting.label}: {ran} {figures}", file=sys.stderr, flush=True)
    return results


def _judged(
    folder: Path,
    tokenizer: Any,
    eval_ids: torch.Tensor,
    window: int,
    reference: list[list[int]],
    prompts: list[str],
) -> dict[str, Any]:
    model = load_causal_lm(folder)
    with torch.inference_mode():
        ppl = perplexity(model, eval_ids, window=window, batch=1)
        greedy = greedy_tokens(model, tokenizer, prompts, new_tokens=NEW_TOKENS)
    agreed = agreement(reference, greedy)
    model_bytes, _ = artifact_weights(folder, ArtifactFormat.COMPRESSED_TENSORS)
    return {
        "perplexity": ppl.ppl,
        "bytes": model_bytes,
        "agreed_mean": sum(agreed) / len(agreed),
    }
