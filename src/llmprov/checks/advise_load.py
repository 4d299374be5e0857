"""Replaying a workload against one server: per-request output lengths, by concurrency level.

Built on checks/bench.py's request and record types, so an advise level is the same BenchResult
that `llmprov bench` writes. Two schedulers feed the same records: `replay_level` bounds the
requests in flight (closed loop), `replay_rate` starts them at Poisson arrival times whatever is in
flight (open loop), as `vllm bench serve --request-rate` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
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


def arrival_offsets(count: int, rate: float, seed: int) -> list[float]:
    """Seconds from the start at which each of `count` requests arrives: a Poisson process of
    `rate` requests per second (exponential gaps), the first at 0, the same for the same seed."""
    if rate <= 0:
        raise ValueError(f"request rate must be positive, got {rate}")
    rng = random.Random(seed)
    offsets, now = [], 0.0
    for index in range(count):
        if index:
            now += rng.expovariate(rate)
        offsets.append(now)
    return offsets


async def replay_rate(
    client: httpx.AsyncClient,
    config: bench.BenchConfig,
    batch: Sequence[WorkloadRequest],
    rate: float,
    seed: int = 0,
) -> list[RequestRecord]:
    """Every request of `batch` started at its arrival time, however many are in flight.

    A request whose arrival falls after `config.level_time_limit_s` is not sent.
    """
    start = time.perf_counter()
    records: list[RequestRecord] = []

    async def one(request: WorkloadRequest, offset: float) -> None:
        if offset >= config.level_time_limit_s:
            return
        await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
        own = dataclasses.replace(config, max_tokens=request.max_tokens)
        records.append(await bench.send_request(client, own, request.messages))

    offsets = arrival_offsets(len(batch), rate, seed)
    await asyncio.gather(*(one(r, o) for r, o in zip(batch, offsets, strict=True)))
    return records


async def replay_rates(
    client: httpx.AsyncClient,
    config: bench.BenchConfig,
    workload: Sequence[WorkloadRequest],
    rates: Sequence[float],
    first: int,
) -> dict[float, list[RequestRecord]]:
    """`config.requests` requests per rate, ascending, taken in turn from index `first`."""
    runs: dict[float, list[RequestRecord]] = {}
    for number, rate in enumerate(rates):
        batch = take(workload, config.requests, first + number * config.requests)
        runs[rate] = await replay_rate(client, config, batch, rate, seed=number)
    return runs


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


# Ollama's API docs, "Unload a model": a generate request with no prompt and keep_alive 0 unloads
# the model at once, as the keep_alive timeout does after an idle spell.
UNLOAD_PATH = "/api/generate"


async def first_token_after_unload(
    client: httpx.AsyncClient,
    config: bench.BenchConfig,
    messages: bench.Messages,
    timeout_s: float,
) -> float:
    """Unload the model (the server keeps running), then the seconds to the first token of the
    next request: what a user waits for after an idle unload."""
    response = await client.post(
        UNLOAD_PATH, json={"model": config.model, "keep_alive": 0}, timeout=timeout_s
    )
    response.raise_for_status()
    return await first_token_after(client, config, messages, time.perf_counter(), timeout_s)
