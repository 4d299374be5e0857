"""Signs of life during a deploy: each host's current operation and how long it has run."""

from __future__ import annotations

import time
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.table import Table


class LineProgress:
    """Plain lines, for logs and pipes: one when a host starts an operation, one when it ends."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.started: dict[tuple[str, str], float] = {}

    def start(self, host: str, operation: str) -> None:
        self.started[host, operation] = time.monotonic()
        print(f"{host}: {operation} ...", file=self.out, flush=True)

    def end(self, host: str, operation: str, ok: bool) -> None:
        took = time.monotonic() - self.started.pop((host, operation), time.monotonic())
        print(f"{host}: {operation}: {'ok' if ok else 'FAILED'} ({took:.1f}s)", file=self.out)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class LiveProgress:
    """A live table on a terminal: per host, the operation running now, its elapsed time, and
    how many operations are done."""

    def __init__(self, console: Console, hosts: list[str]) -> None:
        self.current: dict[str, tuple[str, float] | None] = dict.fromkeys(hosts)
        self.done: dict[str, int] = dict.fromkeys(hosts, 0)
        self.failed: set[str] = set()
        self.live = Live(get_renderable=self._render, console=console, refresh_per_second=4)

    def _render(self) -> Table:
        table = Table(box=None, show_header=False)
        for col in ("host", "operation", "elapsed", "done"):
            table.add_column(col, overflow="fold")
        now = time.monotonic()
        for host, cur in self.current.items():
            if host in self.failed:
                what, took = "[red]FAILED[/]", ""
            elif cur is None:
                what, took = "[dim]waiting[/]", ""
            else:
                what, took = cur[0], f"{now - cur[1]:.0f}s"
            table.add_row(host, what, took, f"{self.done[host]} done")
        return table

    def start(self, host: str, operation: str) -> None:
        self.current[host] = (operation, time.monotonic())

    def end(self, host: str, operation: str, ok: bool) -> None:
        self.done[host] = self.done.get(host, 0) + 1
        if not ok:
            self.failed.add(host)
        self.current[host] = None

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.live.stop()


def progress_for(console: Console, hosts: list[str]) -> LiveProgress | LineProgress:
    """Live on a terminal, plain lines elsewhere (both on the given console's stream)."""
    if console.is_terminal:
        return LiveProgress(console, hosts)
    return LineProgress(console.file)
