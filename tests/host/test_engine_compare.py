"""vLLM (CPU) and llama-server on two sandbox hosts at once: smoke, bench and compare, all via the CLI.

Both hosts are deployed through llmprov in one pyinfra run and serve SmolLM2 on loopback; the
controller reaches each through `endpoint()`'s SSH tunnel, so latencies include the forwarding.
The load is small (a few requests of a few tokens per level) to keep the test within minutes on
two shared cores: it proves the pipeline end to end, not the engines' speed.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread
from test_vllm_deploy import converted_smollm2, vllm_host_data, wheels_mirror

from llmprov.cache import cache_root, demo_model
from llmprov.checks.endpoint import endpoint
from llmprov.cli.main import main
from llmprov.core.bench_stats import SCHEMA_VERSION
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host, pytest.mark.engine]

MODEL = "smollm2"
LEVELS = (1, 4, 8)
REQUESTS = 8
MAX_TOKENS = 32
# write_chart draws an 11 x 4.5 inch figure at 100 dpi.
CHART_SHAPE = (450, 1100)
# Bounds on the load, so a stuck server fails the test rather than holding it.
TIME_LIMIT_S = 180
REQUEST_TIMEOUT_S = 120


def llamacpp_host_data(host: SandboxHost, model: Path) -> tuple[str, dict[str, Any]]:
    name, data = host.inventory_entry()
    return name, {
        **data,
        "engine": "llamacpp",
        "model": f"file://{model}",
        "served_model_name": MODEL,
        # A slot per request of the highest level, so neither engine queues requests at 8.
        "llamacpp": {"parallel": max(LEVELS), "ctx_size": 1024 * max(LEVELS), "threads": 2},
    }


def write_inventory(path: Path, *entries: tuple[str, dict[str, Any]]) -> Path:
    path.write_text(f"hosts = {list(entries)!r}\n")
    return path


def bench(url: str, engine: str, jsonl: Path, chart: Path) -> int:
    return main(
        [
            "bench", url, "--engine", engine, "--model", MODEL,
            "--concurrency", ",".join(str(level) for level in LEVELS),
            "--requests", str(REQUESTS), "--max-tokens", str(MAX_TOKENS),
            "--json", str(jsonl), "--chart", str(chart),
            "--time-limit", str(TIME_LIMIT_S), "--request-timeout", str(REQUEST_TIMEOUT_S),
        ]
    )  # fmt: skip


def table_row(out: str, label: str) -> list[str]:
    """The cells after `label` in the first row of a printed table that starts with it."""
    wanted = label.split()
    for line in out.splitlines():
        words = re.sub("[│┃]", " ", line).split()
        if words[: len(wanted)] == wanted:
            return words[len(wanted) :]
    raise AssertionError(f"no row {label!r} in:\n{out}")


def check_records(path: Path, engine: str) -> dict[int, dict[str, Any]]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["concurrency"] for r in records] == list(LEVELS)
    for record in records:
        assert record["schema_version"] == SCHEMA_VERSION
        assert (record["engine"], record["model"]) == (engine, MODEL)
        assert (record["requests"], record["max_tokens"]) == (REQUESTS, MAX_TOKENS)
        stats = record["stats"]
        assert (stats["succeeded"], stats["failed"]) == (REQUESTS, 0), stats
        # Both engines honour ignore_eos, so every request gives exactly max_tokens.
        assert stats["output_tokens"] == REQUESTS * MAX_TOKENS, stats
        assert stats["output_tokens_per_s"] > 0
        assert 0 < stats["ttft"]["mean_ms"] <= stats["e2e"]["p99_ms"]
        assert stats["tpot"]["mean_ms"] > 0
    return {r["concurrency"]: r["stats"] for r in records}


def check_chart(path: Path) -> None:
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stat().st_size > 20_000, "two panels with axes, lines and legends"
    pixels = imread(path)  # decodes the whole file: a truncated or corrupt PNG fails here
    assert pixels.shape[:2] == CHART_SHAPE


def test_vllm_and_llamacpp_bench_side_by_side_through_the_cli(
    harness: Harness,
    host_name: Callable[[], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gguf = demo_model(cache_root())
    hf_folder = converted_smollm2()
    llama_host, vllm_host = harness.boot_many([host_name(), host_name()])
    try:
        entries = {
            "llamacpp": llamacpp_host_data(llama_host, gguf),
            "vllm": vllm_host_data(vllm_host, hf_folder, wheels_mirror(harness, vllm_host)),
        }
        loaded = load_inventory(write_inventory(tmp_path / "inv.py", *entries.values()))
        deployed = run_pyinfra(loaded, deploy_host)
        assert deployed.ok, {h: r.error for h, r in deployed.results.items()}

        with contextlib.ExitStack() as tunnels:
            urls = {
                engine: tunnels.enter_context(endpoint(loaded.hosts[name], loaded.host_data[name]))
                for engine, (name, _) in entries.items()
            }
            # Both servers ready before either is measured: vLLM's start-up (about a minute
            # after the deploy) would otherwise take the CPU from llama-server's bench.
            for url in urls.values():
                capsys.readouterr()
                check = ["check", "--url", url, "--api", "openai", "--model", MODEL]
                assert main([*check, "--ready-timeout", "300"]) == 0, capsys.readouterr().out
                assert table_row(capsys.readouterr().out, "chat completion")[0] == "ok"

            stats: dict[str, dict[int, dict[str, Any]]] = {}
            for engine, url in urls.items():
                jsonl, chart = tmp_path / f"{engine}.jsonl", tmp_path / f"{engine}.png"
                assert bench(url, engine, jsonl, chart) == 0, capsys.readouterr()
                out = capsys.readouterr().out
                assert f"{engine} · {MODEL} · {url}" in out
                assert table_row(out, "concurrency") == [str(level) for level in LEVELS]
                assert table_row(out, "requests ok") == [str(REQUESTS)] * len(LEVELS)
                assert table_row(out, "requests failed") == ["0"] * len(LEVELS)
                stats[engine] = check_records(jsonl, engine)
                check_chart(chart)
    finally:
        for host in (llama_host, vllm_host):
            harness.stop(host)

    a, b = tmp_path / "llamacpp.jsonl", tmp_path / "vllm.jsonl"
    both = tmp_path / "compare.png"
    assert main(["bench", "compare", str(a), str(b), "--chart", str(both)]) == 0
    out = capsys.readouterr().out
    with capsys.disabled():  # the side-by-side figures, for whoever runs the tier
        print(f"\n{out}")
    assert "A: llamacpp (llamacpp.jsonl)" in out and "B: vllm (vllm.jsonl)" in out
    for level in LEVELS:
        tokens_a = stats["llamacpp"][level]["output_tokens_per_s"]
        tokens_b = stats["vllm"][level]["output_tokens_per_s"]
        ttft_a = stats["llamacpp"][level]["ttft"]["mean_ms"]
        ttft_b = stats["vllm"][level]["ttft"]["mean_ms"]
        rows = [line.split() for line in out.splitlines()]
        throughput = [str(level), "output", "tokens/s"]
        throughput += [f"{tokens_a:.1f}", f"{tokens_b:.1f}", f"{tokens_b / tokens_a:.2f}×"]
        assert throughput in rows, out
        ttft = ["TTFT", "mean", "ms", f"{ttft_a:.1f}", f"{ttft_b:.1f}", f"{ttft_b / ttft_a:.2f}×"]
        assert ttft in rows[rows.index(throughput) :], out
    check_chart(both)
    assert not re.search(r"\bnan\b|\binf\b", out)
