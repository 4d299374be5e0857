"""`llmprov bench`: measure a server's streamed throughput per concurrency level, compare runs."""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from llmprov.checks import bench
from llmprov.cli.check_cmd import (
    EXIT_FAILED,
    EXIT_OK,
    positive_float,
    read_api_key,
    usage_error,
)
from llmprov.core.bench_stats import (
    BenchResult,
    LevelStats,
    Pair,
    RequestRecord,
    ResultsFormatError,
    compare,
)

USAGE = """
  llmprov bench URL --engine E --model M [--concurrency 1,4,16] [--requests N] [--max-tokens K]
                [--prompts FILE.jsonl] [--seed S] [--api-key-file F] [--json OUT.jsonl]
                [--chart OUT.png] [--[no-]ignore-eos] [--time-limit S] [--request-timeout S]
  llmprov bench compare A.jsonl B.jsonl [--chart OUT.png]"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        usage=USAGE,
        help="measure streamed throughput and latency per concurrency level; compare runs",
        description=(
            "Send streamed chat completions at each concurrency level and report throughput, "
            "TTFT, TPOT, ITL and end-to-end latency as `vllm bench serve` does. "
            "`bench compare A B` sets two results files side by side, ratios B/A."
        ),
    )
    parser.add_argument(
        "target", metavar="URL", help="server root URL (no /v1), e.g. http://host:8000; or compare"
    )
    parser.add_argument("files", nargs="*", metavar="FILE.jsonl", help="with compare: A and B")
    parser.add_argument(
        "--engine", help="engine label for the records: vllm, llamacpp, ollama, or another name"
    )
    parser.add_argument(
        "--ignore-eos",
        action=argparse.BooleanOptionalAction,
        help="ask for exactly --max-tokens tokens (default: on for vllm and llamacpp)",
    )
    parser.add_argument("--model", help="model name to request")
    parser.add_argument(
        "--concurrency",
        type=concurrency_list,
        default=(1, 4, 16),
        metavar="LIST",
        help="comma-separated concurrency levels (default 1,4,16)",
    )
    parser.add_argument(
        "--requests", type=positive_int, default=32, help="requests per level (default 32)"
    )
    parser.add_argument(
        "--max-tokens", type=positive_int, default=64, help="output tokens per request (64)"
    )
    parser.add_argument(
        "--prompts", type=Path, metavar="FILE.jsonl", help='{"prompt": ...} or {"messages": ...}'
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic prompts (default 0)"
    )
    parser.add_argument("--api-key-file", type=Path, metavar="F")
    parser.add_argument(
        "--json", type=Path, dest="json_path", metavar="OUT.jsonl", help="append result records"
    )
    parser.add_argument("--chart", type=Path, metavar="OUT.png", help="write a PNG chart")
    parser.add_argument(
        "--time-limit",
        type=positive_float,
        default=600.0,
        metavar="S",
        help="start no new request at a level after this many seconds (default 600)",
    )
    parser.add_argument(
        "--request-timeout",
        type=positive_float,
        default=300.0,
        metavar="S",
        help="fail a request that has not finished after this many seconds (default 300)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Checked before a run of many minutes, not after it.
    for option, path in (("--json", args.json_path), ("--chart", args.chart)):
        if path is not None and not path.parent.is_dir():
            return usage_error("bench", f"{option}: directory {path.parent} does not exist")
    if args.target == "compare":
        return _compare(args)
    return _bench(args)


def _bench(args: argparse.Namespace) -> int:
    url: str = args.target
    if not url.startswith(("http://", "https://")):
        return usage_error("bench", f"URL must start with http:// or https://, got {url!r}")
    if args.files:
        return usage_error("bench", f"unexpected arguments: {' '.join(args.files)}")
    if not args.engine or not args.model:
        return usage_error("bench", "--engine and --model are required")
    try:
        api_key = read_api_key(args.api_key_file) if args.api_key_file else None
    except (OSError, ValueError) as exc:
        return usage_error("bench", str(exc))
    config = bench.BenchConfig(
        model=args.model,
        concurrencies=args.concurrency,
        requests=args.requests,
        max_tokens=args.max_tokens,
        ignore_eos=(
            bench.engine_accepts_ignore_eos(args.engine)
            if args.ignore_eos is None
            else args.ignore_eos
        ),
        api_key=api_key,
        request_timeout_s=args.request_timeout,
        level_time_limit_s=args.time_limit,
    )
    needed = bench.prompts_needed(config)
    try:
        prompts = (
            bench.load_prompts(args.prompts)
            if args.prompts
            else bench.synthetic_prompts(needed, args.seed)
        )
    except OSError as exc:
        reason = exc.strerror or exc
        return usage_error("bench", f"cannot read prompts file {args.prompts}: {reason}")
    except bench.PromptsFileError as exc:
        return usage_error("bench", str(exc))
    if len(prompts) < needed:
        Console(stderr=True).print(
            f"note: {args.prompts} has {len(prompts)} prompts for {needed} requests (the "
            "warm-up's and every level's): repeats may be answered from the server's prefix "
            "cache, with a shorter time to first token than new prompts",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        runs = _run_with_progress(url, config, prompts)
    except bench.BenchError as exc:
        Console(stderr=True).print(Text(f"llmprov bench: {exc}", style="red"), soft_wrap=True)
        return EXIT_FAILED
    results = bench.level_results(args.engine, url, config, runs, timestamp)
    console = Console()
    console.print(results_table(results, f"{args.engine} · {args.model} · {url}"))
    errors = Counter(r.error for records in runs.values() for r in records if not r.ok)
    for error, count in errors.most_common(5):
        console.print(Text(f"{count} × {error}", style="red"), soft_wrap=True)
    if args.json_path:
        bench.append_results(args.json_path, results)
    if args.chart:
        _write_chart(args.chart, {args.engine: results})
    return EXIT_FAILED if errors else EXIT_OK


def _run_with_progress(
    url: str, config: bench.BenchConfig, prompts: Sequence[bench.Messages]
) -> dict[int, list[RequestRecord]]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    tasks = {
        level: progress.add_task(f"concurrency {level}", total=config.requests, failed=0)
        for level in config.concurrencies
    }

    def on_progress(event: bench.BenchProgress) -> None:
        progress.update(tasks[event.concurrency], completed=event.done, failed=event.failed)

    async def go() -> dict[int, list[RequestRecord]]:
        async with bench.open_async_client(
            url, max(config.concurrencies), config.request_timeout_s
        ) as client:
            return await bench.run_bench(client, config, prompts, on_progress)

    with progress:
        return asyncio.run(go())


# Metrics as rows, levels as columns (as `vllm bench serve` prints them): fits any terminal.
_RESULT_ROWS: tuple[tuple[str, Callable[[LevelStats], float | None], str], ...] = (
    ("requests ok", lambda s: s.succeeded, "{:.0f}"),
    ("requests failed", lambda s: s.failed, "{:.0f}"),
    ("output tokens/s", lambda s: s.output_tokens_per_s, "{:.1f}"),
    ("requests/s", lambda s: s.requests_per_s, "{:.2f}"),
    ("TTFT mean ms", lambda s: s.ttft.mean_ms if s.ttft else None, "{:.1f}"),
    ("TTFT p99 ms", lambda s: s.ttft.p99_ms if s.ttft else None, "{:.1f}"),
    ("TPOT mean ms", lambda s: s.tpot.mean_ms if s.tpot else None, "{:.2f}"),
    ("ITL mean ms", lambda s: s.itl.mean_ms if s.itl else None, "{:.2f}"),
    ("ITL p99 ms", lambda s: s.itl.p99_ms if s.itl else None, "{:.2f}"),
    ("E2E median s", lambda s: s.e2e.median_ms / 1000 if s.e2e else None, "{:.3f}"),
    ("E2E p99 s", lambda s: s.e2e.p99_ms / 1000 if s.e2e else None, "{:.3f}"),
)


def results_table(results: Sequence[BenchResult], title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("concurrency")
    for result in results:
        table.add_column(str(result.concurrency), justify="right")
    for label, metric, fmt in _RESULT_ROWS:
        values = [metric(r.stats) for r in results]
        failed = label == "requests failed" and any(values)
        table.add_row(label, *(_cell(v, fmt) for v in values), style="red" if failed else None)
    return table


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _compare(args: argparse.Namespace) -> int:
    if len(args.files) != 2:
        return usage_error("bench", "compare takes two results files: A.jsonl B.jsonl")
    paths = [Path(f) for f in args.files]
    try:
        a, b = (bench.read_results(p) for p in paths)
    except OSError as exc:
        return usage_error("bench", f"cannot read results file: {exc}")
    except ResultsFormatError as exc:
        return usage_error("bench", str(exc))
    for path, records in zip(paths, (a, b), strict=True):
        if not records:
            return usage_error("bench", f"{path}: no result records")
    labels = [
        f"{records[-1].engine} ({path.name})" for path, records in zip(paths, (a, b), strict=True)
    ]
    table = Table(title=f"A: {labels[0]}   B: {labels[1]}", box=box.SIMPLE_HEAD)
    table.add_column("concurrency", justify="right")
    table.add_column("metric")
    for side in ("A", "B", "B/A"):
        table.add_column(side, justify="right")
    for row in compare(a, b):
        level = str(row.concurrency)
        table.add_row(level, "output tokens/s", *_pair_cells(row.output_tokens_per_s, "{:.1f}"))
        table.add_row("", "TTFT mean ms", *_pair_cells(row.ttft_mean_ms, "{:.1f}"))
        table.add_row(
            "", "E2E p99 s", *_pair_cells(row.e2e_p99_ms, "{:.3f}", 1 / 1000), end_section=True
        )
    Console().print(table)
    if args.chart:
        _write_chart(args.chart, {labels[0]: a, labels[1]: b})
    return EXIT_OK


def _write_chart(path: Path, runs: dict[str, list[BenchResult]]) -> None:
    # Imported here: matplotlib takes longer to import than the rest of the command line.
    from llmprov.checks.chart import write_chart

    write_chart(path, runs)


def _pair_cells(pair: Pair, fmt: str, scale: float = 1.0) -> tuple[str, str, str]:
    a, b = (None if v is None else v * scale for v in (pair.a, pair.b))
    return _cell(a, fmt), _cell(b, fmt), _cell(pair.ratio, "{:.2f}×")


def concurrency_list(text: str) -> tuple[int, ...]:
    """`1,4,16` → (1, 4, 16): positive, distinct, in the order given."""
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers like 1,4,16, got {text!r}"
        ) from None
    if min(levels) < 1:
        raise argparse.ArgumentTypeError(f"concurrency levels must be at least 1, got {text!r}")
    if len(set(levels)) != len(levels):
        raise argparse.ArgumentTypeError(f"concurrency levels repeat in {text!r}")
    return levels


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
