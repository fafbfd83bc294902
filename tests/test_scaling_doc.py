"""docs/scaling.md is the render of docs/capacity.json (bench/capacity.py measures it), and the
plan's arithmetic follows the figures: no number on the page is typed by hand."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from bench.capacity_plan import PG_MAX_CONNECTIONS, _fit, render

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _doc() -> dict[str, Any]:
    return json.loads((DOCS / "capacity.json").read_text())


def test_page_is_the_render_of_the_json() -> None:
    assert render(_doc()) == (DOCS / "scaling.md").read_text()


def test_the_json_holds_runs_at_one_two_and_four_workers() -> None:
    runs = _doc()["runs"]
    assert [r["workers"] for r in runs] == [1, 2, 4]
    assert all(r["succeeded"] == r["jobs"] for r in runs)


def test_least_squares_line() -> None:
    assert _fit([1, 2, 4], [5, 7, 11]) == (3.0, 2.0)


def test_the_first_limit_follows_the_measured_connections() -> None:
    doc = _doc()
    heavy = copy.deepcopy(doc)
    for r in heavy["runs"]:
        r["db_connections"]["peak"] = 10 + 3 * r["workers"]  # 10 + 3 x 120 workers
    text = render(heavy)
    assert f"370 wanted against {PG_MAX_CONNECTIONS}" in text and "PgBouncer" in text
    light = copy.deepcopy(doc)
    for r in light["runs"]:
        r["db_connections"]["peak"] = 4
    assert re.search(r"Nothing shared: 4 PostgreSQL connections fit", render(light))
