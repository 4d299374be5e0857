"""Stands in for an OpenAI-compatible LLM server (vLLM, llama-server, Ollama's /v1 and /api) in tests.

It answers `/health`, `/v1/models`, `/v1/chat/completions` (plain JSON or streamed SSE chunks, with a
usage chunk when `stream_options.include_usage` asks for one) and Ollama's `/api/version` and
`/api/tags`. It can be slow to get ready, refuse requests without its API key, fail every Nth
chat request, answer with empty text, and pace streamed chunks with configured delays.

It is an httpx.MockTransport handler: `transport()` for a sync httpx.Client, `async_transport()`
for an httpx.AsyncClient. The async handler hands back a lazily streamed body, so delays between
chunks reach the client as they would over a socket; httpx.ASGITransport (0.28) would collect the
whole body before the client saw the first byte, and time to first token could not be tested.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class _Reply:
    status: int
    payload: Any = None
    # Streamed replies: (delay before the chunk in seconds, chunk bytes).
    chunks: list[tuple[float, bytes]] | None = None


@dataclass
class OpenAIStandIn:
    models: tuple[str, ...] = ("smollm2",)
    # Words of the answer; a streamed answer sends `words_per_chunk` words per chunk.
    reply: str = "Blue is a colour of the sky and the sea"
    words_per_chunk: int = 1
    # When set, /v1/* requests without `Authorization: Bearer <api_key>` get 401.
    api_key: str | None = None
    # Delay before the first content chunk, and between content chunks.
    ttft_s: float = 0.0
    chunk_delay_s: float = 0.0
    # When False, `stream_options.include_usage` is ignored (no usage chunk), as older servers do.
    sends_usage: bool = True
    # Every Nth chat request answers 500; 0 never.
    fail_every: int = 0
    # The first N health requests answer 503 (model still loading).
    not_ready_for: int = 0
    has_health_endpoint: bool = True
    ollama_version: str = "0.12.3"

    # Every request, and the parsed bodies of chat requests that passed the key check.
    requests: list[httpx.Request] = field(default_factory=list)
    chat_bodies: list[dict[str, Any]] = field(default_factory=list)
    health_requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle_async)

    # --- routing -----------------------------------------------------------------------------

    def _route(self, request: httpx.Request) -> _Reply:
        self.requests.append(request)
        path = request.url.path
        if path.startswith("/v1/") and not self._authorized(request):
            return _Reply(401, {"error": {"message": "Unauthorized", "code": 401}})
        if path == "/health" and self.has_health_endpoint:
            self.health_requests += 1
            if self.health_requests <= self.not_ready_for:
                return _Reply(503, {"error": "Loading model"})
            return _Reply(200, {"status": "ok"})
        if path == "/api/version":
            self.health_requests += 1
            return _Reply(200, {"version": self.ollama_version})
        if path == "/v1/models":
            return _Reply(200, {"object": "list", "data": [{"id": m} for m in self.models]})
        if path == "/api/tags":
            return _Reply(200, {"models": [{"name": m, "model": m} for m in self.models]})
        if path == "/v1/chat/completions" and request.method == "POST":
            return self._chat(request)
        return _Reply(404, {"detail": "Not Found"})

    def _authorized(self, request: httpx.Request) -> bool:
        return self.api_key is None or (
            request.headers.get("authorization") == f"Bearer {self.api_key}"
        )

    def _chat(self, request: httpx.Request) -> _Reply:
        body = json.loads(request.content)
        self.chat_bodies.append(body)
        if self.fail_every and len(self.chat_bodies) % self.fail_every == 0:
            return _Reply(500, {"error": {"message": "Internal error", "code": 500}})
        # Ollama takes a name without a tag as name:latest.
        if not {body.get("model"), f"{body.get('model')}:latest"} & set(self.models):
            return _Reply(
                404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
            )
        # One word is one token.
        words = self.reply.split()
        max_tokens = int(body.get("max_tokens") or 16)
        if body.get("ignore_eos") and words:
            # Generate past the answer's end, as an engine does when told to ignore EOS.
            words = [words[i % len(words)] for i in range(max_tokens)]
        words = words[:max_tokens]
        chunks = [
            " ".join(words[i : i + self.words_per_chunk])
            for i in range(0, len(words), self.words_per_chunk)
        ]
        tokens = len(words)
        usage = {"prompt_tokens": 20, "completion_tokens": tokens, "total_tokens": 20 + tokens}
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(chunks)}
            return _Reply(200, {"choices": [{"index": 0, "message": message}], "usage": usage})
        events: list[tuple[float, dict[str, Any]]] = [
            (0.0, {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        ]
        for i, text in enumerate(chunks):
            delay = self.ttft_s if i == 0 else self.chunk_delay_s
            events.append((delay, {"choices": [{"index": 0, "delta": {"content": text}}]}))
        if self.sends_usage and (body.get("stream_options") or {}).get("include_usage"):
            events.append((0.0, {"choices": [], "usage": usage}))
        encoded = [(d, f"data: {json.dumps(e)}\n\n".encode()) for d, e in events]
        return _Reply(200, chunks=[*encoded, (0.0, b"data: [DONE]\n\n")])

    # --- transports --------------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        reply = self._route(request)
        if reply.chunks is None:
            return httpx.Response(reply.status, json=reply.payload)
        body = b"".join(chunk for _, chunk in reply.chunks)
        return httpx.Response(
            reply.status, headers={"content-type": "text/event-stream"}, content=body
        )

    async def _handle_async(self, request: httpx.Request) -> httpx.Response:
        reply = self._route(request)
        if reply.chunks is None:
            return httpx.Response(reply.status, json=reply.payload)
        return httpx.Response(
            reply.status,
            headers={"content-type": "text/event-stream"},
            content=self._paced(reply.chunks),
        )

    async def _paced(self, chunks: list[tuple[float, bytes]]) -> AsyncIterator[bytes]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        for index, (delay, chunk) in enumerate(chunks):
            if delay:
                await asyncio.sleep(delay)
            # A client stops reading at [DONE] and leaves the generator suspended at its last
            # yield, so a `finally` would run late: the request ends with its last chunk.
            if index == len(chunks) - 1:
                self.in_flight -= 1
            yield chunk
