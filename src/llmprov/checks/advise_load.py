"""Replaying a workload against one server: per-request output lengths, by concurrency level.

Built on checks/bench.py's request and record types, so an advise level is the same BenchResult
that `llmprov bench` writes. A request-rate sweep is a second scheduler beside `replay_level`
(arrivals on a clock instead of a semaphore) feeding the same records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

import httpx

from llmprov.checks import bench
from llmprov.core.advise.workload import WorkloadRequest, take
from llmprov.core.bench_stats import RequestRecord

# A cold start is polled this often: fine enough for starts of seconds, light on a starting server.
POLL_INTERVAL_S = 0.25


async def replay_level(
    client: httpx.AsyncClient,
    config: bench.BenchConfig,
    batch: Sequence[WorkloadRequest],
    concurrency: int,
) -> list[RequestRecord]:
    """Every request of `batch`, at most `concurrency` in flight, each with its own output length.

    After `config.level_time_limit_s` no new request starts, as in bench.run_level.
    """
    semaphore = asyncio.Semaphore(concurrency)
    deadline = time.perf_counter() + config.level_time_limit_s
    records: list[RequestRecord] = []

    async def one(request: WorkloadRequest) -> None:
        async with semaphore:
            if time.perf_counter() >= deadline:
                return
            own = dataclasses.replace(config, max_tokens=request.max_tokens)
            records.append(await bench.send_request(client, own, request.messages))

    await asyncio.gather(*(one(r) for r in batch))
    return records


async def replay(
    client: httpx.AsyncClient,
    config: bench.BenchConfig,
    workload: Sequence[WorkloadRequest],
) -> dict[int, list[RequestRecord]]:
    """A warm-up request, then `config.requests` workload requests per level of
    `config.concurrencies`, taken in turn so no level repeats another's (prefix caches)."""
    warm = await bench.send_request(
        client, dataclasses.replace(config, max_tokens=workload[0].max_tokens), workload[0].messages
    )
    if not warm.ok:
        raise bench.BenchError(f"warm-up request failed: {warm.error}")
    runs: dict[int, list[RequestRecord]] = {}
    for number, level in enumerate(config.concurrencies):
        batch = take(workload, config.requests, 1 + number * config.requests)
        runs[level] = await replay_level(client, config, batch, level)
    return runs


async def first_token_after(
    client: httpx.AsyncClient,
    config: bench.BenchConfig,
    messages: bench.Messages,
    since: float,
    timeout_s: float,
) -> float:
    """Seconds from `since` (a time.perf_counter() reading) to the first token of the first
    request the server answers; TimeoutError when none is answered within `timeout_s`."""
    one_token = dataclasses.replace(config, max_tokens=1, request_timeout_s=timeout_s)
    deadline = since + timeout_s
    last = "no attempt"
    while time.perf_counter() < deadline:
        record = await bench.send_request(client, one_token, messages)
        if record.ok and record.ttft_s is not None:
            return record.start_s + record.ttft_s - since
        last = record.error or "no token"
        await asyncio.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"no token within {timeout_s:g} s of the start (last: {last})")
