"""Reading an engine's bench levels: goodput under an SLO, and the knee of its latency curve."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from llmprov.core.advise.slo import Slo, violations
from llmprov.core.bench_stats import LevelStats

# A concurrency level or a request rate.
Level = TypeVar("Level", int, float)


@dataclass(frozen=True, slots=True)
class Goodput:
    """The highest level that meets the SLO, with every lower level meeting it too."""

    concurrency: int
    output_tokens_per_s: float
    requests_per_s: float


def highest_meeting(levels: Mapping[Level, LevelStats], slo: Slo) -> Level | None:
    """Walk the levels (concurrencies or request rates) upwards and stop at the first that misses:
    a level that meets the SLO above one that missed it is noise, not capacity to plan on. None
    when the lowest misses."""
    best: Level | None = None
    for level in sorted(levels):
        if violations(slo, levels[level]):
            break
        best = level
    return best


def goodput(levels: Mapping[int, LevelStats], slo: Slo) -> Goodput | None:
    """The highest concurrency that meets the SLO with every level below it, and its throughput."""
    level = highest_meeting(levels, slo)
    if level is None:
        return None
    stats = levels[level]
    return Goodput(level, stats.output_tokens_per_s, stats.requests_per_s)


def first_miss(levels: Mapping[int, LevelStats], slo: Slo) -> tuple[int, list[str]] | None:
    """The lowest level that misses the SLO and why; None when every level meets it."""
    for level in sorted(levels):
        reasons = violations(slo, levels[level])
        if reasons:
            return level, reasons
    return None


def knee(points: Mapping[int, float]) -> int | None:
    """The knee of an increasing latency curve by Kneedle (Satopää et al., 2011).

    x is log2(concurrency), since levels are usually doubled; x and y are scaled to 0..1 and the
    knee is the level where the curve lies furthest below the diagonal, the last level before
    latency starts to climb. None with fewer than three levels, or when latency does not rise
    faster than the diagonal anywhere (no knee inside the measured range).
    """
    xs = sorted(points)
    if len(xs) < 3:
        return None
    lx = [math.log2(x) for x in xs]
    ys = [points[x] for x in xs]
    x_span, y_span = lx[-1] - lx[0], max(ys) - min(ys)
    if x_span <= 0 or y_span <= 0:
        return None
    gaps = [(lx[i] - lx[0]) / x_span - (ys[i] - min(ys)) / y_span for i in range(len(xs))]
    best = max(range(len(xs)), key=lambda i: (gaps[i], -i))
    return xs[best] if gaps[best] > 1e-9 else None
