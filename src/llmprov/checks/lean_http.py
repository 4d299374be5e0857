"""A lean HTTP/1.1 transport for httpx: a streamed response costs one protocol callback per read.

The benchmark client shares the CPU with the server it measures on small hosts, so what it
spends per streamed token shows up in the figures. With httpx's default transport (httpcore over
anyio and h11) a token cost about 390 Python calls (cProfile, concurrency 8) and 440-490 us of
CPU on this 2-core machine, more than twice what `vllm bench serve` (aiohttp) spends. This
transport reads with an asyncio.Protocol straight into a list and decodes chunked framing per
read, not per chunk; httpx.AsyncClient stays the seam, so tests still inject httpx.MockTransport. It keeps idle connections per origin (no limit: the caller
bounds concurrency), speaks HTTP/1.1 only, and maps failures onto httpx's exceptions.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx

# A response head longer than this is refused rather than buffered without end.
MAX_HEAD = 64 * 1024
HEX_DIGITS = b"0123456789abcdefABCDEF"


class _NoAnswer(Exception):
    """The connection ended (closed or reset) before a byte of the response; `error` is what a
    caller is told when a retry is not possible."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: reads land in a list, and a reader waits for more.

    The read timeout is one timer per connection, re-armed only when it fires while reads have
    come in since it was armed, rather than a timer set and cancelled on every read: a read then
    fails after between one and two timeouts without a byte.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received: list[bytes] = []
        self.eof = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reads = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received.append(data)
        self._reads += 1
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        self._disarm()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _arm(self, timeout_s: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(
            timeout_s, self._expire, timeout_s, self._reads
        )

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, timeout_s: float, reads: int) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._reads == reads:
            waiter.set_exception(httpx.ReadTimeout("timed out waiting for the server"))
        else:
            self._arm(timeout_s)

    async def read(self, timeout_s: float | None) -> bytes:
        """What has arrived, waiting for it when nothing has; b"" at the end of the stream."""
        if not self.received and not self.eof:
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            if timeout_s is not None and self._timer is None:
                self._arm(timeout_s)
            try:
                await waiter
            finally:
                self._waiter = None
        received = self.received
        if not received:
            if isinstance(self.error, OSError):
                raise httpx.ReadError(f"{type(self.error).__name__}: {self.error}")
            return b""
        self.received = []
        return received[0] if len(received) == 1 else b"".join(received)

    def unread(self, data: bytes) -> None:
        """Put bytes read too early back in front of what has arrived since."""
        if data:
            self.received.insert(0, data)

    def idle(self) -> None:
        """The connection waits in the pool: no read is under way, so no timer is needed."""
        self._disarm()

    @property
    def reusable(self) -> bool:
        return not self.eof and not self.received and self.transport is not None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.eof = True
        self._disarm()


class ChunkedDecoder:
    """HTTP/1.1 chunked transfer coding, decoded incrementally; `done` after the last chunk.

    A read usually holds whole chunks (a server writes one SSE event per chunk), so the common
    case slices the read where it lies and copies only what a read leaves unfinished.
    """

    __slots__ = ("_left", "_state", "_tail", "done")

    def __init__(self) -> None:
        self._tail = b""
        self._left = 0
        # _SIZE: a chunk-size line is next; _DATA: `_left` bytes of chunk data; _CRLF: the CRLF
        # after the data; _TRAILER: trailer lines up to a blank one.
        self._state = _SIZE
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes that `data` completes; RemoteProtocolError on malformed framing."""
        if self._tail:
            data = self._tail + data
            self._tail = b""
        out: list[bytes] = []
        pos, end_of_data = 0, len(data)
        while not self.done:
            state = self._state
            if state is _DATA:
                take = min(self._left, end_of_data - pos)
                if not take:
                    break
                out.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if self._left:
                    break
                self._state = _CRLF
            elif state is _CRLF:
                if end_of_data - pos < 2:
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise httpx.RemoteProtocolError("chunk data not followed by CRLF")
                pos += 2
                self._state = _SIZE
            else:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    if end_of_data - pos > MAX_HEAD:
                        raise httpx.RemoteProtocolError("chunk size line too long")
                    break
                line = data[pos:end]
                pos = end + 2
                if state is _TRAILER:
                    self.done = not line
                    continue
                field = line.split(b";", 1)[0].strip(b" \t")
                # Hex digits only: int() would also take "0x", "+" and "_".
                if not field or field.strip(HEX_DIGITS):
                    raise httpx.RemoteProtocolError(f"bad chunk size {field!r}")
                self._left = int(field, 16)
                self._state = _DATA if self._left else _TRAILER
        # After the last chunk, anything left is not this body's: `leftover` tells.
        self._tail = data[pos:]
        return out[0] if len(out) == 1 else b"".join(out)

    @property
    def leftover(self) -> bool:
        """Bytes after the last chunk: the connection is out of step and must not be reused."""
        return self.done and bool(self._tail)


_SIZE, _DATA, _CRLF, _TRAILER = "size", "data", "crlf", "trailer"


class _Body(httpx.AsyncByteStream):
    """A response body read straight off its connection; the connection goes back to the pool
    when the body was read to its end, and is closed otherwise."""

    def __init__(
        self,
        pool: LeanTransport,
        key: tuple[str, str, int],
        conn: _Connection,
        first: bytes,
        length: int | None,
        chunked: bool,
        keep_alive: bool,
        timeout_s: float | None,
    ) -> None:
        self._pool, self._key, self._conn = pool, key, conn
        self._first = first
        self._length = length
        self._chunked = ChunkedDecoder() if chunked else None
        self._keep_alive = keep_alive
        self._timeout_s = timeout_s
        self._complete = False
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        data, conn, chunked = self._first, self._conn, self._chunked
        self._first = b""
        left = self._length
        while True:
            if data:
                if chunked is not None:
                    out = chunked.feed(data)
                    if out:
                        yield out
                    if chunked.done:
                        self._keep_alive = self._keep_alive and not chunked.leftover
                        break
                elif left is not None:
                    if len(data) > left:
                        self._keep_alive = False
                        data = data[:left]
                    left -= len(data)
                    yield data
                    if not left:
                        break
                else:
                    yield data
            elif left == 0:
                break
            data = await conn.read(self._timeout_s)
            if not data:
                if chunked is None and left is None:
                    # Framed by the connection's end (no length, not chunked): complete now.
                    self._keep_alive = False
                    break
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
        self._complete = True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._complete and self._keep_alive and self._conn.reusable:
            self._pool.release(self._key, self._conn)
        else:
            self._conn.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio protocols, with keep-alive; see the module docstring."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._ssl = ssl_context
        self._open: set[_Connection] = set()

    def release(self, key: tuple[str, str, int], conn: _Connection) -> None:
        conn.idle()
        self._idle.setdefault(key, []).append(conn)

    async def _connect(self, key: tuple[str, str, int], timeout_s: float | None) -> _Connection:
        scheme, host, port = key
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            context = self._ssl
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                _, conn = await loop.create_connection(
                    _Connection, host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in {timeout_s} s") from None
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        self._open.add(conn)
        return conn

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        read_timeout: float | None = timeouts.get("read")
        conn = self._pooled(key)
        if conn is not None:
            try:
                return await self._exchange(request, key, conn, read_timeout)
            except _NoAnswer:
                # The server closed this kept-alive connection as it was reused (llama-server's
                # HTTP library closes idle ones after 5 s): not a byte came back, so the request
                # goes once more on a new connection. Other idle ones may be closed alike: the
                # retry never takes one from the pool.
                conn.close()
            except BaseException:
                conn.close()
                raise
        conn = await self._connect(key, timeouts.get("connect"))
        try:
            return await self._exchange(request, key, conn, read_timeout)
        except _NoAnswer as exc:
            conn.close()
            raise exc.error from None
        except BaseException:
            conn.close()
            raise

    def _pooled(self, key: tuple[str, str, int]) -> _Connection | None:
        """An idle connection to `key` not known to be closed, or None."""
        idle = self._idle.get(key)
        while idle:
            candidate = idle.pop()
            if candidate.reusable:
                return candidate
            candidate.close()
        return None

    async def _exchange(
        self,
        request: httpx.Request,
        key: tuple[str, str, int],
        conn: _Connection,
        read_timeout: float | None,
    ) -> httpx.Response:
        body = await request.aread()
        lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.url.raw_path)]
        lines += [b"%s: %s" % pair for pair in request.headers.raw]
        assert conn.transport is not None
        conn.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        first = True
        while True:
            version, status, reason, headers, rest = await _read_head(conn, read_timeout, first)
            first = False
            # 1xx answers (100 Continue, 103 Early Hints) come before the real one.
            if not 100 <= status < 200:
                break
            conn.unread(rest)
        fields = {name.lower(): value for name, value in headers}
        connection = fields.get(b"connection", b"").lower()
        keep_alive = b"close" not in connection and (
            version == b"HTTP/1.1" or b"keep-alive" in connection
        )
        chunked = b"chunked" in fields.get(b"transfer-encoding", b"").lower()
        length: int | None = None
        if request.method == "HEAD" or status in (204, 304):
            length, chunked = 0, False
        elif not chunked and b"content-length" in fields:
            try:
                length = int(fields[b"content-length"])
            except ValueError:
                raise httpx.RemoteProtocolError("bad Content-Length") from None
        stream = _Body(self, key, conn, rest, length, chunked, keep_alive, read_timeout)
        return httpx.Response(
            status,
            headers=headers,
            stream=stream,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        for conn in self._open:
            conn.close()
        self._open.clear()
        self._idle.clear()


async def _read_head(
    conn: _Connection, timeout_s: float | None, first: bool = True
) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]], bytes]:
    """(version, status, reason, headers, body bytes read with the head) of the next response;
    _NoAnswer when the connection ends before the `first` response's first byte."""
    buffer = b""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buffer) > MAX_HEAD:
            raise httpx.RemoteProtocolError("response head too long")
        try:
            data = await conn.read(timeout_s)
        except httpx.ReadError as exc:
            if buffer or not first:
                raise
            raise _NoAnswer(exc) from None
        if not data:
            # The server closed the connection (a kept-alive one as it was reused, or it died).
            error = httpx.RemoteProtocolError("Server disconnected without sending a response.")
            if buffer or not first:
                raise error
            raise _NoAnswer(error)
        buffer += data
    head, rest = buffer[:end], buffer[end + 4 :]
    status_line, *header_lines = head.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"bad status line {status_line[:100]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in header_lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"bad header line {line[:100]!r}")
        headers.append((name, value.strip()))
    reason = parts[2] if len(parts) > 2 else b""
    return parts[0], int(parts[1]), reason, headers, rest
