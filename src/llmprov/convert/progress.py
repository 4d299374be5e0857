"""Progress of long model transfers and conversions, reported as events; the CLI draws them.

Library code never prints: it calls a `Report` with `Step`s. `llmprov models` turns them into
rich progress bars; a deploy passes `silent`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    """One update: `task` names a bar; `done` of `total` (None: not known) in `unit`."""

    task: str
    done: float = 0
    total: float | None = None
    unit: str = ""
    finished: bool = False


Report = Callable[[Step], None]


def silent(step: Step) -> None:
    """A Report that drops every update."""


def bar_class(report: Report, prefix: str = "") -> type[Any]:
    """A tqdm look-alike for huggingface_hub's `tqdm_class`, forwarding updates to `report`.

    huggingface_hub drives any class that is not a tqdm subclass through its constructor
    keywords, `update`, `close` and a context manager; other calls are accepted and ignored.
    Its bars are updated from download threads, so updates are serialised.
    """
    lock = threading.Lock()

    class Bar:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.total: float | None = kwargs.get("total")
            self.n: float = kwargs.get("initial") or 0
            self.unit: str = kwargs.get("unit") or ""
            self.desc: str = f"{prefix}{kwargs.get('desc') or 'download'}"
            self._emit()

        def _emit(self, finished: bool = False) -> None:
            with lock:
                report(Step(self.desc, self.n, self.total or None, self.unit, finished))

        def update(self, n: float | None = 1) -> None:
            self.n += n or 0
            self._emit()

        def close(self) -> None:
            self._emit(finished=True)

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def __getattr__(self, name: str) -> Callable[..., None]:
            def ignored(*args: Any, **kwargs: Any) -> None:
                return None

            return ignored

    return Bar


# tqdm's lines as llama.cpp's converter writes them ("Writing:  21%|██  | 30.1M/143M [...]").
_PERCENT = re.compile(r"(\d{1,3})%\|")
# llama-quantize's per-tensor lines ("[  12/ 272]   blk.0.attn_k.weight - ...").
_TENSOR = re.compile(r"^\[\s*(\d+)\s*/\s*(\d+)\]")


def percent_of(line: str) -> int | None:
    """The percentage a tqdm progress line shows, or None."""
    found = _PERCENT.findall(line)
    return int(found[-1]) if found else None


def tensor_of(line: str) -> tuple[int, int] | None:
    """(tensor number, tensor count) from a llama-quantize progress line, or None."""
    m = _TENSOR.match(line.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None
