"""Incremental server-sent-events decoding on bytes: the data of each event, whatever the read boundaries."""

from __future__ import annotations


class SseDecoder:
    """Feeds of a byte stream in, the `data` of each complete event out (WHATWG SSE rules).

    Works on bytes so that no read is decoded to text: LF and CR never occur inside a UTF-8
    sequence, and json.loads takes the UTF-8 bytes as they are. A line ends at CRLF, LF or CR; a
    blank line ends an event; its `data:` lines (one optional space after the colon removed) are
    joined with LF; other fields and `:` comments are skipped; an event without data yields
    nothing. Unlike a browser, `close()` also hands over an event the stream ended without a
    blank line after, so that a server that ends its last event early loses no token.
    """

    __slots__ = ("_cr", "_data", "_tail")

    def __init__(self) -> None:
        self._tail = b""
        # The data lines of the event under way; None until it has one.
        self._data: list[bytes] | None = None
        # The last feed ended in CR: an LF first in the next one belongs to that line end.
        self._cr = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """The data of every event that `chunk` completes, in order."""
        if self._cr:
            self._cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\r" in chunk:
            # A CR ending this chunk may be the first half of a CRLF split across reads.
            self._cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._tail:
            chunk = self._tail + chunk
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data is not None:
                    events.append(b"\n".join(self._data))
                    self._data = None
            elif line.startswith(b"data:"):
                value = line[6:] if line.startswith(b"data: ") else line[5:]
                if self._data is None:
                    self._data = [value]
                else:
                    self._data.append(value)
            elif line == b"data":
                # A field name alone is that field with an empty value.
                self._data = [b""] if self._data is None else [*self._data, b""]
        return events

    def close(self) -> list[bytes]:
        """The data of an event that the stream ended in, if any."""
        events = self.feed(b"\n\n") if self._tail or self._data is not None else []
        self._tail, self._data, self._cr = b"", None, False
        return events
