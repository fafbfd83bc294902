"""Unlabelled English sentences found offline: the prose that ships with CPython itself.

``pydoc_data.topics`` holds the language reference's topics as plain text, and the standard
library's modules carry docstrings. Code blocks and grammar rules are indented or hold
symbols; wrapped prose paragraphs are joined and cut into sentences, and only clean prose
sentences are kept. Nothing is downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path

from compressor.inputs import SAMPLE_SENTENCES

SOURCE = (
    "English prose sentences from CPython's own files: pydoc_data.topics (the language "
    "reference) and the docstrings of the standard library's top-level modules"
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")
_NOT_PROSE = re.compile(r"[{}\[\]=_*`<>|#\\]|::|\(\)|\.\.\.|\w\.\w")


def _paragraphs(text: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", text):
        lines = para.splitlines()
        # Code examples and grammar rules are indented by three or more spaces.
        if not lines or lines[0].startswith("   ") or "::=" in para:
            continue
        joined = " ".join(line.strip() for line in lines)
        out.append(re.sub(r"^[*-] ", "", joined))
    return out


def _docstrings() -> list[str]:
    """Module, class and function docstrings of the stdlib's top-level modules, file order."""
    import ast
    import sysconfig

    texts = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    texts.append(doc)
    return texts


def english_sentences(
    *, min_chars: int = 40, max_chars: int = 200, limit: int | None = None
) -> list[str]:
    """Deduplicated prose sentences, in a fixed order; never one of the held-out sentences."""
    from pydoc_data.topics import topics

    held_out = set(SAMPLE_SENTENCES)
    seen: set[str] = set()
    sentences = []
    for text in [topics[key] for key in sorted(topics)] + _docstrings():
        for para in _paragraphs(text):
            for sentence in _SENTENCE_END.split(para):
                s = " ".join(sentence.split())
                if not (min_chars <= len(s) <= max_chars) or s[-1] not in ".!?":
                    continue
                if not s[0].isupper() or _NOT_PROSE.search(s):
                    continue
                if sum(c.isalpha() or c in " ,;'\"“”-" for c in s) / len(s) < 0.93:
                    continue
                if s in seen or s in held_out:
                    continue
                seen.add(s)
                sentences.append(s)
    if limit is not None and len(sentences) > limit:
        # An even spread over all sources rather than the first ones only.
        step = len(sentences) / limit
        sentences = [sentences[int(i * step)] for i in range(limit)]
    return sentences


def _spread(pool: list[str], count: int) -> list[str]:
    """``count`` items evenly spread over ``pool`` (all sources, not only the first ones)."""
    if count >= len(pool):
        return list(pool)
    step = len(pool) / count
    return [pool[int(i * step)] for i in range(count)]


def disjoint_sentences(
    *, held_out: int, calibration: int, training: int
) -> tuple[list[str], list[str], list[str]]:
    """Held-out, calibration and training sentences, no sentence in two of them.

    Held-out ones are picked first, then calibration from what is left, then training; none
    is one of the engine's fixed sample sentences, so those stay held out as well.
    """
    pool = english_sentences()
    held = _spread(pool, held_out)
    taken = set(held)
    rest = [s for s in pool if s not in taken]
    calib = _spread(rest, calibration)
    taken.update(calib)
    rest = [s for s in rest if s not in taken]
    return held, calib, _spread(rest, training)
