"""A client's workload as requests to replay: OpenAI chat logs, ShareGPT files, or synthetic lengths."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Messages = list[dict[str, Any]]

# Output length when a request names none and no answer shows how long it was.
DEFAULT_MAX_TOKENS = 128
# Rough tokens per English word for the Llama-family tokenizers; sizes synthetic prompts and
# ShareGPT answers, where only text is known. Replay takes the output cap from it, so it errs long.
TOKENS_PER_WORD = 1.3

_FILLER = (
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
)


class WorkloadError(ValueError):
    """A workload that cannot be replayed; the message names `file:line` or the bad field."""


@dataclass(frozen=True, slots=True)
class WorkloadRequest:
    messages: Messages
    max_tokens: int


@dataclass(frozen=True, slots=True)
class LengthRange:
    """Token counts drawn uniformly from low..high, inclusive."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not 1 <= self.low <= self.high:
            raise WorkloadError(
                f"length range must be 1 <= low <= high, got {self.low}..{self.high}"
            )


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    input_tokens: LengthRange
    output_tokens: LengthRange
    count: int
    seed: int = 0


_SPEC = re.compile(r"^synthetic:(?P<body>.*)$")
_RANGE = re.compile(r"^(\d+)(?:\.\.(\d+))?$")


def parse_synthetic(text: str) -> SyntheticSpec | None:
    """`synthetic:in=128..512,out=64..256,n=200,seed=1` → a spec; None when `text` is no such spec.

    `in` and `out` are required; a single number is a fixed length. `n` defaults to 64.
    """
    match = _SPEC.match(text)
    if match is None:
        return None
    fields: dict[str, str] = {}
    for part in filter(None, match["body"].split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in ("in", "out", "n", "seed"):
            raise WorkloadError(
                f"synthetic workload: expected in=, out=, n= or seed=, got {part!r}"
            )
        if key in fields:
            raise WorkloadError(f"synthetic workload: {key}= given twice")
        fields[key] = value
    for key in ("in", "out"):
        if key not in fields:
            raise WorkloadError(f"synthetic workload: {key}=LOW..HIGH is required")
    count = _whole(fields.get("n", "64"), "n")
    if count < 1:
        raise WorkloadError(f"synthetic workload: n must be at least 1, got {count}")
    return SyntheticSpec(
        input_tokens=_range(fields["in"], "in"),
        output_tokens=_range(fields["out"], "out"),
        count=count,
        seed=_whole(fields.get("seed", "0"), "seed"),
    )


def _whole(value: str, key: str) -> int:
    if not value.isdigit():
        raise WorkloadError(f"synthetic workload: {key} must be a whole number, got {value!r}")
    return int(value)


def _range(value: str, key: str) -> LengthRange:
    match = _RANGE.match(value)
    if match is None:
        raise WorkloadError(f"synthetic workload: {key} must be N or LOW..HIGH, got {value!r}")
    low = int(match[1])
    high = int(match[2]) if match[2] else low
    try:
        return LengthRange(low, high)
    except WorkloadError as exc:
        raise WorkloadError(f"synthetic workload: {key}: {exc}") from None


def synthetic_requests(spec: SyntheticSpec) -> list[WorkloadRequest]:
    """Prompts of about the drawn input length (filler words), each with its drawn output cap."""
    rng = random.Random(spec.seed)
    requests = []
    for index in range(spec.count):
        words = max(
            1, round(rng.randint(spec.input_tokens.low, spec.input_tokens.high) / TOKENS_PER_WORD)
        )
        text = f"Request {index}. " + " ".join(rng.choices(_FILLER, k=words))
        requests.append(
            WorkloadRequest(
                [{"role": "user", "content": text}],
                rng.randint(spec.output_tokens.low, spec.output_tokens.high),
            )
        )
    return requests


def parse_workload(text: str, source: str) -> list[WorkloadRequest]:
    """Requests from a file's text: a JSON array (ShareGPT export) or JSON lines, each line an
    OpenAI chat request (`messages`, optional `max_tokens`/`max_completion_tokens`, or such a
    request under `body` or `request` as request logs keep it) or a ShareGPT `conversations` item.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{source}: not JSON: {exc.msg} (line {exc.lineno})") from None
        found = [_request(item, f"{source}: item {n}") for n, item in enumerate(items)]
    else:
        found = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{source}:{number}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WorkloadError(f"{where}: not JSON: {exc.msg}") from None
            found.append(_request(item, where))
    requests = [r for r in found if r is not None]
    if not requests:
        raise WorkloadError(f"{source}: no requests in the workload")
    return requests


def _request(item: Any, where: str) -> WorkloadRequest | None:
    """One request, or None for a ShareGPT conversation that opens with no human turn."""
    if not isinstance(item, dict):
        raise WorkloadError(f"{where}: expected a JSON object")
    for wrapper in ("body", "request"):
        if isinstance(item.get(wrapper), dict) and "messages" in item[wrapper]:
            item = item[wrapper]
            break
    if "messages" in item:
        return _openai(item, where)
    if "conversations" in item:
        return _sharegpt(item["conversations"], where)
    raise WorkloadError(
        f'{where}: expected an OpenAI chat request ("messages") or a ShareGPT item ("conversations")'
    )


def _openai(item: dict[str, Any], where: str) -> WorkloadRequest:
    messages = item["messages"]
    if not isinstance(messages, list) or not messages:
        raise WorkloadError(f'{where}: "messages" must be a non-empty list')
    for index, message in enumerate(messages):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str | list)
        ):
            raise WorkloadError(f'{where}: messages[{index}] needs a string "role" and a "content"')
    cap = item.get("max_completion_tokens", item.get("max_tokens", DEFAULT_MAX_TOKENS))
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise WorkloadError(f"{where}: max_tokens must be a whole number >= 1, got {cap!r}")
    return WorkloadRequest([{"role": m["role"], "content": m["content"]} for m in messages], cap)


_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system"}  # fmt: skip


def _sharegpt(turns: Any, where: str) -> WorkloadRequest | None:
    """The conversation up to its first human turn is the prompt; the answer after it sizes the output."""
    if not isinstance(turns, list):
        raise WorkloadError(f'{where}: "conversations" must be a list')
    messages: Messages = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise WorkloadError(f'{where}: conversations[{index}] needs a string "value"')
        role = _SHAREGPT_ROLES.get(str(turn.get("from")))
        if role is None:
            raise WorkloadError(
                f'{where}: conversations[{index}]: unknown "from" {turn.get("from")!r} '
                f"(expected one of {sorted(_SHAREGPT_ROLES)})"
            )
        if messages and messages[-1]["role"] == "user":
            answer = turn["value"] if role == "assistant" else ""
            return WorkloadRequest(messages, _answer_tokens(answer))
        messages.append({"role": role, "content": turn["value"]})
    if messages and messages[-1]["role"] == "user":
        return WorkloadRequest(messages, DEFAULT_MAX_TOKENS)
    return None


def _answer_tokens(answer: str) -> int:
    words = len(answer.split())
    return max(1, round(words * TOKENS_PER_WORD)) if words else DEFAULT_MAX_TOKENS


def take(requests: Sequence[WorkloadRequest], count: int, first: int = 0) -> list[WorkloadRequest]:
    """`count` requests from index `first` on, wrapping around a workload shorter than the run."""
    if not requests:
        raise WorkloadError("no requests in the workload")
    return [requests[(first + i) % len(requests)] for i in range(count)]


def output_lengths(requests: Iterable[WorkloadRequest]) -> list[int]:
    return [r.max_tokens for r in requests]
