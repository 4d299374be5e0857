"""Benchmark statistics, the result schema and run comparison, on hand-computed records."""

from __future__ import annotations

import random

import pytest

from llmprov.core.bench_stats import (
    SCHEMA_VERSION,
    BenchResult,
    LevelStats,
    RequestRecord,
    ResultsFormatError,
    RunSelectionError,
    Slo,
    compare,
    differences,
    level_stats,
    parse_slo,
    percentile,
    result_to_line,
    results_from_lines,
    select_run,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 90, 3.7),  # position 3 * 0.9 = 2.7: 3 + 0.7 * (4 - 3)
        ([1.0, 2.0, 3.0, 4.0], 99, 3.97),
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),  # input order does not matter
        ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
        ([7.0], 99, 7.0),
        ([10.0, 20.0], 25, 12.5),
    ],
)
def test_percentile_interpolates_linearly_between_closest_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_matches_numpy_default() -> None:
    numpy = pytest.importorskip("numpy")
    rng = random.Random(3)
    for n in (2, 5, 17, 100):
        values = [rng.expovariate(1.0) for _ in range(n)]
        for q in (50, 90, 99):
            assert percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)))


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def _records() -> list[RequestRecord]:
    return [
        # TPOT (1.0 - 0.1) / (10 - 1) = 0.1 s; gaps 0.1 s.
        RequestRecord(True, 0.0, 1.0, 0.1, (0.1,) * 9, 10),
        # TPOT (2.0 - 0.5) / (5 - 1) = 0.375 s; gaps 0.2, 0.4, 0.4, 0.5.
        RequestRecord(True, 0.5, 2.5, 0.5, (0.2, 0.4, 0.4, 0.5), 5),
        # One token: has a TTFT but gives no TPOT.
        RequestRecord(True, 1.0, 1.3, 0.3, (), 1),
        # A failure still spans the duration and counts as failed, but gives no latency.
        RequestRecord(False, 1.0, 3.0, None, (), 0, "HTTP 500"),
    ]


def test_level_stats_counts_and_throughput() -> None:
    stats = level_stats(_records())
    assert (stats.succeeded, stats.failed) == (3, 1)
    assert stats.duration_s == pytest.approx(3.0)
    assert stats.output_tokens == 16
    assert stats.output_tokens_per_s == pytest.approx(16 / 3)
    assert stats.requests_per_s == pytest.approx(1.0)


def test_level_stats_tpot_is_per_request_over_tokens_after_the_first() -> None:
    tpot = level_stats(_records()).tpot
    assert tpot is not None
    assert tpot.mean_ms == pytest.approx((100 + 375) / 2)
    assert tpot.median_ms == pytest.approx(237.5)
    assert tpot.p99_ms == pytest.approx(100 + 0.99 * 275)


def test_level_stats_latency_summaries_in_milliseconds() -> None:
    stats = level_stats(_records())
    assert stats.ttft is not None and stats.e2e is not None and stats.itl is not None
    assert stats.ttft.mean_ms == pytest.approx(300)  # 100, 500, 300
    assert stats.ttft.median_ms == pytest.approx(300)
    assert stats.e2e.p90_ms == pytest.approx(1000 + 0.8 * 1000)  # 300, 1000, 2000
    assert stats.itl.mean_ms == pytest.approx((0.9 + 1.5) / 13 * 1000)
    assert stats.itl.p99_ms == pytest.approx(488)  # 13 gaps: position 11.88 between 0.4 and 0.5


def test_level_stats_without_successes_has_no_latencies() -> None:
    stats = level_stats([RequestRecord(False, 0.0, 2.0, error="refused")])
    assert (stats.succeeded, stats.failed, stats.duration_s) == (0, 1, 2.0)
    assert stats.output_tokens_per_s == 0
    assert stats.ttft is None and stats.tpot is None and stats.itl is None and stats.e2e is None


def _result(
    concurrency: int, tokens_per_s: float, ttft_ms: float, e2e_p99_ms: float, engine: str = "vllm"
) -> BenchResult:
    base = level_stats(_records())
    assert base.ttft is not None and base.e2e is not None
    stats: LevelStats = base.model_copy(
        update={
            "output_tokens_per_s": tokens_per_s,
            "ttft": base.ttft.model_copy(update={"mean_ms": ttft_ms}),
            "e2e": base.e2e.model_copy(update={"p99_ms": e2e_p99_ms}),
        }
    )
    return BenchResult(
        engine=engine,
        model="smollm2",
        url="http://127.0.0.1:8000",
        timestamp="2026-11-26T10:00:00+00:00",
        concurrency=concurrency,
        requests=32,
        max_tokens=64,
        stats=stats,
    )


def test_result_round_trips_through_a_json_line() -> None:
    results = [_result(1, 25.0, 169.0, 3000.0), _result(8, 150.0, 884.0, 4000.0)]
    lines = [result_to_line(r) for r in results]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert f'"schema_version":{SCHEMA_VERSION}' in lines[0]
    assert results_from_lines(["", *lines, "\n"], "runs.jsonl") == results


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"runs\.jsonl:2: not JSON"),
        ("[1, 2]", r"runs\.jsonl:2: expected a JSON object"),
        ('{"schema_version": 3}', r"runs\.jsonl:2: schema_version 3 is not supported"),
        ('{"engine": "vllm"}', r"runs\.jsonl:2: schema_version None"),
        ('{"schema_version": 1, "engine": "vllm"}', r"runs\.jsonl:2: model: Field required"),
    ],
)
def test_results_reading_names_the_bad_line(line: str, message: str) -> None:
    good = result_to_line(_result(1, 25.0, 169.0, 3000.0))
    with pytest.raises(ResultsFormatError, match=message):
        results_from_lines([good, line], "runs.jsonl")


def test_compare_gives_both_values_and_ratios_b_over_a() -> None:
    a = [_result(1, 20.0, 100.0, 2000.0), _result(4, 50.0, 200.0, 4000.0)]
    b = [_result(1, 30.0, 50.0, 1000.0), _result(4, 25.0, 300.0, 6000.0), _result(16, 90, 1, 1)]
    rows = compare(a, b)
    assert [r.concurrency for r in rows] == [1, 4, 16]
    one, four, sixteen = rows
    assert (one.output_tokens_per_s.a, one.output_tokens_per_s.b) == (20.0, 30.0)
    assert one.output_tokens_per_s.ratio == pytest.approx(1.5)
    assert one.ttft_mean_ms.ratio == pytest.approx(0.5)
    assert one.e2e_p99_ms.ratio == pytest.approx(0.5)
    assert four.output_tokens_per_s.ratio == pytest.approx(0.5)
    assert four.ttft_mean_ms.ratio == pytest.approx(1.5)
    assert four.e2e_p99_ms.ratio == pytest.approx(1.5)
    # A level only B ran: A's side and the ratio are missing, not zero.
    assert sixteen.output_tokens_per_s.a is None
    assert sixteen.output_tokens_per_s.b == 90
    assert sixteen.output_tokens_per_s.ratio is None


def test_compare_takes_the_latest_record_per_concurrency() -> None:
    a = [_result(1, 10.0, 100.0, 1000.0), _result(1, 40.0, 100.0, 1000.0)]
    b = [_result(1, 20.0, 100.0, 1000.0)]
    (row,) = compare(a, b)
    assert row.output_tokens_per_s.a == 40.0
    assert row.output_tokens_per_s.ratio == pytest.approx(0.5)


def test_compare_ratio_is_missing_when_a_is_zero() -> None:
    (row,) = compare([_result(1, 0.0, 100.0, 1000.0)], [_result(1, 5.0, 100.0, 1000.0)])
    assert row.output_tokens_per_s.ratio is None
    assert row.ttft_mean_ms.ratio == pytest.approx(1.0)


# ---------------------------------------------------------------- what vLLM reports and we added


def test_input_and_total_token_throughput_count_successful_requests() -> None:
    records = [
        RequestRecord(True, 0.0, 1.0, 0.1, (), 10, input_tokens=30),
        RequestRecord(True, 1.0, 2.0, 0.1, (), 6, input_tokens=20),
        RequestRecord(False, 0.0, 2.0, error="HTTP 500", input_tokens=99),
    ]
    stats = level_stats(records)
    assert (stats.input_tokens, stats.output_tokens) == (50, 16)
    assert stats.input_tokens_per_s == pytest.approx(25.0)
    assert stats.total_tokens_per_s == pytest.approx(33.0)
    assert stats.goodput_requests_per_s is None, "no objectives, no goodput"


def test_goodput_counts_requests_meeting_every_objective() -> None:
    # TTFT 100/500/300 ms; TPOT 100/375/(single token: 0) ms; E2E 1000/2000/300 ms.
    records = _records()
    assert level_stats(records, Slo(ttft_ms=300)).goodput_requests_per_s == pytest.approx(2 / 3)
    both = Slo(ttft_ms=300, tpot_ms=200)
    assert level_stats(records, both).goodput_requests_per_s == pytest.approx(2 / 3)
    tight = Slo(ttft_ms=300, tpot_ms=50)
    assert level_stats(records, tight).goodput_requests_per_s == pytest.approx(1 / 3)
    e2e = Slo(e2el_ms=999)
    assert level_stats(records, e2e).goodput_requests_per_s == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ttft=500,tpot=50", Slo(ttft_ms=500, tpot_ms=50)),
        ("ttft:500 tpot:50", Slo(ttft_ms=500, tpot_ms=50)),  # as vLLM's --goodput writes it
        ("e2el=2000.5", Slo(e2el_ms=2000.5)),
    ],
)
def test_slo_text_parses(text: str, expected: Slo) -> None:
    assert parse_slo(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no objective"),
        ("ttft", "KEY=MILLISECONDS"),
        ("itl=5", "KEY one of ttft, tpot, e2el"),
        ("ttft=x", "not a number"),
        ("ttft=-1", "positive"),
        ("ttft=nan", "positive"),
        ("ttft=1,ttft=2", "given twice"),
    ],
)
def test_bad_slo_text_is_refused_naming_the_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_slo(text)


def _run(run_id: str, concurrency: tuple[int, ...] = (1, 4), **fields: object) -> list[BenchResult]:
    return [
        _result(c, 10.0 * c, 100.0, 1000.0).model_copy(update={"run_id": run_id, **fields})
        for c in concurrency
    ]


def test_a_version_1_record_is_read_and_its_run_is_its_timestamp() -> None:
    line = result_to_line(_result(1, 25.0, 169.0, 3000.0)).replace(
        f'"schema_version":{SCHEMA_VERSION}', '"schema_version":1'
    )
    (old,) = results_from_lines([line], "old.jsonl")
    assert old.schema_version == 1 and old.run == "2026-11-26T10:00:00+00:00"
    assert old.stats.input_tokens == 0 and old.prompts_sha256 is None


def test_runs_are_picked_by_id_and_a_file_of_several_needs_one_named() -> None:
    records = [*_run("aa11"), *_run("bb22", (1, 8))]
    assert [r.concurrency for r in select_run(records, "bb", "r.jsonl")] == [1, 8]
    assert [r.concurrency for r in select_run(records, "aa11", "r.jsonl")] == [1, 4]
    with pytest.raises(RunSelectionError, match=r"r\.jsonl holds 2 runs; name one") as err:
        select_run(records, None, "r.jsonl")
    assert "aa11" in str(err.value) and "bb22" in str(err.value)
    with pytest.raises(RunSelectionError, match="no run with id 'cc'"):
        select_run(records, "cc", "r.jsonl")
    assert select_run(_run("aa11"), None, "one.jsonl") == _run("aa11")


def test_runs_that_measure_different_things_are_told_apart() -> None:
    a = _run("a", prompts_sha256="1" * 64)
    assert differences(a, _run("b", prompts_sha256="1" * 64)) == {}
    b = _run("b", prompts_sha256="2" * 64, max_tokens=128, requests=8, model="other")
    assert set(differences(a, b)) == {"model", "max_tokens", "prompts", "requests"}
    assert differences(a, b)["max_tokens"] == ("64", "128")
    assert "prompts" not in differences(a, _run("c")), "a version 1 run recorded no prompts"
    assert set(differences(a, _run("d", prompts_sha256="1" * 64, request_rate=2.0))) == {
        "request_rate"
    }


def test_more_in_flight_than_requests_is_capped_at_the_request_count() -> None:
    (wide,) = _run("w", (64,), requests=4)
    assert wide.in_flight_at_most == 4
