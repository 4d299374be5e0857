"""The benchmark chart is a PNG with one line per run in each panel."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from llmprov.checks.chart import write_chart
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


def test_chart_without_results_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no benchmark results"):
        write_chart(tmp_path / "x.png", {"vllm": []})
    assert not (tmp_path / "x.png").exists()
