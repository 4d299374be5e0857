"""SLO parsing and checking, goodput under an SLO, and the knee of a latency curve."""

from __future__ import annotations

import math

import pytest
from advise_data import stats
from hypothesis import given
from hypothesis import strategies as st

from llmprov.core.advise.curve import first_miss, goodput, knee
from llmprov.core.advise.slo import Objective, Slo, SloError, parse_slo, violations


def test_slo_parses_metrics_statistics_and_units() -> None:
    slo = parse_slo("ttft_p99=2s, tpot_p99=100ms,e2e_median=1.5s")
    assert slo.objectives == (
        Objective("ttft", "p99", 2000.0),
        Objective("tpot", "p99", 100.0),
        Objective("e2e", "median", 1500.0),
    )
    assert str(slo) == "ttft_p99=2s,tpot_p99=100ms,e2e_median=1.5s"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ttft_p95=2s", "STAT one of mean, median, p90, p99"),
        ("latency_p99=2s", "METRIC one of ttft, tpot, itl, e2e"),
        ("ttft_p99=2", "positive number of ms or s"),
        ("ttft_p99=0ms", "positive number"),
        ("ttft_p99", "expected METRIC_STAT=VALUE"),
        ("ttft_p99=1s,,", "empty objective"),
        ("ttft_p99=1s,ttft_p99=2s", "ttft_p99 given twice"),
    ],
)
def test_bad_slo_says_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(SloError, match=message):
        parse_slo(text)


@given(
    ms=st.floats(0.001, 1e7, allow_nan=False).map(lambda v: round(v, 3)),
    metric=st.sampled_from(["ttft", "tpot", "itl", "e2e"]),
    statistic=st.sampled_from(["mean", "median", "p90", "p99"]),
)
def test_slo_text_round_trips(ms: float, metric: str, statistic: str) -> None:
    slo = parse_slo(f"{metric}_{statistic}={ms}ms")
    again = parse_slo(str(slo))
    assert math.isclose(again.objectives[0].limit_ms, ms, rel_tol=1e-9)


def test_violations_name_each_missed_objective_and_failures() -> None:
    slo = parse_slo("ttft_p99=2s,tpot_p99=100ms")
    assert violations(slo, stats(100, 1999, 100)) == []
    assert violations(slo, stats(100, 2500, 120, failed=2)) == [
        "2 request(s) failed",
        "ttft_p99 2500ms > 2s",
        "tpot_p99 120ms > 100ms",
    ]
    # A level where nothing succeeded misses even an empty SLO.
    assert violations(Slo(()), stats(0, 0, 0, failed=8, ok=0)) == [
        "8 request(s) failed",
        "no request succeeded",
    ]
    assert violations(slo, stats(0, 0, 0, failed=8, ok=0))[-1] == "tpot_p99: not measured"


def test_goodput_is_the_highest_level_before_the_first_miss() -> None:
    slo = parse_slo("ttft_p99=1s")
    levels = {1: stats(20, 100, 10), 2: stats(38, 300, 10), 4: stats(70, 1200, 10),
              8: stats(90, 900, 10)}  # fmt: skip
    good = goodput(levels, slo)
    assert good is not None
    assert (good.concurrency, good.output_tokens_per_s) == (2, 38)
    assert first_miss(levels, slo) == (4, ["ttft_p99 1200ms > 1s"])
    assert goodput({1: stats(20, 1100, 10)}, slo) is None
    assert first_miss({1: stats(20, 10, 10)}, slo) is None


@given(
    st.dictionaries(
        st.sampled_from([1, 2, 4, 8, 16, 32, 64]),
        st.tuples(st.floats(1, 1000), st.floats(1, 5000)),
        min_size=1,
    ),
    st.floats(10, 5000),
)
def test_goodput_level_and_every_level_below_it_meet_the_slo(
    curve: dict[int, tuple[float, float]], limit: float
) -> None:
    slo = Slo((Objective("ttft", "p99", limit),))
    levels = {c: stats(t, ttft, 5) for c, (t, ttft) in curve.items()}
    good = goodput(levels, slo)
    meeting = [c for c in sorted(levels) if not violations(slo, levels[c])]
    if good is None:
        assert min(levels) not in meeting
    else:
        below = [c for c in levels if c <= good.concurrency]
        assert all(c in meeting for c in below)
        above = [c for c in sorted(levels) if c > good.concurrency]
        assert not above or above[0] not in meeting


def test_knee_is_the_last_level_before_latency_climbs() -> None:
    # Flat until 8, then steep: the knee is 8.
    assert knee({1: 100, 2: 105, 4: 110, 8: 130, 16: 600, 32: 1400}) == 8
    # A straight line (on the log2 axis) has no knee; neither have two points or a flat curve.
    assert knee({1: 100, 2: 200, 4: 300, 8: 400}) is None
    assert knee({1: 100, 4: 900}) is None
    assert knee({1: 5, 2: 5, 4: 5}) is None


@given(
    st.lists(st.integers(0, 100_000).map(float), min_size=3, max_size=7).map(sorted),
)
def test_knee_is_a_measured_level_where_the_curve_lies_below_its_chord(ys: list[float]) -> None:
    points = {2**i: y for i, y in enumerate(ys)}
    found = knee(points)
    if found is not None:
        assert found in points
        i = int(math.log2(found))
        n = len(ys) - 1
        chord = ys[0] + (ys[-1] - ys[0]) * i / n
        assert ys[i] < chord
