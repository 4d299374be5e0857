"""PNG chart of benchmark runs: output tokens/s and p99 end-to-end latency against concurrency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

# The Agg canvas directly, not pyplot: no global figure state and no GUI backend lookup.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from llmprov.core.bench_stats import BenchResult, latest_by_concurrency


def write_chart(path: Path, runs: Mapping[str, Sequence[BenchResult]]) -> None:
    """Two panels, one line per run (label → that run's records), written as PNG to `path`."""
    chart_figure(runs).savefig(path, format="png", dpi=100)


def chart_figure(runs: Mapping[str, Sequence[BenchResult]]) -> Figure:
    """The chart's figure: throughput and p99 latency panels, one line per run in each."""
    if not any(runs.values()):
        raise ValueError("no benchmark results to chart")
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    throughput, latency = figure.subplots(1, 2)
    levels: set[int] = set()
    for label, results in runs.items():
        by_level = latest_by_concurrency(results)
        xs = sorted(by_level)
        levels.update(xs)
        throughput.plot(
            xs, [by_level[x].stats.output_tokens_per_s for x in xs], marker="o", label=label
        )
        p99 = [(x, e2e.p99_ms / 1000) for x in xs if (e2e := by_level[x].stats.e2e) is not None]
        latency.plot([x for x, _ in p99], [y for _, y in p99], marker="o", label=label)
    for axes, title, unit in (
        (throughput, "Output throughput", "tokens/s"),
        (latency, "End-to-end latency, p99", "seconds"),
    ):
        axes.set_title(title)
        axes.set_xlabel("concurrency")
        axes.set_ylabel(unit)
        axes.set_ylim(bottom=0)
        # Levels usually double or quadruple: a log axis spaces them evenly, labelled as given.
        axes.set_xscale("log", base=2)
        axes.xaxis.set_major_locator(FixedLocator(sorted(levels)))
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_xticklabels([str(level) for level in sorted(levels)])
        axes.grid(True, alpha=0.3)
        axes.legend()
    return figure
