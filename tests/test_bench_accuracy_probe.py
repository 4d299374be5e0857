"""bench_accuracy's CPU probe: llmprov's client, probed, against the fixed-rate stand-in.

vLLM's client needs the vLLM environment, which the unit tier does not have; llmprov's side of
the probe runs here, so that a rename in the bench client breaks CI, not the next measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_benchmark() -> ModuleType:
    path = ROOT / "benchmarks" / "bench_accuracy.py"
    spec = importlib.util.spec_from_file_location("benchmark_bench_accuracy_probe", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[str]:
    bench_accuracy = load_benchmark()
    port = bench_accuracy.free_port()
    server = bench_accuracy.start_standin(port, 5.0, tmp_path / "standin.log")
    url = f"http://127.0.0.1:{port}"
    try:
        bench_accuracy.wait_ready(url, server, 30, tmp_path / "standin.log")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_llmprov_client_runs_under_the_probe_and_its_cpu_is_read_back(
    standin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench_accuracy = load_benchmark()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(7)))
    args = argparse.Namespace(requests=6, max_tokens=8, run_timeout=60.0)
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    argv, figures, cpu = bench_accuracy.llmprov_bench(standin, prompts, args, 3, tmp_path)
    assert figures.succeeded == 6 and figures.output_tokens == 48
    # The level's CPU is a part of the whole process's, which includes start-up.
    assert 0 < cpu.level_cpu_s < cpu.process_cpu_s
    assert cpu.output_tokens == 48 and cpu.level_us_per_token > 0
    # Seven requests probed: the warm-up and the level's six.
    record = json.loads(next(tmp_path.glob("*.cpu")).read_text())
    assert len(record["starts_cpu_s"]) == 7
    assert argv[:3] == [sys.executable, "-c", bench_accuracy.LLMPROV_LAUNCHER]


def test_a_probe_that_saw_fewer_requests_than_the_level_is_an_error(tmp_path: Path) -> None:
    bench_accuracy = load_benchmark()
    probe = tmp_path / "run.cpu"
    probe.write_text(json.dumps({"starts_cpu_s": [0.1], "last_end_cpu_s": 0.5, "process_cpu_s": 1}))
    with pytest.raises(SystemExit, match="1 requests probed"):
        bench_accuracy.client_cpu(probe, 6, 48)
    cpu = bench_accuracy.client_cpu(probe, 1, 4)
    assert cpu.level_cpu_s == pytest.approx(0.4)
    assert cpu.level_us_per_token == pytest.approx(1e5)


def test_the_standin_streams_what_vllm_streams_to_httpx_own_transport(standin: str) -> None:
    # httpx's default transport (h11), not the bench client's: the stand-in speaks plain HTTP.
    body = {"max_completion_tokens": 3, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{standin}/v1/chat/completions", json=body, timeout=10) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert contents == ["", " w1", " w2", " w3"]
    assert chunks[-1]["usage"]["completion_tokens"] == 3
