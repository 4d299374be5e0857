"""The proof at the end of a deploy: smoke check, then a short throughput check, per host."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmprov.checks import bench
from llmprov.checks.endpoint import api_kind, endpoint
from llmprov.checks.smoke import SmokeReport, open_client, run_smoke
from llmprov.core.bench_stats import BenchResult
from llmprov.core.config import HostConfig

# A short load: enough to show batching at work without holding a deploy up for long.
SHORT_CONCURRENCIES = (1, 4)
SHORT_REQUESTS = 8
SHORT_MAX_TOKENS = 32


@dataclass
class HostProof:
    host: str
    url: str
    smoke: SmokeReport | None
    bench: list[BenchResult]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.smoke is None or self.smoke.ok)


def prove(
    cfg: HostConfig,
    data: Mapping[str, Any],
    run_bench: bool = True,
    ready_timeout_s: float = 300.0,
) -> HostProof:
    """Smoke-check one host and, when that passes, run the short throughput check against it."""
    with endpoint(cfg, data) as url:
        with open_client(url, timeout_s=120.0) as client:
            report = run_smoke(
                client,
                api_kind(cfg),
                cfg.served_model_name,
                cfg.api_key,
                ready_timeout_s=ready_timeout_s,
            )
        results: list[BenchResult] = []
        if run_bench and report.ok and api_kind(cfg) == "openai":
            results = short_bench(cfg, url)
        return HostProof(cfg.name, url, report, results)


def short_bench(cfg: HostConfig, url: str) -> list[BenchResult]:
    config = bench.BenchConfig(
        model=cfg.served_model_name,
        concurrencies=SHORT_CONCURRENCIES,
        requests=SHORT_REQUESTS,
        max_tokens=SHORT_MAX_TOKENS,
        ignore_eos=bench.engine_accepts_ignore_eos(cfg.engine),
        api_key=cfg.api_key,
    )
    prompts = bench.synthetic_prompts(bench.prompts_needed(config), seed=0)

    async def go() -> dict[int, list[Any]]:
        async with bench.open_async_client(url, max(config.concurrencies)) as client:
            return await bench.run_bench(client, config, prompts)

    levels = asyncio.run(go())
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return bench.level_results(cfg.engine, url, config, levels, stamp)
