"""The import rules of docs/architecture.md, read from the source with ast.

`make lint` checks the module-level rules with import-linter ([tool.importlinter] in
pyproject.toml); these two depend on what a module imports and from where, inside functions too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "workers", "compressor")
QUERY_CONSTRUCTS = {"select", "update", "delete", "insert", "func"}

# Pairs inside compressor/ that import each other, being untied separately (issue 26's
# compressor part). A pair not listed here fails the test; untie it instead of listing it.

# Repositories not named ``repository``: the inspection lease's conditional updates.
NAMED_REPOSITORIES = {"app.inspection_lease"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(module: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement, nested ones too."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                keep = len(package) - node.level + (1 if is_package else 0)
                base = ".".join(package[:keep] + ([base] if base else []))
            yield base, [alias.name for alias in node.names]


def _edges(sources: dict[str, Path]) -> dict[str, set[str]]:
    """Which of our modules each of our modules imports (a name that is a submodule counts as
    that submodule, so ``from app.jobs import goals`` is an edge to app.jobs.goals)."""
    edges: dict[str, set[str]] = {}
    for module, path in sources.items():
        targets = edges.setdefault(module, set())
        for imported, names in _imports(module, path):
            found = [f"{imported}.{n}" for n in names if f"{imported}.{n}" in sources]
            if len(found) < len(names) or not names:
                found.append(imported)
            targets.update(t for t in found if t in sources and t != module)
    return edges


def _mutual_pairs() -> set[frozenset[str]]:
    edges = _edges(_sources())
    return {
        frozenset((a, b)) for a, targets in edges.items() for b in targets if a in edges.get(b, ())
    }


def test_no_two_modules_import_each_other() -> None:
    pairs = _mutual_pairs()
    found = sorted(sorted(p) for p in pairs)
    assert not found, f"modules importing each other: {found}"


def _builds_queries(module: str, path: Path) -> list[str]:
    found = []
    for imported, names in _imports(module, path):
        if imported == "sqlalchemy" and not names:
            found.append("import sqlalchemy")
        elif imported == "sqlalchemy.dialects" or imported.startswith("sqlalchemy.dialects."):
            found += [f"{imported}.{n}" for n in names]  # their insert(...).on_conflict_...
        elif imported.split(".")[0] == "sqlalchemy":
            found += [f"{imported}.{n}" for n in names if n in QUERY_CONSTRUCTS]
    return found


def _may_build_queries(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return (
        last == "repository"
        or last.endswith("_repository")
        or module in NAMED_REPOSITORIES
        or module == "app.db"
        or module.startswith("app.db.")
    )


def test_only_repositories_import_query_constructs() -> None:
    builders = {
        module: found
        for module, path in _sources().items()
        if not _may_build_queries(module) and (found := _builds_queries(module, path))
    }
    assert not builders, f"query constructs outside a repository: {builders}"
