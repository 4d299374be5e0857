"""advise's per-host loop with the host and the network replaced: what it runs, in which order."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standins.openai_app import OpenAIStandIn

import llmprov.deploy.advise as advise
from llmprov.checks import bench
from llmprov.checks.after_deploy import HostProof
from llmprov.checks.smoke import SmokeReport
from llmprov.core.advise.slo import parse_slo
from llmprov.core.advise.workload import LengthRange, SyntheticSpec, synthetic_requests
from llmprov.deploy.runner import DeployRun, HostResult

MEMORY = "101 204800\n102 1048576\n"
GPU = "102, 1536\n999, 77\n"


class FakeHost:
    """Records commands and deploys; answers the memory and GPU probes."""

    def __init__(self, deploy_fails: set[str] | None = None) -> None:
        self.log: list[str] = []
        # Bodies of Ollama unload requests the server got.
        self.unloads: list[dict[str, Any]] = []
        self.deploy_fails = deploy_fails or set()

    @contextlib.contextmanager
    def shell(self, loaded: Any, name: str) -> Iterator[Any]:
        def run(command: str) -> str:
            self.log.append(command)
            if "cgroup.procs" in command:
                return MEMORY
            if "nvidia-smi" in command:
                return GPU
            return ""

        yield run

    def deploy(self, loaded: Any, deploy: Any) -> DeployRun:
        ((name, cfg),) = loaded.hosts.items()
        self.log.append(f"deploy {cfg.engine}")
        failed = cfg.engine in self.deploy_fails
        result = HostResult(name, connected=True, error="boom" if failed else None)
        return DeployRun({name: result}, dry=False, seconds=1.0)


class WithUnload(httpx.AsyncBaseTransport):
    """The OpenAI stand-in, plus Ollama's unload request (generate, no prompt, keep_alive 0)."""

    def __init__(self, server: OpenAIStandIn, unloads: list[dict[str, Any]]) -> None:
        self.inner, self.unloads = server.async_transport(), unloads

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/generate":
            await request.aread()
            self.unloads.append(json.loads(request.content))
            return httpx.Response(200, json={"done": True, "done_reason": "unload"})
        return await self.inner.handle_async_request(request)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[FakeHost, OpenAIStandIn, Path]:
    host = FakeHost()
    unloads = host.unloads
    server = OpenAIStandIn()
    monkeypatch.setattr(advise, "host_shell", host.shell)
    monkeypatch.setattr(advise, "run_pyinfra", host.deploy)

    @contextlib.contextmanager
    def endpoint(cfg: Any, data: Any) -> Iterator[str]:
        yield "http://llm.test"

    def client(
        url: str, concurrency: int, timeout_s: float = 300.0, transport: Any = None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url, transport=WithUnload(server, unloads))

    monkeypatch.setattr(advise, "endpoint", endpoint)
    monkeypatch.setattr(bench, "open_async_client", client)
    inv = tmp_path / "inv.py"
    inv.write_text(
        "hosts = [('box-1', {'engine': 'llamacpp', 'model': 'hf://org/repo/m.gguf',"
        " 'served_model_name': 'smollm2'})]\n"
    )
    return host, server, inv


def plan(inv: Path, engines: tuple[str, ...], rates: tuple[float, ...] = ()) -> advise.AdvisePlan:
    workload = synthetic_requests(SyntheticSpec(LengthRange(8, 8), LengthRange(4, 6), 5))
    return advise.AdvisePlan(
        inv, engines, workload, (1, 2), 3, parse_slo("ttft_p99=5s"), rates=rates
    )


def test_each_engine_is_measured_alone_after_a_cold_start(
    fake: tuple[FakeHost, OpenAIStandIn, Path],
) -> None:
    host, server, inv = fake
    measured = advise.measure_engine(
        plan(inv, ("vllm", "llamacpp"), rates=(20.0, 10.0)), "box-1", "llamacpp", print
    )
    assert measured.error is None, measured.error
    # The other candidate stopped, this one deployed, stopped, started cold, measured, stopped.
    assert host.log[0].startswith("if systemctl cat llmprov-vllm.service")
    assert host.log[1] == "deploy llamacpp"
    assert "systemctl stop llmprov-llamacpp.service" in host.log[2]
    assert host.log[3] == "systemctl start llmprov-llamacpp.service"
    assert "cgroup.procs" in host.log[4] and "nvidia-smi" in host.log[5]
    assert "systemctl stop llmprov-llamacpp.service" in host.log[6]
    assert measured.rss_bytes == (204800 + 1048576) * 1024
    assert measured.gpu_memory_mib == 1536
    assert measured.cold_start_s is not None and measured.cold_start_s >= 0
    assert [r.concurrency for r in measured.results] == [1, 2]
    assert all(r.stats.succeeded == 3 and r.engine == "llamacpp" for r in measured.results)
    assert [(r.request_rate, r.stats.succeeded) for r in measured.rate_levels] == [
        (10.0, 3),
        (20.0, 3),
    ]
    # Cold-start probe (one token), warm-up, then 3 requests per level and per rate.
    assert len(server.chat_bodies) == 1 + 1 + 6 + 6
    assert server.chat_bodies[0]["max_tokens"] == 1


def test_ollama_is_also_timed_after_an_unload_and_asked_whether_it_is_ollama(
    fake: tuple[FakeHost, OpenAIStandIn, Path],
) -> None:
    host, _, inv = fake
    measured = advise.measure_engine(plan(inv, ("ollama", "llamacpp")), "box-1", "ollama", print)
    assert measured.error is None, measured.error
    assert host.unloads == [{"model": "smollm2", "keep_alive": 0}]
    assert measured.reload_s is not None and measured.reload_s >= 0
    # The OpenAI stand-in answers /api/version as Ollama does, saying nothing of not being it.
    assert measured.not_engine is None
    assert host.log[3] == "systemctl start ollama.service"
    # Neither llama.cpp nor vLLM unloads its model: no such figure for them.
    other = advise.measure_engine(plan(inv, ("ollama", "llamacpp")), "box-1", "llamacpp", print)
    assert other.reload_s is None and len(host.unloads) == 1


def test_a_failed_deploy_is_the_engines_error_and_measures_nothing(
    fake: tuple[FakeHost, OpenAIStandIn, Path],
) -> None:
    host, server, inv = fake
    host.deploy_fails = {"vllm"}
    measured = advise.measure_engine(plan(inv, ("vllm", "llamacpp")), "box-1", "vllm", print)
    assert measured.error == "deploy failed: boom"
    assert measured.results == [] and server.chat_bodies == []


def test_a_failed_measurement_leaves_the_engine_stopped(
    fake: tuple[FakeHost, OpenAIStandIn, Path],
) -> None:
    host, server, inv = fake
    server.fail_every = 1  # every chat request fails: the cold start never sees a token
    short = dataclasses.replace(plan(inv, ("vllm", "llamacpp")), ready_timeout_s=0.5)
    measured = advise.measure_engine(short, "box-1", "llamacpp", print)
    assert measured.error is not None and measured.error.startswith("TimeoutError: no token")
    assert host.log[-1].startswith("if systemctl cat llmprov-llamacpp.service")
    assert host.log[-1].endswith("then systemctl stop llmprov-llamacpp.service; fi")


def test_apply_stops_and_disables_the_others_then_deploys_and_proves_the_winner(
    fake: tuple[FakeHost, OpenAIStandIn, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    host, _, inv = fake
    proved: list[str] = []

    def prove(cfg: Any, data: Any) -> HostProof:
        proved.append(cfg.engine)
        return HostProof(cfg.name, "http://llm.test", SmokeReport(()), [])

    monkeypatch.setattr(advise, "prove", prove)
    monkeypatch.setattr(advise, "uninstall_deploy", lambda: None)
    applied = advise.apply_choice(inv, "box-1", "llamacpp", ("vllm", "llamacpp", "ollama"), print)
    assert applied.ok and proved == ["llamacpp"]
    assert "systemctl disable --now llmprov-vllm.service" in host.log[0]
    assert "systemctl disable --now ollama.service" in host.log[0]
    assert host.log[1] == "deploy llamacpp"
    assert applied.lines == [
        "box-1: llmprov-vllm.service stopped and disabled (its files remain: no uninstall yet)",
        "box-1: ollama.service stopped and disabled (its files remain: no uninstall yet)",
        "box-1: llamacpp deployed and enabled; smoke and throughput check passed",
    ]


def test_apply_uninstalls_the_others_where_llmprov_has_an_uninstall(
    fake: tuple[FakeHost, OpenAIStandIn, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    host, _, inv = fake
    removed: list[tuple[str, bool]] = []

    def uninstall_host(cfg: Any, keep_models: bool = True) -> None:
        removed.append((cfg.engine, keep_models))

    def deploy(loaded: Any, deploy: Any) -> DeployRun:
        (cfg,) = loaded.hosts.values()
        if isinstance(deploy, functools.partial):
            deploy(cfg)
            return DeployRun({cfg.name: HostResult(cfg.name, connected=True)}, False, 1.0)
        return host.deploy(loaded, deploy)

    monkeypatch.setattr(advise, "uninstall_deploy", lambda: uninstall_host)
    monkeypatch.setattr(advise, "run_pyinfra", deploy)
    monkeypatch.setattr(
        advise, "prove", lambda cfg, data: HostProof(cfg.name, "u", SmokeReport(()), [])
    )
    applied = advise.apply_choice(inv, "box-1", "vllm", ("vllm", "llamacpp", "ollama"), print)
    assert applied.ok
    assert removed == [("llamacpp", True), ("ollama", True)]
    assert host.log == ["deploy vllm"]
    assert applied.lines[:2] == [
        "box-1: llamacpp uninstalled (its models kept)",
        "box-1: ollama uninstalled (its models kept)",
    ]


def test_uninstall_is_found_only_where_llmprov_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(advise, "UNINSTALL", ("llmprov.deploy.engines", "deploy_host"))
    assert advise.uninstall_deploy() is not None
    monkeypatch.setattr(advise, "UNINSTALL", ("llmprov.deploy.no_such_module", "x"))
    assert advise.uninstall_deploy() is None
    monkeypatch.setattr(advise, "UNINSTALL", ("llmprov.deploy.engines", "no_such_function"))
    assert advise.uninstall_deploy() is None


def test_a_memory_probe_that_fails_is_a_note_and_the_figures_stand(
    fake: tuple[FakeHost, OpenAIStandIn, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    host, _, inv = fake
    shell = host.shell

    @contextlib.contextmanager
    def no_cgroup(loaded: Any, name: str) -> Iterator[Any]:
        with shell(loaded, name) as run:

            def probe(command: str) -> str:
                if "cgroup.procs" in command:
                    raise advise.HostCommandError(f"{name}: `memory` failed: exit 4")
                return str(run(command))

            yield probe

    monkeypatch.setattr(advise, "host_shell", no_cgroup)
    measured = advise.measure_engine(plan(inv, ("llamacpp",)), "box-1", "llamacpp", print)
    assert measured.error is None
    assert measured.rss_bytes is None and measured.gpu_memory_mib is None
    assert measured.notes == ["memory not read: box-1: `memory` failed: exit 4"]
    assert [r.stats.succeeded for r in measured.results] == [3, 3]
