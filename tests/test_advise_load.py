"""Replaying a workload against an OpenAI-compatible stand-in: output lengths, levels, cold start."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standins.openai_app import OpenAIStandIn

from llmprov.checks.advise_load import (
    arrival_offsets,
    first_token_after,
    replay,
    replay_rates,
)
from llmprov.checks.bench import BenchConfig, BenchError, open_async_client
from llmprov.core.advise.workload import LengthRange, SyntheticSpec, synthetic_requests

WORKLOAD = synthetic_requests(SyntheticSpec(LengthRange(8, 40), LengthRange(2, 12), 9, seed=5))


def run_replay(server: OpenAIStandIn, config: BenchConfig) -> dict[int, list[object]]:
    async def go() -> dict[int, list[object]]:
        async with open_async_client(
            "http://llm.test", max(config.concurrencies), transport=server.async_transport()
        ) as client:
            return await replay(client, config, WORKLOAD)  # type: ignore[return-value]

    return asyncio.run(go())


def test_each_request_asks_for_its_own_output_length_and_levels_take_new_requests() -> None:
    server = OpenAIStandIn(chunk_delay_s=0.001)
    config = BenchConfig(model="smollm2", concurrencies=(1, 2, 4), requests=4, max_tokens=12)
    levels = run_replay(server, config)
    assert [len(records) for records in levels.values()] == [4, 4, 4]
    bodies = server.chat_bodies
    assert len(bodies) == 1 + 12
    # Warm-up is request 0, then requests 1.. in turn, wrapping around the 9 of the workload.
    expected = [WORKLOAD[0]] + [WORKLOAD[(1 + i) % 9] for i in range(12)]
    assert [b["messages"] for b in bodies] == [r.messages for r in expected]
    assert [b["max_tokens"] for b in bodies] == [r.max_tokens for r in expected]
    # With ignore_eos the stand-in gives exactly what was asked, and the records show it.
    tokens = [rec.output_tokens for records in levels.values() for rec in records]  # type: ignore[attr-defined]
    assert sorted(tokens) == sorted(r.max_tokens for r in expected[1:])
    assert server.max_in_flight <= 4


def test_failed_warm_up_stops_the_replay() -> None:
    server = OpenAIStandIn(models=("other",), fail_every=1)
    config = BenchConfig(model="smollm2", concurrencies=(1,), requests=2)
    with pytest.raises(BenchError, match="warm-up request failed"):
        run_replay(server, config)


class _DownFor(httpx.AsyncBaseTransport):
    """Refuses connections until `up_at` (a perf_counter reading), then serves the stand-in."""

    def __init__(self, inner: httpx.AsyncBaseTransport, up_at: float) -> None:
        self.inner, self.up_at, self.refused = inner, up_at, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if time.perf_counter() < self.up_at:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


def test_cold_start_runs_from_the_start_to_the_first_token() -> None:
    server = OpenAIStandIn(ttft_s=0.2)
    config = BenchConfig(model="smollm2", concurrencies=(1,))

    async def go() -> tuple[float, int]:
        since = time.perf_counter()
        transport = _DownFor(server.async_transport(), since + 0.6)
        async with httpx.AsyncClient(base_url="http://llm.test", transport=transport) as client:
            seconds = await first_token_after(client, config, WORKLOAD[0].messages, since, 10.0)
        return seconds, transport.refused

    seconds, refused = asyncio.run(go())
    assert refused >= 2
    # Up at 0.6 s, then 0.2 s to the first token; polling adds at most one interval.
    assert 0.8 <= seconds < 0.8 + 0.25 + 0.3
    assert server.chat_bodies[-1]["max_tokens"] == 1


def test_cold_start_gives_up_after_its_timeout() -> None:
    config = BenchConfig(model="smollm2", concurrencies=(1,))

    async def go() -> float:
        since = time.perf_counter()
        transport = _DownFor(OpenAIStandIn().async_transport(), since + 60)
        async with httpx.AsyncClient(base_url="http://llm.test", transport=transport) as client:
            return await first_token_after(client, config, WORKLOAD[0].messages, since, 0.5)

    with pytest.raises(TimeoutError, match=r"no token within 0\.5 s"):
        asyncio.run(go())


@given(count=st.integers(0, 200), rate=st.floats(0.01, 1000), seed=st.integers(0, 99))
def test_arrivals_start_at_zero_never_go_back_and_repeat_per_seed(
    count: int, rate: float, seed: int
) -> None:
    offsets = arrival_offsets(count, rate, seed)
    assert len(offsets) == count
    assert offsets[:1] in ([], [0.0])
    assert all(b >= a for a, b in itertools.pairwise(offsets))
    assert offsets == arrival_offsets(count, rate, seed)


def test_arrivals_average_the_rate() -> None:
    offsets = arrival_offsets(4001, 20.0, seed=1)
    assert offsets[-1] / 4000 == pytest.approx(1 / 20.0, rel=0.06)
    with pytest.raises(ValueError, match="must be positive"):
        arrival_offsets(3, 0.0, 1)


def test_a_rate_level_starts_requests_on_their_clock_whatever_is_in_flight() -> None:
    # Each answer takes ~0.3 s; at 50 requests/s the next arrives long before: an open loop
    # has many in flight where a concurrency level of 1 would have one.
    server = OpenAIStandIn(ttft_s=0.3)
    config = BenchConfig(model="smollm2", concurrencies=(1,), requests=6)

    async def go() -> dict[float, list[object]]:
        async with open_async_client(
            "http://llm.test", 6, transport=server.async_transport()
        ) as client:
            return await replay_rates(client, config, WORKLOAD, [50.0, 100.0], first=2)  # type: ignore[return-value]

    runs = asyncio.run(go())
    assert sorted(runs) == [50.0, 100.0]
    assert [len(r) for r in runs.values()] == [6, 6]
    assert server.max_in_flight >= 3
    assert [b["messages"] for b in server.chat_bodies[:6]] == [
        WORKLOAD[(2 + i) % 9].messages for i in range(6)
    ]
