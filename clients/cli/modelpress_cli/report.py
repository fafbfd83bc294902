"""A job's report as a table: each figure before and after."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _mb(value: Any) -> str:
    return f"{value / 1e6:,.2f} MB" if isinstance(value, int | float) else "-"


def _ms(value: Any) -> str:
    return f"{value:.2f} ms" if isinstance(value, int | float) else "-"


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
        f"{report.get('compression_ratio', 0):.2f}x smaller",
    )
    table.add_row(
        "latency p50",
        _ms(original.get("latency_p50_ms")),
        _ms(compressed.get("latency_p50_ms")),
        f"{report.get('speedup_p50', 0):.2f}x faster",
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
