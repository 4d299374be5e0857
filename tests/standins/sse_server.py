"""A fixed-rate SSE chat server over real sockets, for measuring a bench client's own CPU.

It answers `POST /v1/chat/completions` with a streamed answer shaped as vLLM 0.32 shapes it
(HTTP/1.1 chunked transfer encoding, one SSE event per chunk, a role chunk, `max_tokens` content
chunks, a usage chunk when asked, `data: [DONE]`), each content chunk `--interval-ms` after the
one before, whatever the concurrency: the server's pace is fixed, so what a client spends per
token is its own. `GET /health` answers 200. Not for tests' correctness checks (openai_app.py is).

    python tests/standins/sse_server.py --port P [--interval-ms 20] [--ttft-ms 50]

It prints `ready <port>` once listening and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time


def _event(payload: dict[str, object]) -> bytes:
    data = f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk(n: int, token: str | None, usage: dict[str, int] | None = None) -> dict[str, object]:
    # Field order and nulls as vLLM 0.32's ChatCompletionStreamResponse serialises them.
    choices: list[dict[str, object]] = []
    if token is not None:
        delta = {"role": "assistant", "content": ""} if n == 0 else {"content": token}
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]
    chunk: dict[str, object] = {
        "id": "chatcmpl-0123456789abcdef0123456789abcdef",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "smollm2",
        "choices": choices,
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, object]] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = json.loads(await reader.readexactly(length)) if length else {}
    return path, body


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, interval: float, ttft: float
) -> None:
    try:
        while True:
            try:
                request = await _read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if request is None:
                return
            path, body = request
            if path != "/v1/chat/completions":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
                continue
            # vLLM's own client asks with max_completion_tokens, llmprov's with max_tokens.
            asked = body.get("max_completion_tokens") or body.get("max_tokens") or 16
            tokens = int(asked)  # type: ignore[call-overload]
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            await writer.drain()
            next_at = time.monotonic() + ttft
            for n in range(1, tokens + 1):
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if n == 1:
                    # vLLM sends the role chunk with the first token, once prefill is done.
                    writer.write(_event(_chunk(0, "")))
                writer.write(_event(_chunk(n, f" w{n}")))
                await writer.drain()
                next_at += interval
            stream_options = body.get("stream_options") or {}
            if isinstance(stream_options, dict) and stream_options.get("include_usage"):
                usage = {
                    "prompt_tokens": 20,
                    "total_tokens": 20 + tokens,
                    "completion_tokens": tokens,
                }
                writer.write(_event(_chunk(0, None, usage)))
            writer.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
            await writer.drain()
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    args = parser.parse_args()
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, args.interval_ms / 1000, args.ttft_ms / 1000),
        "127.0.0.1",
        args.port,
    )
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
