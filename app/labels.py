"""Labels: a small string map a platform puts on models, datasets and jobs, and lists by.

Bounded so a label map stays a tag, not a document store. Keys are restricted to a plain
charset so that ``?label=key=value`` splits unambiguously at the first ``=``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Form, Query
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError
from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import AppError

MAX_LABELS = 32
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$"
MAX_VALUE_CHARS = 255
MAX_FILTERS = 16
# A label map is one object of strings. Deeper input is refused before json.loads sees it: the
# parser recurses per level, and 64 KB of "[[[..." would exhaust the stack (RecursionError, a 500).
MAX_NESTING = 4

LabelKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_VALUE_CHARS)]
Labels = Annotated[
    dict[LabelKey, LabelValue],
    Field(
        max_length=MAX_LABELS,
        description=f"at most {MAX_LABELS} labels; keys match {KEY_PATTERN}, values at most "
        f"{MAX_VALUE_CHARS} characters",
    ),
]
_LABELS = TypeAdapter(Labels)
_KEY = TypeAdapter(LabelKey)


LabelsForm = Annotated[
    str | None,
    Form(
        max_length=64 * 1024,
        description=f'a JSON object of strings, e.g. {{"team": "search"}}: at most '
        f"{MAX_LABELS} labels, keys matching {KEY_PATTERN}, values at most {MAX_VALUE_CHARS} "
        "characters",
    ),
]


class InvalidLabels(AppError):
    status, slug, title = 422, "invalid-labels", "Invalid labels"


def parse_form_labels(raw: str | None) -> dict[str, str]:
    """The multipart field ``labels`` of an upload: a JSON object of strings."""
    if not raw:
        return {}
    if _nesting(raw) > MAX_NESTING:
        raise InvalidLabels(
            f"labels must be a JSON object of strings: nested more than {MAX_NESTING} levels deep"
        )
    try:
        return _LABELS.validate_python(json.loads(raw))
    except ValueError as exc:  # bad JSON, or a ValidationError (a ValueError too)
        raise InvalidLabels(f"labels must be a JSON object of strings: {_reason(exc)}") from exc
    except RecursionError as exc:  # not reachable past _nesting; kept so no input can 500
        raise InvalidLabels("labels must be a JSON object of strings: nested too deeply") from exc


def _nesting(raw: str) -> int:
    """The deepest bracket nesting of ``raw`` outside JSON strings, in one linear pass (a regex
    for strings would backtrack quadratically on a hostile run of escaped quotes)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'labels'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


LabelFilters = Sequence[tuple[str, str]]


def label_filters(
    label: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_FILTERS,
            description="`key=value`; repeat to require several labels (ANDed)",
        ),
    ] = None,
) -> LabelFilters:
    pairs = []
    for item in label or []:
        key, sep, value = item.partition("=")
        try:
            _KEY.validate_python(key)
        except ValidationError:
            sep = ""
        if not sep:
            raise InvalidLabels(
                f"label filter {item!r} is not key=value with a key matching {KEY_PATTERN}"
            )
        pairs.append((key, value))
    return pairs


LabelFiltersDep = Annotated[LabelFilters, Depends(label_filters)]


def matching(
    column: InstrumentedAttribute[Any], filters: LabelFilters
) -> list[ColumnElement[bool]]:
    """SQL conditions, so pagination totals count only matching rows (SQLite and PostgreSQL)."""
    return [column[key].as_string() == value for key, value in filters]
