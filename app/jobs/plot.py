"""A job's picture: bytes against p50 latency, as SVG or PNG.

A goal job shows every measured candidate coloured by the budget's figure, the ones that miss the
budget hollow, the Pareto front as a line, the chosen candidate and the original model. A recipe
job shows the original and the compressed model on the same axes.

matplotlib's object API on the Agg canvas only: no pyplot, whose global figure state is not for a
server. Each artist carries a ``gid``, which the SVG keeps as an element id (``candidate-<job>``,
``chosen``, ``original``, ``compressed``, ``front``), so a program can find the points.
"""

from __future__ import annotations

import io
import textwrap
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from app import errors
from compressor.report import CompressionReport
from compressor.search.report import CandidateResult, SearchReport

# Text stays text in the SVG (searchable, selectable, small). The only process-wide setting this
# module touches; it is read at save time and nothing else in the server draws.
matplotlib.rcParams["svg.fonttype"] = "none"
matplotlib.rcParams["svg.hashsalt"] = "modelpress"  # stable element ids from one report

SVG = "image/svg+xml"
PNG = "image/png"
Format = Literal["svg", "png"]
MEDIA_TYPES: dict[Format, str] = {"svg": SVG, "png": PNG}

# The budget's figure by goal key, and whether a lower value is the better one.
BUDGET_FIGURES: dict[str, tuple[str, bool]] = {
    "max_accuracy_drop": ("accuracy drop", True),
    "min_cosine": ("minimum cosine", False),
    "min_top1_agreement": ("top-1 agreement", False),
    "max_kl_divergence": ("KL divergence", True),
    "max_perplexity_increase": ("perplexity increase", True),
}
MISSED = "#9e9e9e"
# Font and path caches are shared between figures; one render at a time keeps them consistent.
_RENDER = threading.Lock()


class NotAcceptable(errors.AppError):
    status, slug, title = 406, "not-acceptable", "No acceptable representation"


def negotiate(accept: str | None) -> Format:
    """SVG unless ``Accept`` prefers PNG; NotAcceptable when it allows neither."""
    if accept is None or not accept.strip():
        return "svg"
    quality: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        quality[media] = max(q, quality.get(media, 0.0))

    def q_of(media: str) -> float:
        for key in (media, media.split("/")[0] + "/*", "*/*"):
            if key in quality:
                return quality[key]
        return 0.0

    svg, png = q_of(SVG), q_of(PNG)
    if svg <= 0 and png <= 0:
        raise NotAcceptable(
            f"this resource is {SVG} or {PNG}; the request's Accept ({accept}) allows neither"
        )
    return "png" if png > svg else "svg"


@dataclass(frozen=True)
class _Point:
    bytes: float
    latency_ms: float


def render(report: CompressionReport, *, job_id: str, fmt: Format = "svg") -> bytes:
    """The picture of one succeeded job's report."""
    with _RENDER:
        figure = Figure(figsize=(7.5, 5.0), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        if report.search is not None:
            _draw_search(figure, axes, report.search, report)
            title = f"Goal job {job_id[:8]}: {report.search.budget}"
        else:
            _draw_recipe(axes, report)
            title = f"Job {job_id[:8]}: original and compressed"
        axes.set_xscale("log")
        axes.set_xlabel("model bytes (log scale)")
        axes.set_ylabel("p50 latency (ms)")
        # A budget in words can be long ("..., plus one standard error of ..."): wrap it.
        axes.set_title(textwrap.fill(title, width=90), fontsize=10)
        axes.grid(True, which="both", alpha=0.25)
        axes.legend(loc="best", fontsize=8, framealpha=0.85)
        out = io.BytesIO()
        figure.savefig(out, format=fmt, metadata=_metadata(fmt, job_id))
        return out.getvalue()


def _metadata(fmt: Format, job_id: str) -> dict[str, str | None]:
    title = f"modelpress job {job_id}: bytes against p50 latency"
    if fmt == "svg":  # no creation date: the same report draws the same file
        return {"Title": title, "Date": None}
    return {"Title": title}


def _original(search: SearchReport, report: CompressionReport) -> _Point:
    if search.original is not None:
        return _Point(search.original.bytes, search.original.latency_p50_ms)
    return _Point(report.original.model_bytes, report.original.latency_p50_ms)


def _measured(candidates: Sequence[CandidateResult]) -> list[tuple[CandidateResult, _Point]]:
    """The candidates that have both figures (a failed one has neither), with their point."""
    return [
        (c, _Point(c.bytes, c.latency_p50_ms))
        for c in candidates
        if c.bytes is not None and c.latency_p50_ms is not None
    ]


def _draw_search(
    figure: Figure, axes: Axes, search: SearchReport, report: CompressionReport
) -> None:
    name, lower_is_better = BUDGET_FIGURES.get(search.goal.budget[0], ("budget figure", False))
    measured = _measured(search.candidates)
    values = [c.budget_value for c, _ in measured if c.budget_value is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if low == high:  # one value, or all alike: a band around it
        low, high = low - 0.5 * (abs(low) or 1), high + 0.5 * (abs(high) or 1)
    norm = Normalize(low, high)
    cmap = matplotlib.colormaps["viridis_r" if lower_is_better else "viridis"]
    met_label, missed_label = "meets the budget", "misses the budget"
    for candidate, point in measured:
        value = candidate.budget_value
        colour = cmap(norm(value)) if value is not None else MISSED
        if candidate.meets_budget:
            style = {"c": [colour], "edgecolors": "black", "linewidths": 0.5}
            label, met_label = met_label, "_"
        else:  # hollow, ringed in the budget's colour
            style = {"facecolors": "none", "edgecolors": [colour], "linewidths": 1.2}
            label, missed_label = missed_label, "_"
        axes.scatter(
            [point.bytes],
            [point.latency_ms],
            s=42,
            zorder=3,
            label=label,
            gid=f"candidate-{candidate.job_id}",
            **style,  # type: ignore[arg-type]
        )
    front = sorted(
        (point for c, point in measured if c.on_front), key=lambda p: (p.bytes, p.latency_ms)
    )
    if front:
        axes.plot(
            [p.bytes for p in front],
            [p.latency_ms for p in front],
            color="#d62728",
            linewidth=1.2,
            zorder=2,
            label="Pareto front",
            gid="front",
        )
    chosen = next((p for c, p in measured if c.job_id == search.chosen_job_id), None)
    if chosen is not None:
        axes.scatter(
            [chosen.bytes],
            [chosen.latency_ms],
            s=240,
            marker="*",
            facecolors="none",
            edgecolors="#d62728",
            linewidths=1.5,
            zorder=4,
            label="chosen",
            gid="chosen",
        )
        axes.annotate(
            f"chosen: {_bytes_words(chosen.bytes)}, {chosen.latency_ms:.3g} ms",
            (chosen.bytes, chosen.latency_ms),
            xytext=(12, 12),
            textcoords="offset points",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "#d62728", "linewidth": 0.8},
        )
    original = _original(search, report)
    _mark(axes, original, "original", marker="X", colour="black", left=True)
    axes.margins(x=0.08, y=0.08)
    if values:
        bar = figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, pad=0.02)
        bar.set_label(f"{name} on data.eval")


def _draw_recipe(axes: Axes, report: CompressionReport) -> None:
    original = _Point(report.original.model_bytes, report.original.latency_p50_ms)
    compressed = _Point(report.compressed.model_bytes, report.compressed.latency_p50_ms)
    _mark(axes, original, "original", marker="X", colour="black", left=True)
    _mark(axes, compressed, "compressed", marker="o", colour="#1f77b4")
    axes.plot(
        [original.bytes, compressed.bytes],
        [original.latency_ms, compressed.latency_ms],
        color="#7f7f7f",
        linewidth=0.8,
        linestyle="--",
        zorder=1,
    )
    # Two points a decade or less apart still get room around them on the log axis.
    low, high = sorted((original.bytes, compressed.bytes))
    axes.set_xlim(low / 2, high * 2)
    top = max(original.latency_ms, compressed.latency_ms)
    axes.set_ylim(0, top * 1.25 if top > 0 else 1)


def _mark(
    axes: Axes, point: _Point, name: str, *, marker: str, colour: str, left: bool = False
) -> None:
    """A named point; ``left`` puts its words to its left (the largest model sits rightmost)."""
    axes.scatter(
        [point.bytes], [point.latency_ms], s=80, marker=marker, c=colour, zorder=4, label=name,
        gid=name,
    )  # fmt: skip
    axes.annotate(
        f"{name}: {_bytes_words(point.bytes)}, {point.latency_ms:.3g} ms",
        (point.bytes, point.latency_ms),
        xytext=(-8 if left else 8, -14),
        textcoords="offset points",
        horizontalalignment="right" if left else "left",
        fontsize=8,
    )


def _bytes_words(value: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{int(value)} B"
