"""Text for calibrating and evaluating a decoder LLM, and its cutting into token blocks.

The files in ``data/`` are our own writing, made for modelpress (no licence questions, no
network): a job that brings no text of its own is calibrated on ``calibration_en.txt`` and
evaluated on ``eval_en.txt``. Both are varied everyday English prose (stories, news, letters,
instructions, dialogue) on different topics from each other, so evaluation never reads text the
quantizer calibrated on. ``prompts.json`` holds everyday prompts for greedy-continuation checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

DATA = Path(__file__).parent / "data"
# A line holding only this separates the documents of a data file.
DOCUMENT_BREAK = "---"


def _documents(name: str) -> list[str]:
    text = (DATA / name).read_text(encoding="utf-8")
    docs: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip() == DOCUMENT_BREAK:
            docs.append([])
        else:
            docs[-1].append(line)
    return [joined for doc in docs if (joined := "\n".join(doc).strip())]


def default_calibration_texts() -> list[str]:
    """The documents of ``calibration_en.txt``."""
    return _documents("calibration_en.txt")


def default_eval_text() -> str:
    """``eval_en.txt`` as one text, its documents a blank line apart."""
    return "\n\n".join(_documents("eval_en.txt"))


def default_prompts() -> list[str]:
    prompts = json.loads((DATA / "prompts.json").read_text(encoding="utf-8"))
    return [str(p) for p in prompts]


def texts_from_jsonl_rows(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The ``text`` of each row of a job's JSONL data (rows numbered from 1 in errors)."""
    texts = []
    for number, row in enumerate(rows, start=1):
        text = row.get("text") if isinstance(row, dict) else None
        if not isinstance(text, str):
            found = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise ValueError(f'row {number} has no string "text" field (found: {found})')
        if text.strip():
            texts.append(text)
    if not texts:
        raise ValueError("the data has no non-empty text")
    return texts


def token_blocks(
    tokenizer: Any, texts: Iterable[str], *, seq_len: int, max_blocks: int, seed: int = 0
) -> torch.Tensor:
    """int64 (n, seq_len): the texts tokenized end to end (EOS between documents) and cut into
    non-overlapping blocks; when there are more than ``max_blocks``, a seeded random choice of
    them, kept in text order."""
    if seq_len < 2 or max_blocks < 1:
        raise ValueError(f"need seq_len >= 2 and max_blocks >= 1, got {seq_len}, {max_blocks}")
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for text in texts:
        if stream and eos is not None:
            stream.append(int(eos))
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
    n = len(stream) // seq_len
    if n == 0:
        raise ValueError(f"the texts make {len(stream)} tokens, fewer than one block of {seq_len}")
    blocks = torch.tensor(stream[: n * seq_len], dtype=torch.int64).view(n, seq_len)
    if n <= max_blocks:
        return blocks
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(n, generator=generator)[:max_blocks].sort().values
    return blocks[chosen]


def split_held_out(
    blocks: torch.Tensor, fraction: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor]:
    """(calibration, held_out): the last ``fraction`` of the blocks (at least one) held out, so
    the split is the same every time and held-out text is contiguous, not interleaved."""
    n = blocks.shape[0]
    if n < 2 or not 0.0 < fraction < 1.0:
        raise ValueError(f"need 2 or more blocks and 0 < fraction < 1, got {n}, {fraction}")
    held = min(n - 1, max(1, round(n * fraction)))
    return blocks[: n - held], blocks[n - held :]
