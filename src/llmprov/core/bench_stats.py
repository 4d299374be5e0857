"""Throughput statistics from per-request records, the versioned result schema, and run comparison."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# 2 added run_id, prompts_sha256, request_rate, slo, input and total token throughput and
# goodput; records of version 1 are still read (the new fields absent).
SCHEMA_VERSION: Literal[2] = 2
READABLE_VERSIONS = (1, 2)


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
    # Prompt tokens as the server's usage reports them; 0 where it reports none.
    input_tokens: int = 0

    @property
    def e2e_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def tpot_s(self) -> float | None:
        """(e2e - ttft) / (tokens - 1); None without a first token or with a single one."""
        if self.ttft_s is None or self.output_tokens <= 1:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)


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


class Slo(_Frozen):
    """Service-level objectives in milliseconds, as `vllm bench serve --goodput` takes them: a
    request is good when it meets every objective given."""

    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)
    e2el_ms: float | None = Field(default=None, gt=0)

    def met_by(self, record: RequestRecord) -> bool:
        # As vLLM: a single-token request has a TPOT of 0, which meets any objective.
        checks = (
            (self.ttft_ms, record.ttft_s),
            (self.tpot_ms, record.tpot_s or 0.0),
            (self.e2el_ms, record.e2e_s),
        )
        return record.ok and all(
            value is not None and value * 1000 <= limit
            for limit, value in checks
            if limit is not None
        )


SLO_KEYS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "e2el": "e2el_ms"}


def parse_slo(text: str) -> Slo:
    """`ttft=500,tpot=50` (milliseconds; `:` works too, as vLLM writes it) → Slo."""
    values: dict[str, float] = {}
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        key, sep, value = part.replace(":", "=").partition("=")
        if not sep or key not in SLO_KEYS:
            raise ValueError(
                f"expected KEY=MILLISECONDS with KEY one of {', '.join(SLO_KEYS)}, got {part!r}"
            )
        if SLO_KEYS[key] in values:
            raise ValueError(f"{key} is given twice")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{key}: not a number of milliseconds: {value!r}") from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"{key}: must be a positive number of milliseconds, got {value!r}")
        values[SLO_KEYS[key]] = number
    if not values:
        raise ValueError("no objective given; e.g. ttft=500,tpot=50")
    return Slo.model_validate(values)


class LevelStats(_Frozen):
    """One concurrency level's outcome, with the metrics `vllm bench serve` reports.

    Latency summaries are None when no request gave a sample (all failed, or single-token outputs
    for TPOT and ITL). Goodput is None when no objectives were given.
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
    input_tokens: int = 0
    input_tokens_per_s: float = 0.0
    total_tokens_per_s: float = 0.0
    goodput_requests_per_s: float | None = None


def level_stats(records: Sequence[RequestRecord], slo: Slo | None = None) -> LevelStats:
    """Aggregate one level's records.

    Duration runs from the first request's start to the last request's end, failures included.
    Throughputs count successful requests only. TPOT is per request (e2e - ttft) / (tokens - 1)
    over requests with more than one token; ITL pools every request's gaps. Goodput is the
    requests meeting every objective of `slo`, per second of the same duration.
    """
    good = [r for r in records if r.ok]
    duration = max(r.end_s for r in records) - min(r.start_s for r in records) if records else 0.0

    def rate(n: float) -> float:
        return n / duration if duration > 0 else 0.0

    tokens = sum(r.output_tokens for r in good)
    inputs = sum(r.input_tokens for r in good)
    ttfts = [r.ttft_s for r in good if r.ttft_s is not None]
    tpots = [t for r in good if (t := r.tpot_s) is not None]
    itls = [gap for r in good for gap in r.itl_s]
    return LevelStats(
        succeeded=len(good),
        failed=len(records) - len(good),
        duration_s=duration,
        output_tokens=tokens,
        output_tokens_per_s=rate(tokens),
        requests_per_s=rate(len(good)),
        ttft=Latency.of_seconds(ttfts),
        tpot=Latency.of_seconds(tpots),
        itl=Latency.of_seconds(itls),
        e2e=Latency.of_seconds([r.e2e_s for r in good]),
        input_tokens=inputs,
        input_tokens_per_s=rate(inputs),
        total_tokens_per_s=rate(inputs + tokens),
        goodput_requests_per_s=None if slo is None else rate(sum(map(slo.met_by, good))),
    )


class BenchResult(_Frozen):
    """One JSON line: a run of one engine at one concurrency level."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
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
    # The levels of one `llmprov bench` invocation share a run id (version 1: their timestamp).
    run_id: str | None = None
    # sha256 of the prompts sent, in order: runs on other prompts are not comparable.
    prompts_sha256: str | None = None
    # Poisson arrivals at this many requests/s; None: every request as soon as a slot is free.
    request_rate: float | None = None
    slo: Slo | None = None

    @property
    def run(self) -> str:
        return self.run_id or self.timestamp

    @property
    def in_flight_at_most(self) -> int:
        """A level cannot have more requests in flight than it sends."""
        return min(self.concurrency, self.requests)


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
        if version not in READABLE_VERSIONS:
            raise ResultsFormatError(
                f"{where}: schema_version {version!r} is not supported (this llmprov reads "
                f"{', '.join(map(str, READABLE_VERSIONS))})"
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


# What `bench compare` sets side by side, per level: (key, label, the metric).
COMPARE_METRICS: tuple[tuple[str, str, Callable[[LevelStats], float | None]], ...] = (
    ("output_tokens_per_s", "output tokens/s", lambda s: s.output_tokens_per_s),
    ("total_tokens_per_s", "total tokens/s", lambda s: s.total_tokens_per_s or None),
    ("ttft_mean_ms", "TTFT mean ms", lambda s: s.ttft.mean_ms if s.ttft else None),
    ("tpot_mean_ms", "TPOT mean ms", lambda s: s.tpot.mean_ms if s.tpot else None),
    ("e2e_p99_ms", "E2E p99 ms", lambda s: s.e2e.p99_ms if s.e2e else None),
    ("goodput_requests_per_s", "goodput req/s", lambda s: s.goodput_requests_per_s),
)


@dataclass(frozen=True, slots=True)
class CompareRow:
    concurrency: int
    metrics: dict[str, Pair]

    @property
    def output_tokens_per_s(self) -> Pair:
        return self.metrics["output_tokens_per_s"]

    @property
    def ttft_mean_ms(self) -> Pair:
        return self.metrics["ttft_mean_ms"]

    @property
    def e2e_p99_ms(self) -> Pair:
        return self.metrics["e2e_p99_ms"]


def latest_by_concurrency(results: Iterable[BenchResult]) -> dict[int, BenchResult]:
    """The last record per concurrency wins (a run's records; a level is written once per run)."""
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
                metrics={
                    key: Pair(metric(sa) if sa else None, metric(sb) if sb else None)
                    for key, _, metric in COMPARE_METRICS
                },
            )
        )
    return rows


# ---------------------------------------------------------------- runs in a results file


class RunSelectionError(ValueError):
    """A results file holds no run, or several and none was named, or no run by that id."""


def runs_of(results: Iterable[BenchResult]) -> dict[str, list[BenchResult]]:
    """A results file's records grouped by run, in the order the runs were appended."""
    runs: dict[str, list[BenchResult]] = {}
    for r in results:
        runs.setdefault(r.run, []).append(r)
    return runs


def describe_run(records: Sequence[BenchResult]) -> str:
    first = records[0]
    levels = ",".join(str(r.concurrency) for r in records)
    return (
        f"{first.run}  {first.timestamp}  {first.engine}  {first.model}  levels {levels}  "
        f"{first.requests} requests × {first.max_tokens} tokens"
    )


def select_run(
    results: Sequence[BenchResult], run_id: str | None, source: str
) -> list[BenchResult]:
    """The records of one run: the one named by id (or an unambiguous prefix of it), or the only
    run in the file. A file of several runs with none named is refused, listing them."""
    runs = runs_of(results)
    if not runs:
        raise RunSelectionError(f"{source}: no result records")
    listing = "\n".join(f"  {describe_run(records)}" for records in runs.values())
    if run_id is None:
        if len(runs) == 1:
            return next(iter(runs.values()))
        raise RunSelectionError(
            f"{source} holds {len(runs)} runs; name one as {source}#RUN_ID:\n{listing}"
        )
    matches = [key for key in runs if key == run_id] or [k for k in runs if k.startswith(run_id)]
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise RunSelectionError(f"{source}: {what} with id {run_id!r}; runs:\n{listing}")
    return runs[matches[0]]


# What must be equal for two runs to be compared: (label, the run's value).
COMPARABLE: tuple[tuple[str, Callable[[BenchResult], object]], ...] = (
    ("model", lambda r: r.model),
    ("max_tokens", lambda r: r.max_tokens),
    ("prompts", lambda r: r.prompts_sha256),
    ("requests", lambda r: r.requests),
    ("request_rate", lambda r: r.request_rate),
)


def differences(a: Sequence[BenchResult], b: Sequence[BenchResult]) -> dict[str, tuple[str, str]]:
    """{field: (A's value, B's value)} for what makes the runs measure different things.

    Prompts are compared only where both runs recorded them (version 1 records did not).
    """
    out: dict[str, tuple[str, str]] = {}
    for label, value in COMPARABLE:
        va, vb = value(a[0]), value(b[0])
        if label == "prompts" and (va is None or vb is None):
            continue
        if va != vb:
            shown = [str(v)[:12] if label == "prompts" else str(v) for v in (va, vb)]
            out[label] = (shown[0], shown[1])
    return out
