"""The report's two plots, drawn with matplotlib's Agg canvas (no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

_SIZE = (8, 3.2)  # inches at 100 dpi: 800 x 320 px, legible on a page and under 100 KB
_TOP_CLASSES = 12


def latency_plot(
    path: Path,
    captured_at: Sequence[float],
    latencies_ms: Sequence[float],
    percentiles: Mapping[str, float],
) -> None:
    """End-to-end latency (capture to detections read) of each frame over the run."""
    figure = Figure(figsize=_SIZE, dpi=100, layout="constrained")
    axes = figure.subplots()
    if captured_at:
        start = min(captured_at)
        points = sorted(zip((t - start for t in captured_at), latencies_ms, strict=True))
        axes.plot(*zip(*points, strict=True), ".-", color="#3070b0", lw=0.8, ms=3, label="frame")
    for name, style in (("p50", "--"), ("p95", ":")):
        if name in percentiles:
            value = percentiles[name]
            axes.axhline(value, color="#d02020", ls=style, lw=1, label=f"{name} {value:.0f} ms")
    axes.set_xlabel("seconds since the first frame")
    axes.set_ylabel("end-to-end latency (ms)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    figure.savefig(path)


def classes_plot(path: Path, by_class: Mapping[str, int]) -> None:
    """Detections per class over the run, most frequent first (the rest summed as 'other')."""
    ranked = sorted(by_class.items(), key=lambda item: -item[1])
    shown = ranked[:_TOP_CLASSES]
    if rest := sum(n for _, n in ranked[_TOP_CLASSES:]):
        shown.append(("other", rest))
    figure = Figure(figsize=_SIZE, dpi=100, layout="constrained")
    axes = figure.subplots()
    names, counts = [n for n, _ in shown], [c for _, c in shown]
    bars = axes.bar(names, counts, color="#3070b0")
    axes.bar_label(bars, fontsize="small")
    axes.set_ylabel("detections")
    axes.tick_params(axis="x", labelrotation=30 if len(names) > 6 else 0)
    axes.grid(axis="y", alpha=0.3)
    if not names:
        axes.text(0.5, 0.5, "no detections", ha="center", va="center", transform=axes.transAxes)
    figure.savefig(path)
