"""No function in app/, workers/ or compressor/ is longer than 80 lines (docs/architecture.md).

Counted by ast: from the ``def`` line to the function's last line, docstring included (a
decorator above the ``def`` is not counted). A longer function is split along its seams, not
listed here as an exception.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "workers", "compressor")
MOST_LINES = 80


def _too_long(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > MOST_LINES
    ]


def test_the_count_tells_81_lines_from_80(tmp_path: Path) -> None:
    body = '    """A docstring counts."""\n' + "    x = 1\n" * (MOST_LINES - 3) + "    return x\n"
    (tmp_path / "fits.py").write_text("def fits():\n" + body)
    method = "    def long(self):\n        y = 2\n" + textwrap.indent(body, "    ")
    (tmp_path / "nested.py").write_text("class C:\n" + method)
    assert _too_long(tmp_path / "fits.py", tmp_path) == []
    assert _too_long(tmp_path / "nested.py", tmp_path) == ["nested.py:2 long (81 lines)"]


def test_no_function_is_over_80_lines() -> None:
    found = [
        line
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line in _too_long(path)
    ]
    assert not found, f"functions over {MOST_LINES} lines: {found}"
