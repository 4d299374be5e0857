"""Signs of life during a deploy: each host's current operation and how long it has run."""

from __future__ import annotations

import time
from collections import deque
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.table import Table

# Lines of a failed operation's output shown under its FAILED line.
TAIL_LINES = 20
# A long operation's latest output line is shown at most this often per host in plain-line mode.
STEP_EVERY_S = 10.0
STEP_WIDTH = 120


class _Tails:
    """The last lines each host's current operation printed, shown when it fails."""

    def __init__(self) -> None:
        self.lines: dict[str, deque[str]] = {}

    def add(self, host: str, line: str) -> None:
        self.lines.setdefault(host, deque(maxlen=TAIL_LINES)).append(line)

    def take(self, host: str) -> list[str]:
        return list(self.lines.pop(host, ()))


class LineProgress:
    """Plain lines, for logs and pipes: one when a host starts an operation, one when it ends, and
    in between the operation's latest output line every STEP_EVERY_S seconds."""

    def __init__(self, out: IO[str], every_s: float = STEP_EVERY_S) -> None:
        self.out = out
        self.every_s = every_s
        self.started: dict[tuple[str, str], float] = {}
        self.current: dict[str, tuple[str, float]] = {}
        self.last_shown: dict[str, float] = {}
        self.tails = _Tails()

    def start(self, host: str, operation: str) -> None:
        now = time.monotonic()
        self.started[host, operation] = now
        self.current[host] = (operation, now)
        self.last_shown[host] = now
        self.tails.take(host)
        print(f"{host}: {operation} ...", file=self.out, flush=True)

    def output(self, host: str, line: str) -> None:
        if not line:
            return
        self.tails.add(host, line)
        now = time.monotonic()
        if host in self.current and now - self.last_shown.get(host, 0.0) >= self.every_s:
            operation, since = self.current[host]
            self.last_shown[host] = now
            step = line[:STEP_WIDTH]
            print(f"{host}: {operation} ({now - since:.0f}s): {step}", file=self.out, flush=True)

    def end(self, host: str, operation: str, ok: bool) -> None:
        took = time.monotonic() - self.started.pop((host, operation), time.monotonic())
        self.current.pop(host, None)
        print(f"{host}: {operation}: {'ok' if ok else 'FAILED'} ({took:.1f}s)", file=self.out)
        tail = self.tails.take(host)
        if not ok:
            for line in tail:
                print(f"{host}:   {line}", file=self.out)

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
        self.step: dict[str, str] = {}
        self.done: dict[str, int] = dict.fromkeys(hosts, 0)
        self.failed: set[str] = set()
        self.tails = _Tails()
        self.live = Live(get_renderable=self._render, console=console, refresh_per_second=4)

    def _render(self) -> Table:
        table = Table(box=None, show_header=False)
        for col in ("host", "operation", "elapsed", "done"):
            table.add_column(col, overflow="fold")
        table.add_column("step", overflow="ellipsis", no_wrap=True, style="dim")
        now = time.monotonic()
        for host, cur in self.current.items():
            if host in self.failed:
                what, took = "[red]FAILED[/]", ""
            elif cur is None:
                what, took = "[dim]waiting[/]", ""
            else:
                what, took = cur[0], f"{now - cur[1]:.0f}s"
            step = self.step.get(host, "") if cur is not None else ""
            table.add_row(host, what, took, f"{self.done[host]} done", step)
        return table

    def start(self, host: str, operation: str) -> None:
        self.current[host] = (operation, time.monotonic())
        self.step.pop(host, None)
        self.tails.take(host)

    def output(self, host: str, line: str) -> None:
        if line:
            self.step[host] = line[:STEP_WIDTH]
            self.tails.add(host, line)

    def end(self, host: str, operation: str, ok: bool) -> None:
        self.done[host] = self.done.get(host, 0) + 1
        self.current[host] = None
        tail = self.tails.take(host)
        if not ok:
            self.failed.add(host)
            # Printed above the live table, which stays at the bottom.
            self.live.console.print(f"[red]{host}: {operation}: FAILED[/]", highlight=False)
            for line in tail:
                self.live.console.print(f"{host}:   {line}", markup=False, highlight=False)

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
