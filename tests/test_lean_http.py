"""The lean HTTP/1.1 transport against real loopback servers: framing, keep-alive and failures."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest
from standins import sse_server

from llmprov.checks.bench import BenchConfig, open_async_client, run_level, send_request
from llmprov.checks.lean_http import LeanTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    """A loopback server running `handler` per connection; the list counts connections."""
    connections: list[int] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(counted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", connections


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def replies(*answers: bytes, then_close: bool = False) -> Handler:
    """Answers each request on a connection with the next of `answers`, raw."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
        if not then_close:
            await reader.read()

    return handler


async def get(url: str, client: httpx.AsyncClient | None = None) -> tuple[int, bytes]:
    own = client or httpx.AsyncClient(transport=LeanTransport(), timeout=5)
    try:
        response = await own.get(url)
        return response.status_code, response.content
    finally:
        if client is None:
            await own.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.0 200 OK\r\n\r\nhello",
    ],
    ids=["content-length", "chunked", "after-100", "until-close"],
)
def test_each_body_framing_reads_the_whole_body(answer: bytes) -> None:
    async def go() -> tuple[int, bytes]:
        server, url, _ = await serve(replies(answer, then_close=True))
        async with server:
            return await get(url)

    assert asyncio.run(go()) == (200, b"hello")


def test_a_connection_is_kept_alive_between_requests() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    async def go() -> list[int]:
        server, url, connections = await serve(replies(answer, answer, answer))
        async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
            for _ in range(3):
                assert await get(url, client) == (200, b"ok")
        return connections

    assert asyncio.run(go()) == [1]


def test_connection_close_is_honoured() -> None:
    answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"

    async def go() -> list[int]:
        server, url, connections = await serve(replies(answer, then_close=True))
        async with server, httpx.AsyncClient(transport=LeanTransport()) as client:
            for _ in range(2):
                assert await get(url, client) == (200, b"ok")
        return connections

    assert asyncio.run(go()) == [1, 1]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "without sending a response"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhalf", "complete message body"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", "complete message"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nq\r\n", "bad chunk size"),
        (b"SPDY 200\r\n\r\n", "bad status line"),
    ],
)
def test_broken_answers_are_protocol_errors(answer: bytes, message: str) -> None:
    async def go() -> None:
        server, url, _ = await serve(replies(answer, then_close=True))
        async with server:
            await get(url)

    with pytest.raises(httpx.RemoteProtocolError, match=message):
        asyncio.run(go())


def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def go() -> None:
        server, url, _ = await serve(silent)
        async with server, httpx.AsyncClient(transport=LeanTransport(), timeout=0.2) as client:
            await client.get(url)

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(go())


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        asyncio.run(get(f"http://127.0.0.1:{port}/"))


def test_a_kept_alive_connection_the_server_drops_is_retried_by_the_bench() -> None:
    # The server answers one request per connection and drops the connection when the next
    # arrives, as llama-server's HTTP library does: that request got no answer, so the bench
    # sends it once more, on a new connection.
    body = b"data: " + json.dumps({"choices": [{"delta": {"content": "hi"}}]}).encode()
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s\n\n" % (len(body) + 2, body)
    config = BenchConfig(model="m", max_tokens=1)

    async def one_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        await read_request(reader)

    async def go() -> tuple[list[bool], int]:
        server, url, connections = await serve(one_then_drop)
        async with server, open_async_client(url, 1) as client:
            oks = [(await send_request(client, config, [])).ok for _ in range(3)]
            return oks, len(connections)

    assert asyncio.run(go()) == ([True, True, True], 3)


def answer_once_then_drop(answer: bytes) -> Handler:
    """Answers a connection's first request (after a moment, so concurrent requests open
    connections of their own), then reads the next and closes without a byte: a kept-alive
    connection closed by the server just as the client reuses it, every time."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.05)
        writer.write(answer)
        await writer.drain()
        await read_request(reader)

    return handler


def test_every_idle_connection_the_server_closed_is_replaced_by_a_new_one() -> None:
    """Three idle connections, each closed by the server as it is reused: every request still
    gets its answer, each retried on a new connection (never on the next stale one)."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    async def go() -> tuple[list[tuple[int, bytes]], int]:
        server, url, connections = await serve(answer_once_then_drop(answer))
        async with server, httpx.AsyncClient(transport=LeanTransport(), timeout=5) as client:
            first = await asyncio.gather(*(get(url, client) for _ in range(3)))
            assert len(connections) == 3
            after = [await get(url, client) for _ in range(3)]
            return [*first, *after], len(connections)

    assert asyncio.run(go()) == ([(200, b"ok")] * 6, 6)


def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_loop() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def go() -> int:
        server, url, connections = await serve(drop)
        async with server:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await get(url)
        return len(connections)

    assert asyncio.run(go()) == 1


def test_a_bench_level_after_idle_connections_were_closed_loses_no_request() -> None:
    """What a CI run met behind an SSH tunnel: several kept-alive connections closed by
    llama-server at once; one retry that took the next stale connection failed the request."""
    body = b"data: " + json.dumps({"choices": [{"delta": {"content": "hi"}}]}).encode()
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s\n\n" % (len(body) + 2, body)
    config = BenchConfig(model="m", max_tokens=1)

    async def go() -> tuple[list[bool], int]:
        server, url, connections = await serve(answer_once_then_drop(answer))
        async with server, open_async_client(url, 3) as client:
            first = await asyncio.gather(*(send_request(client, config, []) for _ in range(3)))
            later = [await send_request(client, config, []) for _ in range(2)]
            return [r.ok for r in [*first, *later]], len(connections)

    assert asyncio.run(go()) == ([True] * 5, 5)


def test_a_level_against_the_fixed_rate_stand_in_counts_every_token() -> None:
    config = BenchConfig(model="smollm2", requests=24, max_tokens=12)

    async def go() -> tuple[list[int], list[float], int]:
        server = await asyncio.start_server(
            lambda r, w: sse_server._serve(r, w, 0.005, 0.01), "127.0.0.1", 0
        )
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server, open_async_client(url, 8) as client:
            records = await run_level(client, config, [[{"role": "user", "content": "x"}]], 8)
        assert all(r.ok for r in records), [r.error for r in records]
        return [r.output_tokens for r in records], [r.ttft_s or 0 for r in records], len(records)

    tokens, ttfts, count = asyncio.run(go())
    assert count == 24
    assert tokens == [12] * 24
    # The stand-in waits 10 ms before the first token.
    assert min(ttfts) >= 0.01
