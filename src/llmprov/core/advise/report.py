"""The advise report: a schema-versioned record of every host's measurements, and its Markdown form."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from llmprov.core.advise.curve import Goodput, first_miss, goodput, highest_meeting, knee
from llmprov.core.advise.recommend import EngineOutcome, Hardware, recommend
from llmprov.core.advise.slo import Slo
from llmprov.core.bench_stats import BenchResult, LevelStats, latest_by_concurrency

REPORT_SCHEMA_VERSION: Literal[1] = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GoodputFigures(_Frozen):
    concurrency: int
    output_tokens_per_s: float
    requests_per_s: float


class Miss(_Frozen):
    concurrency: int
    reasons: list[str]


class RateLevel(_Frozen):
    """One request-rate level: requests started at Poisson arrivals of this many per second."""

    request_rate: float
    stats: LevelStats


class EngineMeasurement(_Frozen):
    """What the orchestration measured of one engine on one host, before any analysis."""

    engine: str
    # Set when the server said it is not the engine it was deployed as (its own words): its
    # figures are labelled with them and never ranked.
    not_engine: str | None = None
    error: str | None = None
    # Seconds from `systemctl start` to the first generated token, measured on the host.
    cold_start_s: float | None = None
    # Seconds to the first token after the model was unloaded with the server running (Ollama's
    # idle unload); None for engines that keep their model loaded.
    reload_s: float | None = None
    # Resident memory of every process in the engine's unit after the load, summed.
    rss_bytes: int | None = None
    gpu_memory_mib: float | None = None
    results: list[BenchResult] = []
    rate_levels: list[RateLevel] = []
    # What could not be measured while the rest was (memory, say), one line each.
    notes: list[str] = []


class EngineReport(EngineMeasurement):
    label: str
    goodput: GoodputFigures | None
    # The highest request rate meeting the SLO with every rate below it; None when the lowest
    # misses or no rate was measured.
    goodput_rate: float | None = None
    first_miss: Miss | None
    # Knee of the SLO's first latency objective (e2e p99 without one).
    knee_concurrency: int | None
    knee_metric: str


class HardwareReport(_Frozen):
    os: str
    arch: str
    gpu_vendor: str
    gpu_count: int


class RecommendationReport(_Frozen):
    engine: str | None
    reasons: list[str]


class HostReport(_Frozen):
    host: str
    hardware: HardwareReport
    engines: list[EngineReport]
    recommendation: RecommendationReport


class WorkloadInfo(_Frozen):
    source: str
    requests: int
    mean_output_tokens: float


class AdviseReport(_Frozen):
    schema_version: Literal[1] = REPORT_SCHEMA_VERSION
    created: str
    model: str
    workload: WorkloadInfo
    slo: str
    users: int | None
    concurrencies: list[int]
    request_rates: list[float] = []
    hosts: list[HostReport]
    # Set once `--apply` has deployed the recommendation; what happened to the other engines.
    applied: list[str] = []


def knee_metric(slo: Slo) -> tuple[str, str]:
    """(metric, statistic) of the latency curve whose knee is reported."""
    if slo.objectives:
        return slo.objectives[0].metric, slo.objectives[0].statistic
    return "e2e", "p99"


def latency_ms(result: BenchResult, metric: str, statistic: str) -> float | None:
    return stats_ms(result.stats, metric, statistic)


def stats_ms(stats: LevelStats, metric: str, statistic: str) -> float | None:
    summary = getattr(stats, metric)
    return None if summary is None else float(getattr(summary, f"{statistic}_ms"))


def engine_report(measured: EngineMeasurement, slo: Slo) -> EngineReport:
    levels = latest_by_concurrency(measured.results)
    stats = {level: r.stats for level, r in levels.items()}
    good = goodput(stats, slo) if stats else None
    miss = first_miss(stats, slo) if stats else None
    metric, statistic = knee_metric(slo)
    curve = {
        level: value
        for level, r in levels.items()
        if (value := latency_ms(r, metric, statistic)) is not None
    }
    label = f"{measured.engine} ({measured.not_engine})" if measured.not_engine else measured.engine
    return EngineReport(
        **measured.model_dump(),
        label=label,
        goodput=None
        if good is None
        else GoodputFigures(
            concurrency=good.concurrency,
            output_tokens_per_s=good.output_tokens_per_s,
            requests_per_s=good.requests_per_s,
        ),
        first_miss=None if miss is None else Miss(concurrency=miss[0], reasons=miss[1]),
        knee_concurrency=knee(curve),
        knee_metric=f"{metric}_{statistic}",
        goodput_rate=highest_meeting({r.request_rate: r.stats for r in measured.rate_levels}, slo),
    )


def host_report(
    host: str,
    hardware: Hardware,
    measurements: Sequence[EngineMeasurement],
    slo: Slo,
    users: int | None,
) -> HostReport:
    engines = [engine_report(m, slo) for m in measurements]
    outcomes = [
        EngineOutcome(
            engine=e.engine,
            goodput=None if e.goodput is None else _goodput(e.goodput),
            not_engine=e.not_engine is not None,
            error=e.error,
        )
        for e in engines
    ]
    choice = recommend(outcomes, hardware, users)
    return HostReport(
        host=host,
        hardware=HardwareReport(
            os=hardware.os,
            arch=hardware.arch,
            gpu_vendor=hardware.gpu_vendor,
            gpu_count=hardware.gpu_count,
        ),
        engines=engines,
        recommendation=RecommendationReport(engine=choice.engine, reasons=list(choice.reasons)),
    )


def _goodput(figures: GoodputFigures) -> Goodput:
    return Goodput(figures.concurrency, figures.output_tokens_per_s, figures.requests_per_s)


class ReportFormatError(ValueError):
    """A report file this llmprov cannot read."""


def report_from_json(text: str, source: str) -> AdviseReport:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportFormatError(f"{source}: not JSON: {exc.msg}") from None
    if not isinstance(raw, dict) or raw.get("schema_version") != REPORT_SCHEMA_VERSION:
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        raise ReportFormatError(
            f"{source}: schema_version {version!r} is not supported (this llmprov reads "
            f"{REPORT_SCHEMA_VERSION})"
        )
    try:
        return AdviseReport.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "report"
        raise ReportFormatError(f"{source}: {field}: {first['msg']}") from None


def report_to_json(report: AdviseReport) -> str:
    return report.model_dump_json(indent=2) + "\n"


# --- Markdown ------------------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def _mib(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:.0f} MiB"


def _stats_cells(s: LevelStats) -> str:
    return (
        f"{s.succeeded} | {s.failed} | {s.output_tokens_per_s:.1f} "
        f"| {_num(stats_ms(s, 'ttft', 'p99'), '{:.0f}')} "
        f"| {_num(stats_ms(s, 'tpot', 'p99'), '{:.1f}')} "
        f"| {_num(stats_ms(s, 'e2e', 'p99'), '{:.0f}')} |"
    )


def report_to_markdown(report: AdviseReport) -> str:
    lines = [
        f"# llmprov advise: {report.model}",
        "",
        f"Workload: {report.workload.source} ({report.workload.requests} requests, "
        f"{report.workload.mean_output_tokens:.0f} output tokens on average). "
        f"SLO: `{report.slo or 'none'}`. Users: {report.users or 'not given'}. "
        f"Concurrency levels: {', '.join(map(str, report.concurrencies))}. "
        + (
            f"Request rates: {', '.join(f'{r:g}' for r in report.request_rates)} /s. "
            if report.request_rates
            else ""
        )
        + f"Created {report.created}.",
    ]
    for host in report.hosts:
        hw = host.hardware
        lines += [
            "",
            f"## {host.host}",
            "",
            f"Hardware: {hw.os}/{hw.arch}, GPU: "
            + ("none" if hw.gpu_count == 0 else f"{hw.gpu_count} × {hw.gpu_vendor}"),
            "",
            f"**Recommendation: {host.recommendation.engine or 'none'}**",
            "",
            *(f"- {reason}" for reason in host.recommendation.reasons),
            "",
            "| engine | cold start | after unload | RSS | GPU memory | goodput concurrency "
            "| tokens/s there | knee | goodput rate | first miss |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for e in host.engines:
            miss = (
                f"{e.first_miss.concurrency}: {'; '.join(e.first_miss.reasons)}"
                if e.first_miss
                else "–"
            )
            lines.append(
                f"| {e.label} | {_num(e.cold_start_s, '{:.1f} s')} "
                f"| {_num(e.reload_s, '{:.1f} s')} | {_mib(e.rss_bytes)} "
                f"| {_num(e.gpu_memory_mib, '{:.0f} MiB')} "
                f"| {e.goodput.concurrency if e.goodput else '–'} "
                f"| {_num(e.goodput.output_tokens_per_s if e.goodput else None, '{:.1f}')} "
                f"| {e.knee_concurrency or '–'} ({e.knee_metric}) "
                f"| {_num(e.goodput_rate, '{:g} req/s')} | {e.error or miss} |"
            )
        lines += [
            "",
            "| engine | concurrency | ok | failed | tokens/s | TTFT p99 ms | TPOT p99 ms "
            "| E2E p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for e in host.engines:
            lines += [f"| {e.label} | note: {note} | | | | | | |" for note in e.notes]
            for r in sorted(latest_by_concurrency(e.results).values(), key=lambda r: r.concurrency):
                lines.append(f"| {e.label} | {r.concurrency} | " + _stats_cells(r.stats))
        if any(e.rate_levels for e in host.engines):
            lines += [
                "",
                "| engine | request rate /s | ok | failed | tokens/s | TTFT p99 ms | TPOT p99 ms "
                "| E2E p99 ms |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for e in host.engines:
                for level in sorted(e.rate_levels, key=lambda r: r.request_rate):
                    lines.append(
                        f"| {e.label} | {level.request_rate:g} | " + _stats_cells(level.stats)
                    )
    if report.applied:
        lines += ["", "## Applied", "", *(f"- {line}" for line in report.applied)]
    return "\n".join(lines) + "\n"
