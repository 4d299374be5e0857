"""`llmprov advise` end to end on one sandbox host: llama.cpp, then vLLM on the CPU, serving SmolLM2.

Each engine is deployed in turn on the same host (the other stopped), timed from unit start to
first token, replayed a small workload at concurrency 1, 2 and 4, and read for memory; the report's
figures are then checked against the raw bench records it wrote beside it. The load is tiny (four
requests of a few tokens per level) so the test fits in minutes on two shared cores: it proves the
loop, not the engines' speed. `bash scripts/sandbox.sh --advise` runs it; with
LLMPROV_ADVISE_OUT set, the report is copied there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_vllm_deploy import wheels_mirror

from llmprov.cache import cache_root, demo_model
from llmprov.cli.main import main
from llmprov.core.advise.report import report_from_json
from llmprov.core.advise.slo import parse_slo, violations
from llmprov.core.advise.workload import parse_workload, take
from llmprov.core.bench_stats import LevelStats
from llmprov.sandbox import Harness

pytestmark = [pytest.mark.host, pytest.mark.engine]

ENGINES = ("llamacpp", "vllm")
LEVELS = (1, 2, 4)
REQUESTS = 4
SLO = "ttft_p99=60s,tpot_p99=2s"
LENGTHS = (8, 12, 16, 10, 14, 9, 11, 13, 15, 8, 12, 16, 10)


def workload_lines() -> str:
    return "".join(
        json.dumps(
            {
                "model": "smollm2",
                "messages": [{"role": "user", "content": f"Question {i}: name {n} colours."}],
                "max_tokens": n,
            }
        )
        + "\n"
        for i, n in enumerate(LENGTHS)
    )


def expected_goodput(levels: dict[int, LevelStats]) -> int | None:
    """Written out here, apart from core/advise/curve.py: lowest level up while the SLO holds."""
    slo = parse_slo(SLO)
    best = None
    for level in sorted(levels):
        if violations(slo, levels[level]):
            break
        best = level
    return best


def test_advise_measures_both_engines_and_its_report_matches_the_records(
    harness: Harness, host_name: Callable[[], str], tmp_path: Path
) -> None:
    gguf = demo_model(cache_root())
    workload = tmp_path / "client.jsonl"
    workload.write_text(workload_lines())
    out = tmp_path / "report"
    host = harness.boot(host_name())
    try:
        name, data = host.inventory_entry()
        entry: dict[str, Any] = {
            **data,
            "engine": "llamacpp",
            "model": f"file://{gguf}",
            "served_model_name": "smollm2",
            "mirror": {"pip_find_links": wheels_mirror(harness, host)},
            "llamacpp": {"parallel": max(LEVELS), "ctx_size": 1024 * max(LEVELS), "threads": 2},
            "vllm": {"enforce_eager": True, "max_model_len": 2048, "dtype": "bfloat16",
                     "cpu_kvcache_space_gib": 2},
        }  # fmt: skip
        inventory = tmp_path / "inv.py"
        inventory.write_text(f"hosts = [({name!r}, {entry!r})]\n")
        code = main(
            [
                "advise", str(inventory), "--workload", str(workload),
                "--engines", ",".join(ENGINES), "--slo", SLO, "--users", "2",
                "--concurrency", ",".join(map(str, LEVELS)), "--requests", str(REQUESTS),
                "--out", str(out), "--ready-timeout", "600", "--request-timeout", "120",
                "--time-limit", "180", "-y",
            ]
        )  # fmt: skip
        # Each engine was stopped after its turn: neither is left running.
        for unit in ("llmprov-llamacpp.service", "llmprov-vllm.service"):
            state = harness.run(host, ["systemctl", "is-active", unit], check=False).stdout
            assert state.strip() == "inactive", (unit, state)
    finally:
        harness.stop(host)
    if os.environ.get("LLMPROV_ADVISE_OUT"):
        shutil.copytree(out, os.environ["LLMPROV_ADVISE_OUT"], dirs_exist_ok=True)
    report = report_from_json((out / "advise.json").read_text(), "advise.json")
    assert code == 0, [(e.engine, e.error) for h in report.hosts for e in h.engines]

    requests = parse_workload(workload.read_text(), "client.jsonl")
    (host_report,) = report.hosts
    assert [e.engine for e in host_report.engines] == list(ENGINES)
    for engine in host_report.engines:
        raw = [
            json.loads(line)
            for line in (out / f"bench-{name}-{engine.engine}.jsonl").read_text().splitlines()
        ]
        assert [r.model_dump() for r in engine.results] == raw
        assert [r["concurrency"] for r in raw] == list(LEVELS)
        levels = {r.concurrency: r.stats for r in engine.results}
        for number, level in enumerate(LEVELS):
            stats = levels[level]
            assert (stats.succeeded, stats.failed) == (REQUESTS, 0), (engine.engine, stats)
            # Both engines honour ignore_eos: each request gave exactly its own max_tokens.
            batch = take(requests, REQUESTS, 1 + number * REQUESTS)
            assert stats.output_tokens == sum(r.max_tokens for r in batch), (engine.engine, level)
        good = expected_goodput(levels)
        assert good is not None, (engine.engine, engine.first_miss)
        assert engine.goodput is not None and engine.goodput.concurrency == good
        assert engine.goodput.output_tokens_per_s == levels[good].output_tokens_per_s
        assert engine.cold_start_s is not None and 0 < engine.cold_start_s < 600
        assert engine.rss_bytes is not None and engine.rss_bytes > 20 * 2**20
        assert engine.gpu_memory_mib is None and engine.not_engine is None

    recommended = host_report.recommendation.engine
    assert recommended in ENGINES
    assert host_report.recommendation.reasons[-1] == f"recommended: {recommended}"
    md = (out / "advise.md").read_text()
    assert f"**Recommendation: {recommended}**" in md
    for engine in host_report.engines:
        for r in engine.results:
            row = f"| {engine.label} | {r.concurrency} | {REQUESTS} | 0 | {r.stats.output_tokens_per_s:.1f} |"
            assert row in md
    page = (out / "advise.html").read_text()
    assert len(re.findall(r"<svg ", page)) == 3  # throughput, TTFT p99, TPOT p99
    assert len(re.findall(r"<polyline ", page)) == 3 * len(ENGINES)
    print(f"\n{md}")
