"""The bench client's stream parsing: SSE events and chunked framing survive any read boundaries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from itertools import pairwise

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmprov.checks.bench import BenchConfig, parse_json, send_request
from llmprov.checks.lean_http import ChunkedDecoder
from llmprov.core.sse import SseDecoder

# Text with multi-byte characters, quotes, backslashes and line breaks inside JSON strings.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",))
    | st.sampled_from(["\n", "\r", '"', "\\", "é", "🦙"]),
    max_size=12,
)
EOL = st.sampled_from([b"\n", b"\r\n", b"\r"])


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (taken modulo its length, deduplicated, in order)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)]


@st.composite
def event_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """An SSE byte stream and the data of its events, with the parts a parser must skip."""
    stream = bytearray()
    expected: list[bytes] = []

    def end_line(line: bytes) -> None:
        eol = draw(EOL)
        # A CR then an LF is one CRLF line end: a lone CR is never followed by LF here.
        if (stream + line).endswith(b"\r") and eol.startswith(b"\n"):
            eol = b"\r"
        stream.extend(line + eol)

    for _ in range(draw(st.integers(0, 8))):
        lines = draw(
            st.lists(TEXT.map(lambda t: json.dumps(t, ensure_ascii=False).encode()), max_size=3)
        )
        for line in lines:
            if draw(st.booleans()):
                end_line(b": a comment")
            if draw(st.booleans()):
                end_line(b"event: message")
                end_line(b"id: 7")
            end_line(b"data:" + (b" " if draw(st.booleans()) else b"") + line)
        end_line(b"")
        if lines:
            expected.append(b"\n".join(lines))
    return bytes(stream), expected


def decode_all(parts: list[bytes]) -> list[bytes]:
    decoder = SseDecoder()
    events = [event for part in parts for event in decoder.feed(part)]
    return events + decoder.close()


@given(event_streams(), st.lists(st.integers(0, 10_000), max_size=30))
def test_sse_events_come_out_whole_whatever_the_read_boundaries(
    stream_and_events: tuple[bytes, list[bytes]], cuts: list[int]
) -> None:
    stream, expected = stream_and_events
    assert decode_all(split_at(stream, cuts)) == expected


@given(event_streams())
def test_sse_decoding_byte_by_byte_equals_decoding_at_once(
    stream_and_events: tuple[bytes, list[bytes]],
) -> None:
    stream, _ = stream_and_events
    one_by_one = [stream[i : i + 1] for i in range(len(stream))]
    assert decode_all(one_by_one) == decode_all([stream])


def test_sse_crlf_split_across_reads_is_one_line_end() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\r') == []
    # The LF completes the CRLF; the next CRLF is the blank line that ends the event.
    assert decoder.feed(b"\n\r\n") == [b'{"a":1}']


def test_sse_field_rules() -> None:
    stream = b"data\n\ndata:x\ndata:  y\n\n:comment\nevent: e\n\ndatum: z\n\n"
    # "data" alone is an empty data line; one space after the colon goes, a second stays; an
    # event with no data line and a field that only starts with "data" give nothing.
    assert decode_all([stream]) == [b"", b"x\n y"]


def test_sse_event_the_stream_ends_in_is_handed_over_at_close() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b'data: {"a":1}\n\ndata: {"b":2}') == [b'{"a":1}']
    assert decoder.close() == [b'{"b":2}']
    assert decoder.close() == []


# ---------------------------------------------------------------- chunked transfer coding


def chunked(body_parts: list[bytes], extension: bool) -> bytes:
    ext = b";name=value" if extension else b""
    framed = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in body_parts if p)
    return framed + b"0\r\nX-Trailer: t\r\n\r\n"


@given(
    st.lists(st.binary(max_size=300), max_size=10),
    st.booleans(),
    st.lists(st.integers(0, 10_000), max_size=30),
)
def test_chunked_body_comes_out_whole_whatever_the_read_boundaries(
    parts: list[bytes], extension: bool, cuts: list[int]
) -> None:
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(piece) for piece in split_at(chunked(parts, extension), cuts))
    assert out == b"".join(parts)
    assert decoder.done and not decoder.leftover


@pytest.mark.parametrize(
    "framed", [b"0x5\r\nhello\r\n", b"+5\r\nhello\r\n", b"z\r\n", b"5\r\nhelloXX"]
)
def test_malformed_chunked_framing_is_a_protocol_error(framed: bytes) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        ChunkedDecoder().feed(framed)


# ---------------------------------------------------------------- no token lost end to end


class _SplitStream(httpx.AsyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


@settings(max_examples=60, deadline=None)
@given(
    st.lists(TEXT.filter(bool), min_size=1, max_size=20),
    st.booleans(),
    EOL,
    st.lists(st.integers(0, 10_000), max_size=40),
)
def test_every_content_chunk_is_counted_whatever_the_read_boundaries(
    words: list[str], usage: bool, eol: bytes, cuts: list[int]
) -> None:
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": w}}]} for w in words]
    if usage:
        events.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 99}})
    body = b"".join(
        b"data: " + json.dumps(e, ensure_ascii=False).encode() + eol + eol for e in events
    )
    body += b"data: [DONE]" + eol + eol
    parts = split_at(body, cuts)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_SplitStream(parts))

    async def go() -> tuple[int, int, int]:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(base_url="http://llm.test", transport=transport) as client:
            record = await send_request(client, BenchConfig(model="m"), [])
        assert record.ok, record.error
        return record.output_tokens, record.input_tokens, len(record.itl_s) + 1

    output, prompt, stamped = asyncio.run(go())
    assert stamped == len(words)
    assert (output, prompt) == ((99, 3) if usage else (len(words), 0))


# ---------------------------------------------------------------- JSON without json.loads' wrapper

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(JSON_VALUES, st.sampled_from(["", " ", "\n", "\t \r\n"]), st.booleans())
def test_parse_json_gives_what_json_loads_gives(value: object, space: str, ascii_: bool) -> None:
    data = (space + json.dumps(value, ensure_ascii=ascii_) + space).encode()
    assert parse_json(data) == json.loads(data)


@given(st.binary(max_size=40) | TEXT.map(str.encode))
def test_parse_json_refuses_exactly_what_json_loads_refuses(data: bytes) -> None:
    try:
        expected = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        with pytest.raises((UnicodeDecodeError, json.JSONDecodeError)):
            parse_json(data)
    else:
        assert parse_json(data) == expected


@pytest.mark.parametrize("data", [b"", b"  ", b'{"a":1} x', b'{"a":1}{}', b"[1,", b"nul", b"\xff"])
def test_parse_json_refuses_broken_or_trailing_text(data: bytes) -> None:
    with pytest.raises((UnicodeDecodeError, json.JSONDecodeError)):
        parse_json(data)
