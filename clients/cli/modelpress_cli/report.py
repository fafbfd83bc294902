"""A job's report as a table: each figure before and after."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _mb(value: Any) -> str:
    return f"{value / 1e6:,.2f} MB" if isinstance(value, int | float) else "-"


def _ms(value: Any) -> str:
    return f"{value:.2f} ms" if isinstance(value, int | float) else "-"


def change(ratio: Any, *, gain: str, loss: str) -> str:
    """A before/after ratio (original over compressed) in words: "2.00x smaller", or for a ratio
    below one the inverse, "1.11x larger", never "0.90x smaller"."""
    if not isinstance(ratio, int | float) or isinstance(ratio, bool) or ratio <= 0:
        return "-"
    if f"{ratio:.2f}" == "1.00":
        return "unchanged"
    if ratio > 1:
        return f"{ratio:.2f}x {gain}"
    return f"{1 / ratio:.2f}x {loss}"


def report_table(report: dict[str, Any]) -> Table:
    original, compressed = report.get("original", {}), report.get("compressed", {})
    fidelity = report.get("fidelity", {})
    table = Table(title="modelpress report")
    for column in ("", "original", "compressed", "change"):
        table.add_column(column)
    table.add_row(
        "model bytes",
        _mb(original.get("model_bytes")),
        _mb(compressed.get("model_bytes")),
        change(report.get("compression_ratio"), gain="smaller", loss="larger"),
    )
    table.add_row(
        "latency p50",
        _ms(original.get("latency_p50_ms")),
        _ms(compressed.get("latency_p50_ms")),
        change(report.get("speedup_p50"), gain="faster", loss="slower"),
    )
    table.add_row(
        "latency p95",
        _ms(original.get("latency_p95_ms")),
        _ms(compressed.get("latency_p95_ms")),
        "",
    )
    if fidelity.get("accuracy_original") is not None:
        table.add_row(
            "accuracy",
            f"{fidelity['accuracy_original']:.4f}",
            f"{fidelity['accuracy_compressed']:.4f}",
            "",
        )
    table.add_row(
        "fidelity (cosine min / mean)",
        "",
        f"{fidelity.get('cosine_min', 0):.4f} / {fidelity.get('cosine_mean', 0):.4f}",
        "",
    )
    for warning in report.get("warnings", []):
        table.add_row("warning", "", warning, "")
    return table
