"""Service-level objectives (`ttft_p99=2s,tpot_p99=100ms`) and whether a bench level meets them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmprov.core.bench_stats import LevelStats

METRICS = ("ttft", "tpot", "itl", "e2e")
STATISTICS = ("mean", "median", "p90", "p99")
_UNITS_MS = {"ms": 1.0, "s": 1000.0}
_VALUE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")


class SloError(ValueError):
    """An SLO string that does not parse; the message names the bad part."""


@dataclass(frozen=True, slots=True)
class Objective:
    metric: str
    statistic: str
    limit_ms: float

    @property
    def key(self) -> str:
        return f"{self.metric}_{self.statistic}"

    def measured_ms(self, stats: LevelStats) -> float | None:
        summary = getattr(stats, self.metric)
        return None if summary is None else float(getattr(summary, f"{self.statistic}_ms"))


@dataclass(frozen=True, slots=True)
class Slo:
    objectives: tuple[Objective, ...]

    def __str__(self) -> str:
        return ",".join(f"{o.key}={_format_ms(o.limit_ms)}" for o in self.objectives)


def _plain(value: float) -> str:
    """A decimal without exponent, trailing zeros dropped: what parse_slo reads back."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _format_ms(value: float) -> str:
    return (
        f"{_plain(value / 1000)}s" if value >= 1000 and value % 100 == 0 else f"{_plain(value)}ms"
    )


def parse_slo(text: str) -> Slo:
    """`ttft_p99=2s,tpot_p99=100ms` → objectives; metrics ttft, tpot, itl, e2e; statistics
    mean, median, p90, p99; values in ms or s."""
    objectives: list[Objective] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise SloError(f"SLO {text!r}: empty objective (stray comma?)")
        key, sep, value = part.partition("=")
        metric, _, statistic = key.partition("_")
        if not sep or metric not in METRICS or statistic not in STATISTICS:
            raise SloError(
                f"SLO {part!r}: expected METRIC_STAT=VALUE with METRIC one of {', '.join(METRICS)}"
                f" and STAT one of {', '.join(STATISTICS)}, e.g. ttft_p99=2s"
            )
        match = _VALUE.match(value)
        if match is None or float(match[1]) <= 0:
            raise SloError(f"SLO {part!r}: value must be a positive number of ms or s, e.g. 100ms")
        if any(o.key == key for o in objectives):
            raise SloError(f"SLO {text!r}: {key} given twice")
        objectives.append(Objective(metric, statistic, float(match[1]) * _UNITS_MS[match[2]]))
    return Slo(tuple(objectives))


def violations(slo: Slo, stats: LevelStats) -> list[str]:
    """Why a level misses the SLO, one line per reason; empty when it meets it.

    A failed request misses any SLO, and so does a metric the level has no sample of.
    """
    reasons = []
    if stats.failed:
        reasons.append(f"{stats.failed} request(s) failed")
    if stats.succeeded == 0:
        reasons.append("no request succeeded")
    for objective in slo.objectives:
        measured = objective.measured_ms(stats)
        if measured is None:
            reasons.append(f"{objective.key}: not measured")
        elif measured > objective.limit_ms:
            reasons.append(f"{objective.key} {measured:.0f}ms > {_format_ms(objective.limit_ms)}")
    return reasons
