"""The advise report as one self-contained HTML page: tables and inline SVG charts, no external assets."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from llmprov.core.advise.report import (
    AdviseReport,
    EngineReport,
    HostReport,
    latency_ms,
    report_to_json,
    stats_ms,
)
from llmprov.core.advise.slo import parse_slo
from llmprov.core.bench_stats import BenchResult, latest_by_concurrency

WIDTH, HEIGHT = 520, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 28, 44
# Colour-blind-safe (Okabe & Ito), one per engine in report order.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1120px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{margin-top:2.2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8rem 0}td,th{border:1px solid #ccc;padding:.25rem .55rem}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
.rec{background:#eef6ee;border-left:4px solid #2a7a2a;padding:.6rem 1rem}
.notengine{color:#a00;font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:1rem}
svg{background:#fff;border:1px solid #ddd}svg text{font:11px system-ui,sans-serif;fill:#333}
"""


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    colour: str
    points: tuple[tuple[float, float], ...]
    # Drawn dashed: figures of a server that said it is not the engine.
    dashed: bool = False


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above `value` (an axis top); 1 for value <= 0."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return float(step * power)
    return float(10 * power)


def line_chart(
    title: str,
    y_label: str,
    levels: Sequence[float],
    series: Sequence[Series],
    limit: float | None = None,
    x_label: str = "concurrency",
) -> str:
    """An SVG line chart: x = the levels on a log2 axis, one polyline per series, the SLO dashed."""
    xs = sorted(set(levels))
    values = [v for s in series for _, v in s.points]
    top = nice_ceiling(max([*values, limit or 0.0, 0.0]) * 1.05)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    lo, hi = math.log2(xs[0]), math.log2(xs[-1])

    def px(level: float) -> float:
        span = hi - lo
        fraction = 0.5 if span == 0 else (math.log2(level) - lo) / span
        return MARGIN_LEFT + fraction * plot_w

    def py(value: float) -> float:
        return MARGIN_TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
    ]
    for i in range(5):
        value = top * i / 4
        y = py(value)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#eee"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(value)}</text>'
        )
    for level in xs:
        x = px(level)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{HEIGHT - MARGIN_BOTTOM}" '
            'stroke="#f2f2f2"/>'
            f'<text x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" text-anchor="middle">{level:g}</text>'
        )
    parts.append(
        f'<text x="{MARGIN_LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(14 {MARGIN_TOP + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
        f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#999"/>'
    )
    if limit is not None:
        y = py(limit)
        parts.append(
            f'<line class="slo" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#c00" stroke-dasharray="6 4" stroke-width="1.5"/>'
            f'<text x="{WIDTH - MARGIN_RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end" '
            f'fill="#c00">SLO {_fmt(limit)}</text>'
        )
    for index, s in enumerate(series):
        coords = " ".join(f"{px(level):.1f},{py(value):.1f}" for level, value in s.points)
        dash = ' stroke-dasharray="3 3"' if s.dashed else ""
        parts.append(
            f'<polyline class="series" fill="none" stroke="{s.colour}" stroke-width="2"{dash} '
            f'points="{coords}"><title>{escape(s.label)}</title></polyline>'
        )
        parts += [
            f'<circle cx="{px(level):.1f}" cy="{py(value):.1f}" r="3" fill="{s.colour}">'
            f"<title>{escape(s.label)}: {level} → {_fmt(value)}</title></circle>"
            for level, value in s.points
        ]
        y = MARGIN_TOP + 14 + 15 * index
        parts.append(
            f'<rect x="{MARGIN_LEFT + 8}" y="{y - 9}" width="12" height="3" fill="{s.colour}"/>'
            f'<text x="{MARGIN_LEFT + 24}" y="{y - 4}">{escape(s.label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


Metric = Callable[[BenchResult], float | None]


def _series(engines: Sequence[EngineReport], value: Metric) -> list[Series]:
    out = []
    for index, e in enumerate(engines):
        points = tuple(
            (level, v)
            for level, r in sorted(latest_by_concurrency(e.results).items())
            if (v := value(r)) is not None
        )
        if points:
            out.append(
                Series(e.label, COLOURS[index % len(COLOURS)], points, e.not_engine is not None)
            )
    return out


def _latency(result: BenchResult, metric: str, statistic: str) -> float | None:
    return latency_ms(result, metric, statistic)


def host_charts(host: HostReport, slo_text: str, levels: Sequence[int]) -> list[str]:
    """Throughput, then one latency chart per SLO objective (E2E p99 when the SLO has none)."""
    all_levels = sorted(set(levels) | {r.concurrency for e in host.engines for r in e.results})
    if not all_levels:
        return []
    charts = []
    throughput = _series(host.engines, lambda r: r.stats.output_tokens_per_s)
    charts.append(line_chart("Output tokens/s", "tokens/s", all_levels, throughput))
    slo = parse_slo(slo_text) if slo_text else None
    objectives: list[tuple[str, str, float | None]] = (
        [(o.metric, o.statistic, o.limit_ms) for o in slo.objectives] if slo else []
    )
    for metric, statistic, limit in objectives or [("e2e", "p99", None)]:
        title = f"{metric.upper()} {statistic} (ms)"
        series = _series(
            host.engines, functools.partial(_latency, metric=metric, statistic=statistic)
        )
        charts.append(line_chart(title, "ms", all_levels, series, limit))
    rates = sorted({r.request_rate for e in host.engines for r in e.rate_levels})
    if rates:
        metric, statistic, limit = (objectives or [("e2e", "p99", None)])[0]
        by_rate = [
            Series(
                e.label,
                COLOURS[index % len(COLOURS)],
                tuple(
                    (r.request_rate, v)
                    for r in sorted(e.rate_levels, key=lambda r: r.request_rate)
                    if (v := stats_ms(r.stats, metric, statistic)) is not None
                ),
                e.not_engine is not None,
            )
            for index, e in enumerate(host.engines)
            if e.rate_levels
        ]
        title = f"{metric.upper()} {statistic} (ms) by request rate"
        charts.append(line_chart(title, "ms", rates, by_rate, limit, "requests per second"))
    return charts


def _cell(value: str, numeric: bool = True) -> str:
    return f'<td class="n">{escape(value)}</td>' if numeric else f"<td>{escape(value)}</td>"


def report_to_html(report: AdviseReport) -> str:
    body = [
        f"<h1>llmprov advise: {escape(report.model)}</h1>",
        f"<p>Workload: {escape(report.workload.source)} ({report.workload.requests} requests, "
        f"{report.workload.mean_output_tokens:.0f} output tokens on average). "
        f"SLO: <code>{escape(report.slo or 'none')}</code>. "
        f"Users: {report.users or 'not given'}. "
        f"Concurrency levels: {', '.join(map(str, report.concurrencies))}. "
        + (
            f"Request rates: {', '.join(f'{r:g}' for r in report.request_rates)} /s. "
            if report.request_rates
            else ""
        )
        + f"Created {escape(report.created)}.</p>",
    ]
    for host in report.hosts:
        body += _host_section(host, report)
    if report.applied:
        body.append("<h2>Applied</h2><ul>")
        body += [f"<li>{escape(line)}</li>" for line in report.applied]
        body.append("</ul>")
    # The record itself rides along, so the page alone is the whole report. A script element's
    # text is not HTML-unescaped, so the JSON goes in raw with <, > and & as JSON escapes: no
    # `</script>` can end it early.
    record = (
        report_to_json(report)
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
    )
    body.append(f'<script type="application/json" id="advise-report">{record}</script>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>llmprov advise: {escape(report.model)}</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _host_section(host: HostReport, report: AdviseReport) -> list[str]:
    hw = host.hardware
    gpu = "none" if hw.gpu_count == 0 else f"{hw.gpu_count} × {hw.gpu_vendor}"
    out = [
        f"<h2>{escape(host.host)}</h2>",
        f"<p>Hardware: {escape(hw.os)}/{escape(hw.arch)}, GPU: {escape(gpu)}</p>",
        f'<div class="rec"><strong>Recommendation: '
        f"{escape(host.recommendation.engine or 'none')}</strong><ul>",
        *(f"<li>{escape(reason)}</li>" for reason in host.recommendation.reasons),
        "</ul></div>",
    ]
    for e in host.engines:
        if e.not_engine:
            out.append(
                f'<p class="notengine">The {escape(e.engine)} figures come from a server that '
                f"said it is not {escape(e.engine)} ({escape(e.not_engine)}): not the engine's "
                "own, and not ranked.</p>"
            )
    out.append(
        "<table><tr><th>engine</th><th>cold start s</th><th>after unload s</th><th>RSS MiB</th>"
        "<th>GPU MiB</th>"
        "<th>goodput concurrency</th><th>tokens/s there</th><th>knee</th><th>goodput rate /s</th>"
        "<th>note</th></tr>"
    )
    for e in host.engines:
        note = "; ".join([*([e.error] if e.error else []), *e.notes]) or (
            f"misses at {e.first_miss.concurrency}: {'; '.join(e.first_miss.reasons)}"
            if e.first_miss
            else "meets the SLO at every level"
        )
        out.append(
            "<tr>"
            + _cell(e.label, numeric=False)
            + _cell("–" if e.cold_start_s is None else f"{e.cold_start_s:.1f}")
            + _cell("–" if e.reload_s is None else f"{e.reload_s:.1f}")
            + _cell("–" if e.rss_bytes is None else f"{e.rss_bytes / 2**20:.0f}")
            + _cell("–" if e.gpu_memory_mib is None else f"{e.gpu_memory_mib:.0f}")
            + _cell(str(e.goodput.concurrency) if e.goodput else "–")
            + _cell(f"{e.goodput.output_tokens_per_s:.1f}" if e.goodput else "–")
            + _cell(f"{e.knee_concurrency or '–'} ({e.knee_metric})")
            + _cell("–" if e.goodput_rate is None else f"{e.goodput_rate:g}")
            + _cell(note, numeric=False)
            + "</tr>"
        )
    out.append("</table>")
    charts = host_charts(host, report.slo, report.concurrencies)
    if charts:
        out.append('<div class="charts">' + "".join(charts) + "</div>")
    return out
