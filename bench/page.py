"""docs/benchmarks.json, and docs/benchmarks.md rendered from it alone.

The JSON holds every figure with the run that measured it (date, commit, load average, wall
time, command). A full run rewrites both files whole; ``--only PART`` replaces that part's
section, so a page joined from several runs says so under each heading instead of a person
typing it. The template below holds no digits: every number on the page comes from the JSON,
which tests/test_bench_page.py checks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import Row

SCHEMA = 1
COMMAND = ".venv/bin/python -m bench.run"
LEGACY = "legacy"
# bench/peers.py writes this into a row that its peer beats; the shortfall list repeats it.
LOSES = "loses to the peer on:"


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def provenance(
    *,
    started: float,
    load_start: float,
    wall_s: float,
    argv: list[str],
    machine: dict[str, Any],
    techniques: list[str],
) -> tuple[str, dict[str, Any]]:
    """The run's id and its provenance; ``started`` is a ``time.time()`` stamp."""
    run_id = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    return run_id, {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "commit": _git("rev-parse", "--short=12", "HEAD") or "unknown",
        # A run from an edited tree is not the commit's figures; say so.
        # (The page and its JSON do not count: an earlier --only run of a series rewrote them.)
        "uncommitted_changes": bool(
            _git(
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!docs/benchmarks.json",
                ":!docs/benchmarks.md",
            )
        ),  # fmt: skip
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "wall_min": round(wall_s / 60, 1),
        "command": " ".join([COMMAND, *argv]),
        "machine": machine,
        "techniques": techniques,
    }


def row_dict(row: Row) -> dict[str, Any]:
    return asdict(row)


def merge(
    before: dict[str, Any],
    *,
    run_id: str,
    run: dict[str, Any],
    sections: list[dict[str, Any]],
    full: bool,
    order: tuple[str, ...],
) -> dict[str, Any]:
    """The document after this run: all sections replaced (full) or only this run's ones.

    Each new row keeps the verdict the replaced page gave it, so a goal going from met to
    missed shows in the shortfall list.
    """
    old_rows = {
        r["name"]: r
        for s in before.get("sections", [])
        for r in s["rows"]
        if r.get("met") is not None
    }
    for section in sections:
        section["run"] = run_id
        for r in section["rows"]:
            prior = old_rows.get(r["name"])
            r["previously"] = Row(**_row_fields(prior)).verdict() if prior else None
    kept = (
        []
        if full
        else [s for s in before.get("sections", []) if s["key"] not in {x["key"] for x in sections}]
    )
    every = kept + sections
    every.sort(key=lambda s: order.index(s["key"]) if s["key"] in order else len(order))
    runs = {**before.get("runs", {}), run_id: run}
    used = {s["run"] for s in every}
    return {
        "schema": SCHEMA,
        "latest_full_run": run_id if full else before.get("latest_full_run"),
        "runs": {k: v for k, v in runs.items() if k in used},
        "sections": every,
    }


def _row_fields(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in ("name", "figures", "goal", "met", "reached", "notes")}


def row_line(row: Row) -> str:
    figures = "<br>".join(f"{k}: {v}" for k, v in row.figures.items()) or "—"
    return f"| {row.name} | {figures} | {row.goal or '—'} | **{row.verdict()}** |"


def _when(run: dict[str, Any]) -> str:
    edited = " with uncommitted changes" if run["uncommitted_changes"] else ""
    return (
        f"{run['date']}, commit {run['commit']}{edited}, load average "
        f"{run['load_average_start']} at start and {run['load_average_end']} at end, "
        f"wall time {run['wall_min']} min, `{run['command']}`"
    )


def _latest(doc: dict[str, Any]) -> dict[str, Any] | None:
    measured = [r for k, r in doc["runs"].items() if k != LEGACY]
    return max(measured, key=lambda r: r["date"]) if measured else None


def _mark(doc: dict[str, Any], section: dict[str, Any]) -> list[str]:
    """The generated line under a heading whose figures are not the latest full run's."""
    run = doc["runs"][section["run"]]
    if section["run"] == LEGACY:
        return [
            f"Carried over from the page of {run['page_date']} (commit {run['page_commit']}), "
            "before provenance was recorded: quoted as that page gave it (lines marked > are its "
            "prose, typed there by hand), measured by the bench code of that date; the next "
            "full `make bench` measures it with the current code.",
            "",
            *[f"> {line}" for line in section.get("preface", [])],
            *([""] if section.get("preface") else []),
        ]
    if section["run"] != doc["latest_full_run"]:
        return [f"Measured separately: {_when(run)}.", ""]
    latest = _latest(doc)
    if latest is not None and latest["commit"] != run["commit"]:
        return [
            f"Measured in the full run at commit {run['commit']}, which predates the latest "
            f"run's commit {latest['commit']}.",
            "",
        ]
    return []


def _header(doc: dict[str, Any]) -> list[str]:
    full = doc["runs"].get(doc["latest_full_run"] or "")
    one_run = full is not None and all(s["run"] == doc["latest_full_run"] for s in doc["sections"])
    lines = [
        "# Benchmarks",
        "",
        "Generated by `" + COMMAND + "` from `docs/benchmarks.json` (edit neither by hand: "
        "`make bench` rewrites both whole, `--only PART` replaces one section). "
        + (
            "Every figure below was measured in the same run, described here. "
            if one_run
            else "Not every figure below comes from one run: a section measured in another run "
            "says when, at which commit and under which load, under its heading. "
        )
        + "Latency is the median of fresh-process runs with one intra-op thread, the best of "
        "alternating rounds so that a neighbour's burst on the shared machine penalises no "
        "model in particular. Fidelity and accuracy are measured on held-out inputs that no "
        "calibration or training used; byte counts compare graphs stripped of debug info "
        "alike, and each row names the float baseline of its ratios.",
        "",
    ]
    shown = full or _latest(doc) or doc["runs"].get(LEGACY)
    if shown is None:
        return lines
    lines.append("Machine: " + ", ".join(f"{k} {v}" for k, v in shown["machine"].items()))
    if full is not None:
        lines.append(f"Latest full run: {_when(full)}.")
    else:
        lines.append("No full run is recorded yet.")
    legacy = doc["runs"].get(LEGACY)
    if legacy is not None:
        lines.append(
            f"The page of {legacy['page_date']}, whose sections are carried over, said of its "
            f'runs: "{legacy["header"]}"'
        )
    lines += [f"Techniques registered: {', '.join(shown['techniques'])}.", ""]
    return lines


def _suffix(doc: dict[str, Any], section: dict[str, Any]) -> str:
    if section["run"] == LEGACY:
        return f" (carried over from the page of {doc['runs'][LEGACY]['page_date']})"
    if section["run"] != doc["latest_full_run"]:
        return " (measured separately)"
    return ""


def _short_on(result: str) -> set[str]:
    found = re.search(r"short on: ([^)]*)\)", result)
    return {part.strip() for part in found.group(1).split(",")} if found else set()


def _moved(row: Row, before: str | None) -> str:
    if before is None:
        return ""
    if before.startswith("met"):
        return f" This goal was met on the page this run replaced, which said: {before}."
    newly = sorted(_short_on(row.reached) - _short_on(before))
    if newly:
        return f" Newly missed here: {', '.join(newly)}; the page this run replaced said: {before}."
    return ""


def render(doc: dict[str, Any]) -> str:
    lines = _header(doc)
    short: list[str] = []
    unavailable: list[str] = []
    for section in doc["sections"]:
        lines += [f"## {section['title']}", "", *_mark(doc, section)]
        if "wall_s" in section:
            lines += [f"Section wall time: {section['wall_s']} s.", ""]
        lines += ["| benchmark | figures | goal | result |", "|---|---|---|---|"]
        rows = [(Row(**_row_fields(r)), r) for r in section["rows"]]
        lines += [row_line(row) for row, _ in rows]
        caveats = section.get("caveats", {})
        notes = [f"- {row.name}: {row.notes}" for row, _ in rows if row.notes]
        notes += [
            f"- {name}: carried-over verdict in question: {why}" for name, why in caveats.items()
        ]
        notes += [f"> {line}" for line in section.get("quoted_notes", [])]
        if notes:
            lines += ["", "Notes:", *notes]
        lines.append("")
        where = _suffix(doc, section)
        for row, raw in rows:
            if row.met is False:
                short.append(
                    f"- {row.name}{where}: goal {row.goal}; reached {row.reached}."
                    + _moved(row, raw.get("previously"))
                )
            if row.met is not False and LOSES in row.reached:
                short.append(f"- {row.name}{where}: {row.reached}.")
            if row.met is None and row.reached in ("not available", "failed", "not measured"):
                unavailable.append(f"- {row.name}{where}: {row.reached} ({row.notes}).")
        short += [f"- {name}{where}: {why}" for name, why in caveats.items()]
    lines += ["## Where we fall short", ""]
    short = _too_slow(doc) + short
    if not short and not unavailable:
        lines.append("- Every measured goal above was met.")
    lines += [*short, *unavailable, ""]
    return "\n".join(lines)


def _too_slow(doc: dict[str, Any]) -> list[str]:
    """The full run's wall time against its goal, with the sections that cost the most."""
    full = doc["runs"].get(doc["latest_full_run"] or "")
    if not full or "wall_goal_min" not in full or full["wall_min"] <= full["wall_goal_min"]:
        return []
    timed = sorted(
        (s for s in doc["sections"] if "wall_s" in s and s["run"] == doc["latest_full_run"]),
        key=lambda s: -s["wall_s"],
    )
    slowest = ", ".join(f"{s['key']} {s['wall_s']} s" for s in timed[:4])
    return [
        f"- The full run took {full['wall_min']} min, over its goal of {full['wall_goal_min']} "
        "min" + (f"; slowest sections: {slowest}." if slowest else ".")
    ]


def read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"schema": SCHEMA, "latest_full_run": None, "runs": {}, "sections": []}
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def write(doc: dict[str, Any], page: Path) -> Path:
    """Both files, the page from the JSON alone; returns the JSON's path."""
    store = page.with_suffix(".json")
    page.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    page.write_text(render(json.loads(store.read_text())))
    return store
