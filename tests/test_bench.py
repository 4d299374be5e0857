"""The load generator: request shape, timing, token counts, bounds, failures and prompts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standins.openai_app import OpenAIStandIn

from llmprov.checks.bench import (
    BenchConfig,
    BenchError,
    BenchProgress,
    Messages,
    ProgressCallback,
    PromptsFileError,
    arrival_offsets,
    load_prompts,
    open_async_client,
    parse_prompt_lines,
    prompts_needed,
    run_bench,
    run_level,
    send_request,
    synthetic_prompts,
)
from llmprov.core.bench_stats import RequestRecord

PROMPTS = synthetic_prompts(4, seed=1)


def level(
    server: OpenAIStandIn,
    config: BenchConfig,
    concurrency: int = 1,
    prompts: Sequence[Messages] = PROMPTS,
    on_progress: ProgressCallback | None = None,
) -> list[RequestRecord]:
    async def go() -> list[RequestRecord]:
        async with open_async_client(
            "http://llm.test", concurrency, transport=server.async_transport()
        ) as client:
            return await run_level(client, config, prompts, concurrency, on_progress)

    return asyncio.run(go())


def one(server: OpenAIStandIn, config: BenchConfig) -> RequestRecord:
    async def go() -> RequestRecord:
        async with open_async_client(
            "http://llm.test", 1, transport=server.async_transport()
        ) as client:
            return await send_request(client, config, PROMPTS[0])

    return asyncio.run(go())


def test_request_streams_with_usage_and_ignore_eos() -> None:
    server = OpenAIStandIn()
    record = one(server, BenchConfig(model="smollm2", max_tokens=7))
    assert record.ok
    (body,) = server.chat_bodies
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["ignore_eos"] is True
    assert body["max_tokens"] == 7
    assert body["messages"] == PROMPTS[0]
    assert record.output_tokens == 7


def test_ignore_eos_is_left_out_for_engines_without_it() -> None:
    server = OpenAIStandIn()
    one(server, BenchConfig(model="smollm2", ignore_eos=False))
    assert "ignore_eos" not in server.chat_bodies[0]


def test_api_key_is_sent_as_bearer_token() -> None:
    assert one(OpenAIStandIn(api_key="k"), BenchConfig(model="smollm2", api_key="k")).ok
    refused = one(OpenAIStandIn(api_key="k"), BenchConfig(model="smollm2"))
    assert not refused.ok
    assert refused.error is not None and refused.error.startswith("HTTP 401")


def test_output_tokens_come_from_usage_when_the_server_sends_it() -> None:
    # Two tokens per chunk: usage says 8, the chunk count would say 4.
    server = OpenAIStandIn(words_per_chunk=2)
    record = one(server, BenchConfig(model="smollm2", max_tokens=8))
    assert record.output_tokens == 8
    assert len(record.itl_s) == 3


def test_output_tokens_are_counted_chunks_without_usage() -> None:
    server = OpenAIStandIn(words_per_chunk=2, sends_usage=False)
    assert one(server, BenchConfig(model="smollm2", max_tokens=8)).output_tokens == 4


def test_ttft_and_inter_token_gaps_follow_the_stream() -> None:
    server = OpenAIStandIn(ttft_s=0.15, chunk_delay_s=0.03)
    record = one(server, BenchConfig(model="smollm2", max_tokens=5))
    assert record.ok and record.ttft_s is not None
    assert len(record.itl_s) == 4
    assert all(gap >= 0.03 for gap in record.itl_s)
    # The first token is timed when it arrives, before the other four.
    assert 0.15 <= record.ttft_s <= record.e2e_s - sum(record.itl_s)


def test_stream_without_content_is_a_failure() -> None:
    record = one(OpenAIStandIn(reply=""), BenchConfig(model="smollm2"))
    assert not record.ok
    assert record.error == "stream carried no content"


def test_request_timeout_fails_the_request() -> None:
    server = OpenAIStandIn(ttft_s=1.0)
    record = one(server, BenchConfig(model="smollm2", request_timeout_s=0.05))
    assert not record.ok
    assert record.error == "no complete answer within 0.05 s"
    assert record.e2e_s < 0.5


def test_level_keeps_concurrency_at_its_bound() -> None:
    server = OpenAIStandIn(ttft_s=0.02, chunk_delay_s=0.005)
    records = level(server, BenchConfig(model="smollm2", requests=12, max_tokens=4), 4)
    assert len(records) == 12 and all(r.ok for r in records)
    assert server.max_in_flight == 4


def test_level_takes_prompts_in_turn() -> None:
    server = OpenAIStandIn()
    level(server, BenchConfig(model="smollm2", requests=6, max_tokens=2), 1)
    assert [b["messages"] for b in server.chat_bodies] == [*PROMPTS, *PROMPTS[:2]]


def test_level_records_failures_and_reports_progress() -> None:
    events: list[BenchProgress] = []
    server = OpenAIStandIn(fail_every=3)
    records = level(
        server, BenchConfig(model="smollm2", requests=9, max_tokens=2), 2, on_progress=events.append
    )
    failed = [r for r in records if not r.ok]
    assert len(records) == 9 and len(failed) == 3
    assert all(r.error is not None and r.error.startswith("HTTP 500") for r in failed)
    assert [e.done for e in events] == list(range(1, 10))
    assert events[-1] == BenchProgress(concurrency=2, done=9, failed=3, total=9)


def test_level_starts_no_request_after_its_time_limit() -> None:
    server = OpenAIStandIn(ttft_s=0.05)
    config = BenchConfig(model="smollm2", requests=50, max_tokens=1, level_time_limit_s=0.12)
    records = level(server, config, 1)
    assert 1 <= len(records) <= 4
    assert len(server.chat_bodies) == len(records)


def test_bench_warms_up_then_runs_each_level() -> None:
    server = OpenAIStandIn()
    config = BenchConfig(model="smollm2", concurrencies=(1, 3), requests=5, max_tokens=2)

    async def go() -> dict[int, list[RequestRecord]]:
        async with open_async_client("http://x", 3, transport=server.async_transport()) as client:
            return await run_bench(client, config, PROMPTS)

    runs = asyncio.run(go())
    assert list(runs) == [1, 3]
    assert [len(r) for r in runs.values()] == [5, 5]
    assert len(server.chat_bodies) == 1 + 5 + 5


def test_bench_sends_no_prompt_twice_given_the_prompts_it_needs() -> None:
    # A repeated prompt would be served from a prefix cache, with a far shorter TTFT.
    server = OpenAIStandIn()
    config = BenchConfig(model="smollm2", concurrencies=(1, 3), requests=5, max_tokens=2)
    prompts = synthetic_prompts(prompts_needed(config), seed=3)
    assert len(prompts) == 1 + 5 + 5

    async def go() -> None:
        async with open_async_client("http://x", 3, transport=server.async_transport()) as client:
            await run_bench(client, config, prompts)

    asyncio.run(go())
    sent = [body["messages"] for body in server.chat_bodies]
    assert sent[0] == prompts[0], "the warm-up takes the first prompt"
    assert sent[1:6] == prompts[1:6], "the first level the next five, in turn"
    assert sorted(map(str, sent[6:])) == sorted(map(str, prompts[6:])), "the second level the rest"


def test_bench_wraps_around_fewer_prompts_than_it_needs() -> None:
    server = OpenAIStandIn()
    config = BenchConfig(model="smollm2", concurrencies=(1, 2), requests=3, max_tokens=2)

    async def go() -> dict[int, list[RequestRecord]]:
        async with open_async_client("http://x", 2, transport=server.async_transport()) as client:
            return await run_bench(client, config, PROMPTS)

    runs = asyncio.run(go())
    assert all(r.ok for records in runs.values() for r in records)
    sent = [body["messages"] for body in server.chat_bodies]
    assert sent[:4] == [PROMPTS[0], *PROMPTS[1:4]]
    assert sorted(map(str, sent[4:])) == sorted(map(str, [PROMPTS[0], PROMPTS[1], PROMPTS[2]]))


def test_level_takes_prompts_in_turn_from_the_first_it_is_given() -> None:
    server = OpenAIStandIn()

    async def go() -> None:
        async with open_async_client("http://x", 1, transport=server.async_transport()) as client:
            config = BenchConfig(model="smollm2", requests=3, max_tokens=2)
            await run_level(client, config, PROMPTS, 1, first=2)

    asyncio.run(go())
    assert [b["messages"] for b in server.chat_bodies] == [PROMPTS[2], PROMPTS[3], PROMPTS[0]]


def test_failed_warm_up_stops_the_bench() -> None:
    server = OpenAIStandIn(models=("other",))

    async def go() -> None:
        async with open_async_client("http://x", 1, transport=server.async_transport()) as client:
            await run_bench(client, BenchConfig(model="smollm2"), PROMPTS)

    with pytest.raises(BenchError, match=r"warm-up request failed: HTTP 404: .*does not exist"):
        asyncio.run(go())
    assert len(server.chat_bodies) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"concurrencies": ()},
        {"concurrencies": (1, 0)},
        {"requests": 0},
        {"max_tokens": 0},
    ],
)
def test_config_rejects_non_positive_bounds(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        BenchConfig(model="m", **bad)  # type: ignore[arg-type]


def test_synthetic_prompts_are_deterministic_per_seed() -> None:
    assert synthetic_prompts(8, seed=5) == synthetic_prompts(8, seed=5)
    assert synthetic_prompts(8, seed=5) != synthetic_prompts(8, seed=6)
    prompts = synthetic_prompts(8, seed=5)
    assert len(prompts) == 8
    assert len({p[0]["content"] for p in prompts}) == 8
    assert all(p[0]["role"] == "user" for p in prompts)


def test_prompts_file_takes_prompt_and_messages_lines(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        '{"prompt": "Hello"}\n'
        "\n"
        '{"messages": [{"role": "system", "content": "Be brief."}, '
        '{"role": "user", "content": "Hi"}]}\n'
    )
    assert load_prompts(path) == [
        [{"role": "user", "content": "Hello"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "x"', "not JSON"),
        ('"just text"', 'one of "prompt" or "messages"'),
        ('{"text": "x"}', 'one of "prompt" or "messages"'),
        ('{"prompt": "x", "messages": []}', 'one of "prompt" or "messages"'),
        ('{"prompt": ""}', '"prompt" must be a non-empty string'),
        ('{"prompt": 3}', '"prompt" must be a non-empty string'),
        ('{"messages": []}', '"messages" must be a non-empty list'),
        ('{"messages": [{"role": "user"}]}', 'messages\\[0\\] needs a string "role"'),
        ('{"messages": [{"role": "user", "content": "a"}, "b"]}', "messages\\[1\\]"),
    ],
)
def test_prompts_file_errors_name_the_line(line: str, message: str) -> None:
    with pytest.raises(PromptsFileError, match=f"^p.jsonl:3: .*{message}"):
        parse_prompt_lines(['{"prompt": "ok"}', "", line], "p.jsonl")


def test_empty_prompts_file_is_an_error() -> None:
    with pytest.raises(PromptsFileError, match=r"p\.jsonl: no prompts"):
        parse_prompt_lines(["", "  "], "p.jsonl")


def test_missing_prompts_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_prompts(tmp_path / "absent.jsonl")


class _DropsFirstRequests(httpx.AsyncBaseTransport):
    """Closes the connection before answering the first `drops` requests, as a server does when a
    client reuses a keep-alive connection it has just closed; then hands over to the stand-in."""

    def __init__(self, inner: httpx.AsyncBaseTransport, drops: int) -> None:
        self.inner = inner
        self.drops = drops
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.drops:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return await self.inner.handle_async_request(request)


def _send_through(transport: httpx.AsyncBaseTransport) -> RequestRecord:
    async def go() -> RequestRecord:
        async with httpx.AsyncClient(base_url="http://llm.test", transport=transport) as client:
            return await send_request(client, BenchConfig(model="m", max_tokens=4), PROMPTS[0])

    return asyncio.run(go())


def test_request_dropped_before_any_answer_is_sent_once_more() -> None:
    transport = _DropsFirstRequests(OpenAIStandIn(models=("m",)).async_transport(), drops=1)
    record = _send_through(transport)
    assert record.ok, record.error
    assert transport.calls == 2


def test_request_dropped_twice_is_a_failure() -> None:
    transport = _DropsFirstRequests(OpenAIStandIn(models=("m",)).async_transport(), drops=2)
    record = _send_through(transport)
    assert not record.ok
    assert record.error is not None and "RemoteProtocolError" in record.error
    assert transport.calls == 2


# ---------------------------------------------------------------- arrivals, levels as they finish


@given(
    count=st.integers(0, 200),
    rate=st.floats(0.01, 1e4, allow_nan=False, allow_infinity=False),
    seed=st.integers(0, 2**32),
)
def test_poisson_arrivals_are_increasing_and_the_same_for_the_same_seed(
    count: int, rate: float, seed: int
) -> None:
    offsets = arrival_offsets(count, rate, seed)
    assert len(offsets) == count
    assert all(0 < a < b for a, b in pairwise(offsets))
    assert offsets == arrival_offsets(count, rate, seed)


def test_poisson_arrivals_average_the_rate_and_no_rate_sends_all_at_once() -> None:
    offsets = arrival_offsets(20_000, 8.0, seed=1)
    assert offsets[-1] / len(offsets) == pytest.approx(1 / 8, rel=0.03)
    assert arrival_offsets(3, None, seed=1) == [0.0, 0.0, 0.0]
    assert arrival_offsets(50, 8.0, 1) != arrival_offsets(50, 8.0, 2)


def test_a_request_rate_spaces_the_starts_as_drawn() -> None:
    server = OpenAIStandIn()
    config = BenchConfig(model="smollm2", requests=6, max_tokens=1, request_rate=40.0, seed=5)
    records = level(server, config, concurrency=6)
    starts = sorted(r.start_s for r in records)
    offsets = arrival_offsets(6, 40.0, 5)
    # Each start is no earlier than its arrival (measured from the first, which waits offsets[0]).
    for start, arrival in zip(starts, offsets, strict=True):
        assert start - starts[0] >= arrival - offsets[0] - 0.005
    assert starts[-1] - starts[0] >= offsets[-1] - offsets[0] - 0.005


def test_a_bad_request_rate_is_refused() -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="request rate"):
            BenchConfig(model="m", request_rate=bad)


def test_each_level_is_handed_over_as_it_finishes() -> None:
    server = OpenAIStandIn()
    config = BenchConfig(model="smollm2", concurrencies=(1, 2), requests=2, max_tokens=2)
    handed: list[tuple[int, int, int]] = []

    def on_level(concurrency: int, records: list[RequestRecord]) -> None:
        # Handed over before the next level sends anything.
        handed.append((concurrency, len(records), len(server.chat_bodies)))

    async def go() -> None:
        async with open_async_client("http://x", 2, transport=server.async_transport()) as client:
            await run_bench(client, config, PROMPTS, on_level=on_level)

    asyncio.run(go())
    assert handed == [(1, 2, 1 + 2), (2, 2, 1 + 2 + 2)]


def test_prompt_tokens_are_taken_from_the_usage_chunk() -> None:
    record = one(OpenAIStandIn(), BenchConfig(model="smollm2", max_tokens=3))
    assert (record.input_tokens, record.output_tokens) == (20, 3)
    assert one(OpenAIStandIn(sends_usage=False), BenchConfig(model="smollm2")).input_tokens == 0
