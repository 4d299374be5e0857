"""The benchmark chart is a PNG with one line per run in each panel, each line that run's figures."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from llmprov.checks.chart import chart_figure, write_chart
from llmprov.core.bench_stats import BenchResult, RequestRecord, level_stats


def _run(engine: str, tokens_per_request: int) -> list[BenchResult]:
    return [
        BenchResult(
            engine=engine,
            model="smollm2",
            url="http://127.0.0.1:8000",
            timestamp="2026-11-26T10:00:00+00:00",
            concurrency=level,
            requests=level,
            max_tokens=tokens_per_request,
            stats=level_stats(
                [
                    RequestRecord(True, 0.0, 1.0 + i / 10, 0.1, (0.05,), tokens_per_request)
                    for i in range(level)
                ]
            ),
        )
        for level in (1, 4, 16)
    ]


def test_chart_is_a_png_of_the_figure_size(tmp_path: Path) -> None:
    path = tmp_path / "bench.png"
    write_chart(path, {"vllm": _run("vllm", 64), "llama.cpp": _run("llama.cpp", 32)})
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1100, 450)


def test_each_panel_has_one_series_per_run_holding_that_runs_figures() -> None:
    runs = {"vllm": _run("vllm", 64), "llama.cpp": _run("llama.cpp", 32)}
    throughput, latency = chart_figure(runs).axes
    for axes in (throughput, latency):
        assert [line.get_label() for line in axes.get_lines()] == ["vllm", "llama.cpp"]
        for line in axes.get_lines():
            assert list(line.get_xdata()) == [1, 4, 16]
    for line, results in zip(throughput.get_lines(), runs.values(), strict=True):
        expected = [r.stats.output_tokens_per_s for r in results]
        assert list(line.get_ydata()) == pytest.approx(expected)
    for line, results in zip(latency.get_lines(), runs.values(), strict=True):
        expected = [r.stats.e2e.p99_ms / 1000 for r in results if r.stats.e2e is not None]
        assert list(line.get_ydata()) == pytest.approx(expected)
    # The two runs differ (64 against 32 tokens a request), so their lines must too.
    first, second = throughput.get_lines()
    assert list(first.get_ydata()) != list(second.get_ydata())


def test_a_run_repeated_at_a_level_is_drawn_once_with_its_last_figures() -> None:
    older, newer = _run("vllm", 64), _run("vllm", 128)
    (line,) = chart_figure({"vllm": [*older, *newer]}).axes[0].get_lines()
    assert list(line.get_xdata()) == [1, 4, 16]
    assert list(line.get_ydata()) == pytest.approx([r.stats.output_tokens_per_s for r in newer])


def test_chart_without_results_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no benchmark results"):
        write_chart(tmp_path / "x.png", {"vllm": []})
    assert not (tmp_path / "x.png").exists()
