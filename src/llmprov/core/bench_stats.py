"""Throughput statistics from per-request records, the versioned result schema, and run comparison."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

SCHEMA_VERSION: Literal[1] = 1


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What one benchmark request did. Times are seconds on one monotonic clock."""

    ok: bool
    start_s: float
    end_s: float
    # Seconds from sending the request to the first content token; None when none arrived.
    ttft_s: float | None = None
    # Gaps between successive content chunks, as `vllm bench serve` records them.
    itl_s: tuple[float, ...] = ()
    output_tokens: int = 0
    error: str | None = None

    @property
    def e2e_s(self) -> float:
        return self.end_s - self.start_s


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks.

    This is numpy's default (`method="linear"`, Hyndman & Fan type 7): the sorted values sit at
    positions 0..n-1 and the percentile lies at position (n-1)·q/100, interpolated between its
    neighbours.
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (position - lower) * (ordered[upper] - ordered[lower])


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Latency(_Frozen):
    """Summary of one latency distribution, in milliseconds."""

    mean_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float

    @classmethod
    def of_seconds(cls, values: Sequence[float]) -> Latency | None:
        if not values:
            return None
        ms = [v * 1000 for v in values]
        return cls(
            mean_ms=statistics.fmean(ms),
            median_ms=percentile(ms, 50),
            p90_ms=percentile(ms, 90),
            p99_ms=percentile(ms, 99),
        )


class LevelStats(_Frozen):
    """One concurrency level's outcome, with the metrics `vllm bench serve` reports.

    Latency summaries are None when no request gave a sample (all failed, or single-token outputs
    for TPOT and ITL).
    """

    succeeded: int
    failed: int
    duration_s: float
    output_tokens: int
    output_tokens_per_s: float
    requests_per_s: float
    ttft: Latency | None
    tpot: Latency | None
    itl: Latency | None
    e2e: Latency | None


def level_stats(records: Sequence[RequestRecord]) -> LevelStats:
    """Aggregate one level's records.

    Duration runs from the first request's start to the last request's end, failures included.
    Throughputs count successful requests only. TPOT is per request (e2e - ttft) / (tokens - 1)
    over requests with more than one token; ITL pools every request's gaps.
    """
    good = [r for r in records if r.ok]
    duration = max(r.end_s for r in records) - min(r.start_s for r in records) if records else 0.0
    tokens = sum(r.output_tokens for r in good)
    ttfts = [r.ttft_s for r in good if r.ttft_s is not None]
    tpots = [
        (r.e2e_s - r.ttft_s) / (r.output_tokens - 1)
        for r in good
        if r.ttft_s is not None and r.output_tokens > 1
    ]
    itls = [gap for r in good for gap in r.itl_s]
    return LevelStats(
        succeeded=len(good),
        failed=len(records) - len(good),
        duration_s=duration,
        output_tokens=tokens,
        output_tokens_per_s=tokens / duration if duration > 0 else 0.0,
        requests_per_s=len(good) / duration if duration > 0 else 0.0,
        ttft=Latency.of_seconds(ttfts),
        tpot=Latency.of_seconds(tpots),
        itl=Latency.of_seconds(itls),
        e2e=Latency.of_seconds([r.e2e_s for r in good]),
    )


class BenchResult(_Frozen):
    """One JSON line: a run of one engine at one concurrency level."""

    schema_version: Literal[1] = SCHEMA_VERSION
    engine: str
    model: str
    url: str
    # ISO 8601, UTC.
    timestamp: str
    concurrency: int
    # Requests planned for the level; stats count those that ran (a time limit can stop it early).
    requests: int
    max_tokens: int
    stats: LevelStats


class ResultsFormatError(ValueError):
    """A results file line that is not a result record this version reads."""


def result_to_line(result: BenchResult) -> str:
    """One JSON line, newline included."""
    return result.model_dump_json() + "\n"


def results_from_lines(lines: Iterable[str], source: str) -> list[BenchResult]:
    """Parse JSON lines; blank lines are skipped; errors name `source:line`."""
    results: list[BenchResult] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ResultsFormatError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(raw, dict):
            raise ResultsFormatError(f"{where}: expected a JSON object")
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultsFormatError(
                f"{where}: schema_version {version!r} is not supported (this llmprov reads "
                f"{SCHEMA_VERSION})"
            )
        try:
            results.append(BenchResult.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "record"
            raise ResultsFormatError(f"{where}: {field}: {first['msg']}") from None
    return results


@dataclass(frozen=True, slots=True)
class Pair:
    """One metric from runs A and B; either is None where that run lacks it."""

    a: float | None
    b: float | None

    @property
    def ratio(self) -> float | None:
        """b / a; None where either is missing or a is zero."""
        if self.a is None or self.b is None or self.a == 0:
            return None
        return self.b / self.a


@dataclass(frozen=True, slots=True)
class CompareRow:
    concurrency: int
    output_tokens_per_s: Pair
    ttft_mean_ms: Pair
    e2e_p99_ms: Pair


def latest_by_concurrency(results: Iterable[BenchResult]) -> dict[int, BenchResult]:
    """A results file is appended to over time: the last record per concurrency wins."""
    return {r.concurrency: r for r in results}


def compare(a_records: Iterable[BenchResult], b_records: Iterable[BenchResult]) -> list[CompareRow]:
    """Rows for every concurrency in either run, ascending; ratios are b / a."""
    a = latest_by_concurrency(a_records)
    b = latest_by_concurrency(b_records)
    rows = []
    for level in sorted(a.keys() | b.keys()):
        sa = a[level].stats if level in a else None
        sb = b[level].stats if level in b else None
        rows.append(
            CompareRow(
                concurrency=level,
                output_tokens_per_s=Pair(
                    sa.output_tokens_per_s if sa else None,
                    sb.output_tokens_per_s if sb else None,
                ),
                ttft_mean_ms=Pair(_ttft_mean(sa), _ttft_mean(sb)),
                e2e_p99_ms=Pair(_e2e_p99(sa), _e2e_p99(sb)),
            )
        )
    return rows


def _ttft_mean(stats: LevelStats | None) -> float | None:
    return stats.ttft.mean_ms if stats and stats.ttft else None


def _e2e_p99(stats: LevelStats | None) -> float | None:
    return stats.e2e.p99_ms if stats and stats.e2e else None
