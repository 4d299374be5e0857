"""Throughput load generator: streamed OpenAI chat completions at bounded concurrency, and prompts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import json.scanner
import math
import os
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

from llmprov.checks.lean_http import LeanTransport
from llmprov.core.bench_stats import (
    BenchResult,
    RequestRecord,
    Slo,
    level_stats,
    result_to_line,
    results_from_lines,
)
from llmprov.core.sse import SseDecoder

CHAT_PATH = "/v1/chat/completions"

# Engines (as llmprov names them) whose chat endpoint takes `ignore_eos`, so every request
# yields exactly max_tokens. Ollama ignores the field.
IGNORE_EOS_ENGINES = frozenset({"vllm", "llamacpp"})

Messages = list[dict[str, Any]]


class BenchError(RuntimeError):
    """The benchmark cannot go on (the warm-up request failed)."""


class PromptsFileError(ValueError):
    """A prompts file line that is not a prompt; the message names `file:line`."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    model: str
    concurrencies: tuple[int, ...] = (1, 4, 16)
    # Requests per concurrency level.
    requests: int = 32
    max_tokens: int = 64
    ignore_eos: bool = True
    api_key: str | None = None
    # Bound on one request, sending to last byte.
    request_timeout_s: float = 300.0
    # After this long a level starts no new request; those in flight finish or time out.
    level_time_limit_s: float = 600.0
    # Poisson arrivals at this many requests/s (capped by the level's concurrency), as
    # `vllm bench serve --request-rate`; None sends each request as soon as a slot is free.
    request_rate: float | None = None
    # Seeds the arrival times, so that two runs send on the same schedule.
    seed: int = 0
    slo: Slo | None = None

    def __post_init__(self) -> None:
        if self.request_rate is not None and not (
            math.isfinite(self.request_rate) and self.request_rate > 0
        ):
            raise ValueError(f"request rate must be a positive number, got {self.request_rate}")
        if not self.concurrencies or min(self.concurrencies) < 1:
            raise ValueError(f"concurrency levels must be >= 1, got {self.concurrencies}")
        if self.requests < 1:
            raise ValueError(f"requests must be >= 1, got {self.requests}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True, slots=True)
class BenchProgress:
    concurrency: int
    done: int
    failed: int
    total: int


ProgressCallback = Callable[[BenchProgress], None]


def engine_accepts_ignore_eos(engine: str) -> bool:
    return engine.lower() in IGNORE_EOS_ENGINES


# --- prompts -------------------------------------------------------------------------------------

_WORDS = [
    "river",
    "mountain",
    "engine",
    "harbor",
    "lantern",
    "copper",
    "orchard",
    "signal",
    "winter",
    "garden",
    "bridge",
    "compass",
    "library",
    "thunder",
    "meadow",
    "circuit",
    "valley",
    "furnace",
    "island",
    "market",
    "canyon",
    "glacier",
    "beacon",
    "voyage",
    "forest",
    "quarry",
    "railway",
    "tide",
    "archive",
    "prism",
    "falcon",
    "ember",
    "cellar",
    "orbit",
    "meadowlark",
    "granite",
    "workshop",
    "storm",
    "atlas",
    "cobalt",
    "lighthouse",
    "mill",
    "courier",
    "frontier",
    "satellite",
    "kiln",
    "delta",
    "summit",
    "observatory",
    "caravan",
    "reef",
    "foundry",
    "marsh",
    "citadel",
    "aurora",
    "ledger",
    "tundra",
    "relay",
    "windmill",
    "monsoon",
    "spire",
    "lagoon",
]


def synthetic_prompts(count: int, seed: int = 0) -> list[Messages]:
    """`count` single-turn prompts of 32-96 filler words, the same for the same seed."""
    rng = random.Random(seed)
    prompts: list[Messages] = []
    for _ in range(count):
        topics = rng.sample(_WORDS, 3)
        context = " ".join(rng.choices(_WORDS, k=rng.randint(32, 96)))
        text = (
            f"Notes: {context}.\n"
            f"Using the notes, write a long story about {topics[0]}, {topics[1]} and {topics[2]}."
        )
        prompts.append([{"role": "user", "content": text}])
    return prompts


def parse_prompt_lines(lines: Iterable[str], source: str) -> list[Messages]:
    """Read `{"prompt": "..."}` or `{"messages": [...]}` per line; blank lines are skipped."""
    prompts: list[Messages] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            prompts.append(_parse_prompt_line(line, f"{source}:{number}"))
    if not prompts:
        raise PromptsFileError(f"{source}: no prompts in file")
    return prompts


def _parse_prompt_line(line: str, where: str) -> Messages:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PromptsFileError(f"{where}: not JSON: {exc.msg}") from None
    if not isinstance(item, dict) or ("prompt" in item) == ("messages" in item):
        raise PromptsFileError(f'{where}: expected an object with one of "prompt" or "messages"')
    if "prompt" in item:
        prompt = item["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptsFileError(f'{where}: "prompt" must be a non-empty string')
        return [{"role": "user", "content": prompt}]
    messages = item["messages"]
    if not isinstance(messages, list) or not messages:
        raise PromptsFileError(f'{where}: "messages" must be a non-empty list')
    for index, message in enumerate(messages):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str | list)
        ):
            raise PromptsFileError(
                f'{where}: messages[{index}] needs a string "role" and a "content"'
            )
    return messages


def load_prompts(path: Path) -> list[Messages]:
    """Prompts from a JSONL file; OSError propagates for a missing or unreadable file."""
    with path.open(encoding="utf-8") as handle:
        return parse_prompt_lines(handle, str(path))


# --- requests ------------------------------------------------------------------------------------


def open_async_client(
    base_url: str,
    max_concurrency: int,
    timeout_s: float = 300.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """A client on the lean transport (lean_http.py), which opens a connection for every request
    in flight (at most `max_concurrency`, as run_level bounds them), so no request queues for a
    connection inside the client and time spent waiting is the server's."""
    del max_concurrency  # bounded by the caller; kept so callers state it
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 30.0)),
        transport=transport or LeanTransport(),
    )


def chat_request_body(config: BenchConfig, messages: Messages) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": config.model,
        "messages": messages,
        "max_tokens": config.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if config.ignore_eos:
        body["ignore_eos"] = True
    return body


async def send_request(
    client: httpx.AsyncClient, config: BenchConfig, messages: Messages
) -> RequestRecord:
    """One streamed chat completion, timed; every failure becomes a failed record."""
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    body = chat_request_body(config, messages)
    start = time.perf_counter()
    stamps: list[float] = []
    # completion_tokens and prompt_tokens, from the usage chunk when the server sends one.
    usage: dict[str, int] = {}

    def failed(error: str) -> RequestRecord:
        return RequestRecord(ok=False, start_s=start, end_s=time.perf_counter(), error=error)

    # A server may close an idle keep-alive connection just as the client reuses it (llama-server's
    # HTTP library closes one after a few requests): the request then fails before any answer.
    # The lean transport sends it again on a new connection itself; this second attempt covers
    # any other transport.
    for attempt in (1, 2):
        answered = False
        try:
            async with (
                asyncio.timeout(config.request_timeout_s),
                client.stream("POST", CHAT_PATH, json=body, headers=headers) as response,
            ):
                answered = True
                if response.status_code != 200:
                    text = (await response.aread()).decode("utf-8", "replace").strip()
                    return failed(f"HTTP {response.status_code}: {text[:200]}")
                decoder = SseDecoder()
                # Bytes as they arrive, parsed per read: the events of one read reached the
                # client together, so they share its arrival time, taken before any is parsed.
                # Raw bytes unless the server compressed them: one layer of httpx less per read.
                encoded = "content-encoding" in response.headers
                async for data in response.aiter_bytes() if encoded else response.aiter_raw():
                    events = decoder.feed(data)
                    if events:
                        error = _take_events(events, time.perf_counter(), stamps, usage)
                        if error:
                            return failed(error)
                # Read to the body's end (past [DONE]): httpx reuses a connection only once the
                # response is fully read, and a closed one costs a reconnect per request.
                error = _take_events(decoder.close(), time.perf_counter(), stamps, usage)
                if error:
                    return failed(error)
            break
        except TimeoutError:
            return failed(f"no complete answer within {config.request_timeout_s:g} s")
        except httpx.RemoteProtocolError as exc:
            if answered or attempt == 2:
                return failed(f"{type(exc).__name__}: {exc}")
        except httpx.HTTPError as exc:
            return failed(f"{type(exc).__name__}: {exc}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return failed("malformed stream chunk")
    end = time.perf_counter()
    if not stamps:
        return RequestRecord(ok=False, start_s=start, end_s=end, error="stream carried no content")
    return RequestRecord(
        ok=True,
        start_s=start,
        end_s=end,
        ttft_s=stamps[0] - start,
        itl_s=tuple(b - a for a, b in pairwise(stamps)),
        output_tokens=usage.get("completion_tokens", len(stamps)),
        input_tokens=usage.get("prompt_tokens", 0),
    )


def _take_events(
    events: list[bytes], now: float, stamps: list[float], usage: dict[str, int]
) -> str | None:
    """Account the stream events of one read: a stamp per event with content, the usage counts;
    the reason when an event says the request failed."""
    for data in events:
        if data.strip() == b"[DONE]":
            continue
        chunk = parse_json(data)
        if not isinstance(chunk, dict):
            return "malformed stream chunk"
        if chunk.get("error"):
            return f"error in stream: {chunk['error']}"
        counts = chunk.get("usage")
        if isinstance(counts, dict):
            for name in ("completion_tokens", "prompt_tokens"):
                value = counts.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    usage[name] = value
        if _has_content(chunk):
            stamps.append(now)
    return None


# The C scanner that json.loads ends in, called without json.loads' wrapping (encoding detection
# and two regex matches for surrounding whitespace), which cost as much as the scan per chunk.
_DECODER: Any = json.JSONDecoder()
_SCAN: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(_DECODER)


def parse_json(data: bytes) -> Any:
    """json.loads of one UTF-8 JSON text, for less CPU: the same value, or JSONDecodeError
    (UnicodeDecodeError for bytes that are not UTF-8)."""
    text = data.decode().strip(" \t\n\r")
    try:
        value, end = _SCAN(text, 0)
    except StopIteration as stop:
        raise json.JSONDecodeError("Expecting value", text, stop.value) from None
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _has_content(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        # Reasoning models stream their thinking tokens apart from the answer; both are output.
        if delta.get("content") or delta.get("reasoning_content"):
            return True
    return False


async def run_level(
    client: httpx.AsyncClient,
    config: BenchConfig,
    prompts: Sequence[Messages],
    concurrency: int,
    on_progress: ProgressCallback | None = None,
    first: int = 0,
) -> list[RequestRecord]:
    """`config.requests` requests, at most `concurrency` in flight, prompts taken in turn from
    index `first` (wrapping around). With `config.request_rate`, request i is sent no earlier
    than its Poisson arrival time (`arrival_offsets`).

    After `config.level_time_limit_s` no new request starts, so a level may return fewer records.
    """
    if not prompts:
        raise ValueError("no prompts")
    semaphore = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    deadline = started + config.level_time_limit_s
    offsets = arrival_offsets(config.requests, config.request_rate, config.seed)
    records: list[RequestRecord] = []
    failed = 0

    async def one(index: int) -> None:
        nonlocal failed
        wait = started + offsets[index] - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        async with semaphore:
            if time.perf_counter() >= deadline:
                return
            record = await send_request(client, config, prompts[(first + index) % len(prompts)])
        records.append(record)
        failed += not record.ok
        if on_progress is not None:
            on_progress(BenchProgress(concurrency, len(records), failed, config.requests))

    await asyncio.gather(*(one(i) for i in range(config.requests)))
    return records


def arrival_offsets(count: int, rate: float | None, seed: int) -> list[float]:
    """Seconds from a level's start at which each request arrives: all at 0 without a rate, else
    a Poisson process (exponential gaps of mean 1/rate, the first gap included), as vLLM's
    benchmark draws them with burstiness 1; the same seed gives the same schedule."""
    if rate is None:
        return [0.0] * count
    rng = random.Random(seed)
    offsets: list[float] = []
    t = 0.0
    for _ in range(count):
        t += rng.expovariate(rate)
        offsets.append(t)
    return offsets


LevelCallback = Callable[[int, list[RequestRecord]], None]


async def run_bench(
    client: httpx.AsyncClient,
    config: BenchConfig,
    prompts: Sequence[Messages],
    on_progress: ProgressCallback | None = None,
    on_level: LevelCallback | None = None,
) -> dict[int, list[RequestRecord]]:
    """A warm-up request, then each concurrency level in turn; records per level.

    `on_level(concurrency, records)` is called as each level finishes, so that a caller can keep
    (write) it before the next level starts: an interrupted run loses only the level under way.

    The warm-up sends the first prompt and each level the next `config.requests` in turn, so
    with `prompts_needed(config)` prompts no request repeats an earlier one. A repeat would find
    its prompt in the server's prefix cache (on by default in vLLM): on vLLM (CPU) serving
    SmolLM2, a level run on the prompts of the level before it showed 45% less TTFT and 24%
    more tokens/s than the same level on new prompts.

    Raises BenchError when the warm-up fails: a wrong model name or URL shows here, once,
    rather than as every request of every level failing.
    """
    warm = await send_request(client, config, prompts[0])
    if not warm.ok:
        raise BenchError(f"warm-up request failed: {warm.error}")
    runs: dict[int, list[RequestRecord]] = {}
    for number, level in enumerate(config.concurrencies):
        first = 1 + number * config.requests
        runs[level] = await run_level(client, config, prompts, level, on_progress, first)
        if on_level is not None:
            on_level(level, runs[level])
    return runs


def prompts_needed(config: BenchConfig) -> int:
    """Prompts for a run that sends none twice: the warm-up's, then every level's."""
    return 1 + config.requests * len(config.concurrencies)


# --- results files -------------------------------------------------------------------------------


def prompts_digest(config: BenchConfig, prompts: Sequence[Messages]) -> str:
    """sha256 of the prompts a run sends (warm-up and levels, in order): equal means same input."""
    used = [prompts[i % len(prompts)] for i in range(prompts_needed(config))]
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()


def new_run_id() -> str:
    return secrets.token_hex(4)


def level_results(
    engine: str,
    url: str,
    config: BenchConfig,
    levels: dict[int, list[RequestRecord]],
    timestamp: str,
    run_id: str | None = None,
    prompts_sha256: str | None = None,
) -> list[BenchResult]:
    """One result record per concurrency level of a run."""
    return [
        BenchResult(
            engine=engine,
            model=config.model,
            url=url,
            timestamp=timestamp,
            concurrency=level,
            requests=config.requests,
            max_tokens=config.max_tokens,
            stats=level_stats(records, config.slo),
            run_id=run_id,
            prompts_sha256=prompts_sha256,
            request_rate=config.request_rate,
            slo=config.slo,
        )
        for level, records in levels.items()
    ]


def append_results(path: Path, results: Iterable[BenchResult]) -> None:
    """Append records as JSON lines, flushed to disk before returning: a level written is kept."""
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(result_to_line(r) for r in results)
        handle.flush()
        os.fsync(handle.fileno())


def read_results(path: Path) -> list[BenchResult]:
    """Records of a results file; OSError for a missing file, ResultsFormatError for a bad line."""
    with path.open(encoding="utf-8") as handle:
        return results_from_lines(handle, str(path))
