"""`llmprov advise` on real hosts: each candidate engine deployed and measured alone, then applied.

Per host, per engine in turn: the other candidates' units are stopped, the engine is deployed
through the ordinary deploy (its own unit and port, the model converted to its format), its unit
is stopped and started again to time a cold start to the first token, the workload is replayed
by concurrency level, and the unit's memory is read before it is stopped for the next engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import importlib.util
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pyinfra.api.command import StringCommand
from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.state import State
from pyinfra.context import ctx_state

from llmprov.checks import bench
from llmprov.checks.advise_load import (
    first_token_after,
    first_token_after_unload,
    replay,
    replay_rates,
)
from llmprov.checks.after_deploy import HostProof, prove
from llmprov.checks.endpoint import EndpointError, endpoint
from llmprov.core.advise.probe import (
    GPU_MEMORY_COMMAND,
    ProbeOutputError,
    declared_not,
    memory_command,
    parse_gpu_memory,
    parse_memory,
    start_command,
    stop_command,
    unit_of,
)
from llmprov.core.advise.recommend import Hardware
from llmprov.core.advise.report import EngineMeasurement, RateLevel
from llmprov.core.advise.slo import Slo
from llmprov.core.advise.workload import WorkloadRequest
from llmprov.core.bench_stats import RequestRecord, level_stats
from llmprov.core.config import HostConfig
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import DeployFailed, run_pyinfra
from llmprov.inventory import (
    InventoryError,
    LoadedInventory,
    load_inventory,
    load_pyinfra_inventory,
)

Progress = Callable[[str], None]


class HostCommandError(Exception):
    """A command advise ran on a host failed; the message names the host and the command."""


@dataclass(frozen=True)
class AdvisePlan:
    inventory: Path
    engines: tuple[str, ...]
    workload: Sequence[WorkloadRequest]
    concurrencies: tuple[int, ...]
    # Requests per concurrency level.
    requests: int
    slo: Slo
    users: int | None = None
    # Request rates (per second) to replay after the concurrency levels; none by default.
    rates: tuple[float, ...] = ()
    # Bound on an engine's start, unit start to first token (vLLM on the CPU takes minutes).
    ready_timeout_s: float = 900.0
    request_timeout_s: float = 300.0
    level_time_limit_s: float = 600.0


def load_for(path: Path, engine: str, host: str) -> LoadedInventory:
    """The inventory, one host, its engine replaced: the configuration of one candidate."""
    return load_inventory(path, engine_override=engine, limit=[host], every_host=True)


def hardware_of(cfg: HostConfig) -> Hardware:
    return Hardware(
        os=cfg.os, arch=cfg.settings.arch, gpu_vendor=cfg.gpu.vendor, gpu_count=cfg.gpu.count
    )


@contextlib.contextmanager
def host_shell(loaded: LoadedInventory, name: str) -> Iterator[Callable[[str], str]]:
    """A connection to one host through pyinfra's connector (the deploy's own SSH settings);
    yields run(command) -> stdout, run as root."""
    logging.getLogger("pyinfra").setLevel(logging.WARNING)
    inventory = load_pyinfra_inventory(loaded.path)
    target = [h for h in inventory if h.name == name]
    state = State(check_for_changes=False)
    state.init(inventory, Config(), initial_limit=target)
    with ctx_state.use(state):
        try:
            connect_all(state)
        except PyinfraError as exc:
            raise HostCommandError(f"{name}: could not connect: {exc}") from exc
    if not target or target[0] not in state.active_hosts:
        raise HostCommandError(f"{name}: could not connect")
    host = target[0]
    data = loaded.host_data[name]
    # As the deploys run: through sudo where the inventory asks for it or logs in as another user.
    sudo = bool(data.get("_sudo")) or str(data.get("ssh_user") or "root") != "root"

    def run(command: str) -> str:
        ok, output = host.run_shell_command(StringCommand(command), _sudo=sudo)
        if not ok:
            raise HostCommandError(f"{name}: `{command}` failed: {output.stderr.strip()}")
        return str(output.stdout)

    try:
        yield run
    finally:
        with ctx_state.use(state):
            disconnect_all(state)


def _bench_config(cfg: HostConfig, plan: AdvisePlan) -> bench.BenchConfig:
    return bench.BenchConfig(
        model=cfg.served_model_name,
        concurrencies=plan.concurrencies,
        requests=plan.requests,
        max_tokens=max(r.max_tokens for r in plan.workload),
        ignore_eos=bench.engine_accepts_ignore_eos(cfg.engine),
        api_key=cfg.api_key,
        request_timeout_s=plan.request_timeout_s,
        level_time_limit_s=plan.level_time_limit_s,
    )


def _declared_not(url: str, cfg: HostConfig) -> str | None:
    """Ollama's version answer, read for a server that says it is not Ollama."""
    if cfg.engine != "ollama":
        return None

    async def go() -> object:
        async with bench.open_async_client(url, 1, 30.0) as client:
            response = await client.get("/api/version")
            response.raise_for_status()
            return response.json()

    body = asyncio.run(go())
    return declared_not("Ollama", body) if isinstance(body, dict) else None


def measure_engine(
    plan: AdvisePlan, host: str, engine: str, progress: Progress
) -> EngineMeasurement:
    """Deploy `engine` alone on `host` and measure it; a failure becomes the measurement's error."""
    try:
        loaded = load_for(plan.inventory, engine, host)
        cfg, data = loaded.hosts[host], loaded.host_data[host]
        unit = unit_of(engine)
        others = [unit_of(e) for e in plan.engines if e != engine]
        with host_shell(loaded, host) as run:
            run(stop_command(others))
        progress(f"{host}: deploying {engine}")
        deployed = run_pyinfra(loaded, deploy_host)
        if not deployed.ok:
            return EngineMeasurement(
                engine=engine, error=f"deploy failed: {deployed.results[host].error}"
            )
        config = _bench_config(cfg, plan)
        with endpoint(cfg, data) as url, host_shell(loaded, host) as run:
            progress(f"{host}: {engine}: cold start")
            run(stop_command([unit]))
            cold = _cold_start(url, config, plan, lambda: run(start_command(unit)))
            not_engine = _declared_not(url, cfg)
            reload = _reload(url, config, plan) if engine == "ollama" else None
            progress(f"{host}: {engine}: replaying the workload at {plan.concurrencies}")
            levels, rates = asyncio.run(_replay(url, config, plan))
            rss, gpu, notes = _memory(run, unit)
            run(stop_command([unit]))
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        return EngineMeasurement(
            engine=engine,
            not_engine=not_engine,
            cold_start_s=cold,
            reload_s=reload,
            rss_bytes=rss,
            gpu_memory_mib=gpu,
            notes=notes,
            results=bench.level_results(engine, url, config, levels, stamp),
            rate_levels=[
                RateLevel(request_rate=rate, stats=level_stats(records))
                for rate, records in rates.items()
            ],
        )
    except (
        DeployFailed,
        EndpointError,
        HostCommandError,
        ProbeOutputError,
        bench.BenchError,
        TimeoutError,
        httpx.HTTPError,
        OSError,
    ) as exc:
        _stop_quietly(plan.inventory, engine, host)
        return EngineMeasurement(engine=engine, error=f"{type(exc).__name__}: {exc}")


def _stop_quietly(path: Path, engine: str, host: str) -> None:
    """After a failed measurement, stop the engine so it does not share the host with the next;
    a host that cannot be reached now is already reported by the failure itself."""
    with (
        contextlib.suppress(HostCommandError, InventoryError, OSError),
        host_shell(load_for(path, engine, host), host) as run,
    ):
        run(stop_command([unit_of(engine)]))


def _memory(run: Callable[[str], str], unit: str) -> tuple[int | None, float | None, list[str]]:
    """RSS and GPU memory of the unit's processes; a probe that fails is a note, not a failure
    of the measurement, whose throughput figures stand without it."""
    try:
        pids, rss = parse_memory(run(memory_command(unit)).splitlines())
    except (HostCommandError, ProbeOutputError) as exc:
        return None, None, [f"memory not read: {exc}"]
    try:
        return rss, parse_gpu_memory(run(GPU_MEMORY_COMMAND).splitlines(), pids), []
    except (HostCommandError, ProbeOutputError) as exc:
        return rss, None, [f"GPU memory not read: {exc}"]


def _cold_start(
    url: str, config: bench.BenchConfig, plan: AdvisePlan, start: Callable[[], object]
) -> float:
    """Seconds from just before `start()` (the unit's start, over the host's connection) to the
    first token. The start runs on this thread, before the polling: the host connection is not
    shared with the event loop's threads."""
    since = time.perf_counter()
    start()

    async def go() -> float:
        async with bench.open_async_client(url, 1, plan.ready_timeout_s) as client:
            return await first_token_after(
                client, config, plan.workload[0].messages, since, plan.ready_timeout_s
            )

    return asyncio.run(go())


def _reload(url: str, config: bench.BenchConfig, plan: AdvisePlan) -> float:
    async def go() -> float:
        async with bench.open_async_client(url, 1, plan.ready_timeout_s) as client:
            return await first_token_after_unload(
                client, config, plan.workload[0].messages, plan.ready_timeout_s
            )

    return asyncio.run(go())


async def _replay(
    url: str, config: bench.BenchConfig, plan: AdvisePlan
) -> tuple[dict[int, list[RequestRecord]], dict[float, list[RequestRecord]]]:
    # At a request rate every request of a level may be in flight at once: a connection each.
    connections = max(*config.concurrencies, config.requests if plan.rates else 1)
    async with bench.open_async_client(url, connections, config.request_timeout_s) as client:
        levels = await replay(client, config, plan.workload)
        first = 1 + len(config.concurrencies) * config.requests
        rates = await replay_rates(client, config, plan.workload, sorted(plan.rates), first)
    return levels, rates


@dataclass
class Applied:
    host: str
    engine: str
    lines: list[str]
    proof: HostProof | None

    @property
    def ok(self) -> bool:
        return self.proof is not None and self.proof.ok


# The uninstall deploy, where this llmprov has one (it arrives with the upgrades work): a module
# and a function taking the host's config and keep_models.
UNINSTALL = ("llmprov.deploy.lifecycle", "uninstall_host")


def uninstall_deploy() -> Callable[..., None] | None:
    """llmprov's uninstall deploy, or None where this version has none."""
    module_name, func = UNINSTALL
    if importlib.util.find_spec(module_name) is None:
        return None
    found = getattr(importlib.import_module(module_name), func, None)
    return found if callable(found) else None


def apply_choice(
    path: Path, host: str, engine: str, candidates: Sequence[str], progress: Progress
) -> Applied:
    """Deploy `engine` for good, remove the other candidates (uninstall, models kept; where
    llmprov has no uninstall, stop and disable their units and say so), then prove it."""
    loaded = load_for(path, engine, host)
    others = [e for e in candidates if e != engine]
    lines = []
    uninstall = uninstall_deploy()
    if uninstall is None:
        with host_shell(loaded, host) as run:
            run(stop_command([unit_of(e) for e in others], disable=True))
        lines += [
            f"{host}: {unit_of(e)} stopped and disabled (its files remain: no uninstall yet)"
            for e in others
        ]
    else:
        for other in others:
            progress(f"{host}: uninstalling {other}")
            removed = run_pyinfra(
                load_for(path, other, host), functools.partial(uninstall, keep_models=True)
            )
            outcome = "uninstalled (its models kept)" if removed.ok else "uninstall failed"
            error = removed.results[host].error
            lines.append(f"{host}: {other} {outcome}" + (f": {error}" if error else ""))
    progress(f"{host}: deploying {engine} for good")
    deployed = run_pyinfra(loaded, deploy_host)
    if not deployed.ok:
        lines.append(f"{host}: deploying {engine} failed: {deployed.results[host].error}")
        return Applied(host, engine, lines, None)
    proof = prove(loaded.hosts[host], loaded.host_data[host])
    verdict = "passed" if proof.ok else f"failed: {proof.error or 'smoke check failed'}"
    lines.append(f"{host}: {engine} deployed and enabled; smoke and throughput check {verdict}")
    return Applied(host, engine, lines, proof)
