"""Bench levels and measurements built from plain figures, for the advise tests."""

from __future__ import annotations

from llmprov.core.advise.report import EngineMeasurement, RateLevel
from llmprov.core.bench_stats import BenchResult, Latency, LevelStats


def lat(ms: float) -> Latency:
    return Latency(mean_ms=ms * 0.8, median_ms=ms * 0.9, p90_ms=ms * 0.95, p99_ms=ms)


def stats(
    tokens_per_s: float, ttft_p99_ms: float, tpot_p99_ms: float, failed: int = 0, ok: int = 8
) -> LevelStats:
    return LevelStats(
        succeeded=ok,
        failed=failed,
        duration_s=10.0,
        output_tokens=int(tokens_per_s * 10),
        output_tokens_per_s=tokens_per_s,
        requests_per_s=ok / 10,
        ttft=lat(ttft_p99_ms) if ok else None,
        tpot=lat(tpot_p99_ms) if ok else None,
        itl=lat(tpot_p99_ms) if ok else None,
        e2e=lat(ttft_p99_ms + 32 * tpot_p99_ms) if ok else None,
    )


def result(engine: str, level: int, level_stats: LevelStats) -> BenchResult:
    return BenchResult(
        engine=engine,
        model="smollm2",
        url="http://127.0.0.1:9",
        timestamp="2026-12-01T20:00:00+00:00",
        concurrency=level,
        requests=8,
        max_tokens=32,
        stats=level_stats,
    )


def measured(
    engine: str,
    curve: dict[int, tuple[float, float, float]],
    not_engine: str | None = None,
    cold_start_s: float = 3.5,
    rates: dict[float, tuple[float, float, float]] | None = None,
) -> EngineMeasurement:
    """`curve`: level -> (tokens/s, TTFT p99 ms, TPOT p99 ms); `rates` the same by request rate."""
    return EngineMeasurement(
        engine=engine,
        not_engine=not_engine,
        cold_start_s=cold_start_s,
        rss_bytes=512 * 2**20,
        results=[result(engine, level, stats(*figures)) for level, figures in curve.items()],
        rate_levels=[
            RateLevel(request_rate=rate, stats=stats(*figures))
            for rate, figures in (rates or {}).items()
        ],
    )
