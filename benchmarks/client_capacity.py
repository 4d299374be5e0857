"""How many streamed chat requests per second llmprov's bench client can drive, server cost aside.

A loopback HTTP/1.1 server (stdlib asyncio streams, in its own process, 127.0.0.1 only) answers
every chat completion instantly with a chunked SSE stream of `--max-tokens` content chunks, a usage
chunk and `[DONE]`. llmprov's own `run_level` and `open_async_client` then drive it at each
concurrency level. A real engine's figures are trustworthy only well below these. Client CPU
time per stream is the figure that least depends on what else the machine is running.

    .venv/bin/python benchmarks/client_capacity.py [--requests 2000] [--max-tokens 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from llmprov.checks.bench import BenchConfig, open_async_client, run_level, synthetic_prompts
from llmprov.core.bench_stats import level_stats

HOST = "127.0.0.1"


def _sse_body(tokens: int) -> bytes:
    """The whole chunked-encoded stream for one answer of `tokens` content chunks."""
    events: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    ]
    events += [{"choices": [{"index": 0, "delta": {"content": " tok"}}]}] * tokens
    events.append({"choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": tokens}})
    lines = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
    return b"".join(b"%x\r\n%s\r\n" % (len(line), line) for line in lines) + b"0\r\n\r\n"


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    bodies: dict[int, bytes] = {}
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = dict(
                (name.strip().lower(), value.strip())
                for name, _, value in (h.partition(":") for h in header_lines if h)
            )
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if request_line.startswith("POST /v1/chat/completions "):
                tokens = int(json.loads(body).get("max_tokens", 16))
                if tokens not in bodies:
                    bodies[tokens] = _sse_body(tokens)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n" + bodies[tokens]
                )
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(ready: Connection) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_handle, HOST, 0, backlog=1024)
        ready.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def _measure(url: str, concurrency: int, config: BenchConfig) -> str:
    prompts = synthetic_prompts(64, seed=0)
    async with open_async_client(url, concurrency, config.request_timeout_s) as client:
        # Warm the pool so connection set-up is not counted against the level.
        await run_level(client, replace(config, requests=concurrency), prompts, concurrency)
        cpu = time.process_time()
        records = await run_level(client, config, prompts, concurrency)
        cpu = time.process_time() - cpu
    stats = level_stats(records)
    ttft = f"{stats.ttft.mean_ms:7.1f}" if stats.ttft else "      -"
    return (
        f"{concurrency:>11}  {stats.succeeded:>6}  {stats.failed:>6}  {stats.duration_s:>7.2f}"
        f"  {stats.requests_per_s:>9.0f}  {stats.output_tokens_per_s:>8.0f}  {ttft}"
        f"  {cpu / max(len(records), 1) * 1000:>13.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--requests", type=int, default=2000, help="per level (default 2000)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per level")
    parser.add_argument("--quick", action="store_true", help="levels 1,8; 100 requests each")
    args = parser.parse_args()
    if args.quick:
        args.concurrency, args.requests, args.time_limit = "1,8", 100, 10.0

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    server = context.Process(target=_serve, args=(send,), daemon=True)
    server.start()
    try:
        url = f"http://{HOST}:{receive.recv()}"
        print(f"loopback server {url} (pid {server.pid}), client pid {os.getpid()}")
        print(f"{args.requests} requests per level, {args.max_tokens} content chunks each")
        print(
            "concurrency      ok  failed  seconds  streams/s  chunks/s  TTFT ms"
            "  client CPU ms/stream"
        )
        for level in (int(c) for c in args.concurrency.split(",")):
            config = BenchConfig(
                model="standin",
                requests=args.requests,
                max_tokens=args.max_tokens,
                level_time_limit_s=args.time_limit,
                request_timeout_s=30.0,
            )
            print(asyncio.run(_measure(url, level, config)), flush=True)
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
