"""Workloads for advise: OpenAI chat request logs, ShareGPT files and synthetic length specs."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmprov.core.advise.workload import (
    DEFAULT_MAX_TOKENS,
    TOKENS_PER_WORD,
    LengthRange,
    SyntheticSpec,
    WorkloadError,
    parse_synthetic,
    parse_workload,
    synthetic_requests,
    take,
)


def test_openai_request_log_lines_keep_messages_and_output_cap() -> None:
    lines = [
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7},
        {"body": {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
                  "max_completion_tokens": 9}},
        {"request": {"messages": [{"role": "user", "content": "x"}]}},
    ]  # fmt: skip
    requests = parse_workload("\n".join(json.dumps(x) for x in lines) + "\n\n", "log.jsonl")
    assert [r.max_tokens for r in requests] == [7, 9, DEFAULT_MAX_TOKENS]
    assert requests[1].messages == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q"},
    ]


def test_sharegpt_array_takes_the_prompt_up_to_the_first_human_turn_and_sizes_the_answer() -> None:
    items = [
        {"id": "a", "conversations": [
            {"from": "system", "value": "be brief"},
            {"from": "human", "value": "tell me"},
            {"from": "gpt", "value": "one two three four five six seven eight nine ten"},
            {"from": "human", "value": "more"},
        ]},
        # Opens with the model's turn and has no human turn after it: nothing to replay.
        {"id": "b", "conversations": [{"from": "gpt", "value": "hello"}]},
        {"id": "c", "conversations": [{"from": "human", "value": "unanswered"}]},
    ]  # fmt: skip
    requests = parse_workload(json.dumps(items), "sg.json")
    assert len(requests) == 2
    assert requests[0].messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "tell me"},
    ]
    assert requests[0].max_tokens == round(10 * TOKENS_PER_WORD)
    assert requests[1].max_tokens == DEFAULT_MAX_TOKENS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"messages": []}', 'sg.jsonl:1: "messages" must be a non-empty list'),
        ("not json", "sg.jsonl:1: not JSON"),
        ('{"prompt": "x"}', 'sg.jsonl:1: expected an OpenAI chat request ("messages")'),
        ('\n{"messages": [{"role": "user"}]}', "sg.jsonl:2: messages[0] needs"),
        ('{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', "max_tokens must"),
        ('{"messages": [{"role": "user", "content": "x"}], "max_tokens": true}', "max_tokens"),
        ('{"conversations": [{"from": "bot", "value": "x"}]}', "unknown \"from\" 'bot'"),
        ("[1]", "sg.jsonl: item 0: expected a JSON object"),
        ("\n\n", "sg.jsonl: no requests"),
    ],
)
def test_bad_workload_lines_are_named_by_file_and_line(text: str, message: str) -> None:
    with pytest.raises(WorkloadError, match=re.escape(message)):
        parse_workload(text, "sg.jsonl")


def test_synthetic_spec_parses_ranges_fixed_lengths_and_defaults() -> None:
    assert parse_synthetic("synthetic:in=128..512,out=64,n=10,seed=3") == SyntheticSpec(
        LengthRange(128, 512), LengthRange(64, 64), 10, 3
    )
    assert parse_synthetic("synthetic:out=1..2,in=5") == SyntheticSpec(
        LengthRange(5, 5), LengthRange(1, 2), 64, 0
    )
    assert parse_synthetic("requests.jsonl") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("synthetic:in=10", "out=LOW..HIGH is required"),
        ("synthetic:in=10,out=5,x=1", "got 'x=1'"),
        ("synthetic:in=10,out=5,in=3", "in= given twice"),
        ("synthetic:in=10..5,out=5", "in: length range"),
        ("synthetic:in=0,out=5", "in: length range"),
        ("synthetic:in=a,out=5", "in must be N or LOW..HIGH"),
        ("synthetic:in=1,out=5,n=0", "n must be at least 1"),
        ("synthetic:in=1,out=5,n=-2", "n must be a whole number"),
    ],
)
def test_bad_synthetic_specs_say_which_field(spec: str, message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        parse_synthetic(spec)


@given(
    low_in=st.integers(1, 400),
    span_in=st.integers(0, 400),
    low_out=st.integers(1, 300),
    span_out=st.integers(0, 300),
    count=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_synthetic_requests_stay_within_their_length_ranges(
    low_in: int, span_in: int, low_out: int, span_out: int, count: int, seed: int
) -> None:
    spec = SyntheticSpec(
        LengthRange(low_in, low_in + span_in), LengthRange(low_out, low_out + span_out), count, seed
    )
    requests = synthetic_requests(spec)
    assert len(requests) == count
    assert requests == synthetic_requests(spec), "the same seed gives the same workload"
    for index, request in enumerate(requests):
        assert low_out <= request.max_tokens <= low_out + span_out
        words = len(request.messages[0]["content"].split()) - 2  # "Request N."
        assert (low_in / TOKENS_PER_WORD) - 1 <= words <= (low_in + span_in) / TOKENS_PER_WORD + 1
        assert request.messages[0]["content"].startswith(f"Request {index}. ")


@given(total=st.integers(1, 20), count=st.integers(0, 60), first=st.integers(0, 100))
def test_take_wraps_around_a_short_workload(total: int, count: int, first: int) -> None:
    workload = synthetic_requests(SyntheticSpec(LengthRange(4, 4), LengthRange(1, 9), total))
    taken = take(workload, count, first)
    assert len(taken) == count
    assert all(t is workload[(first + i) % total] for i, t in enumerate(taken))
