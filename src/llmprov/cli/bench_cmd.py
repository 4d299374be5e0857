"""`llmprov bench`: measure a server's streamed throughput per concurrency level, compare runs."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from llmprov.checks import bench
from llmprov.cli.check_cmd import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    positive_float,
    read_api_key,
    usage_error,
)
from llmprov.core.bench_stats import (
    COMPARE_METRICS,
    BenchResult,
    CompareRow,
    LevelStats,
    Pair,
    RequestRecord,
    ResultsFormatError,
    RunSelectionError,
    Slo,
    compare,
    differences,
    parse_slo,
    select_run,
)

USAGE = """
  llmprov bench URL --engine E --model M [--concurrency 1,4,16] [--requests N] [--max-tokens K]
                [--request-rate R] [--slo ttft=MS,tpot=MS] [--prompts FILE.jsonl] [--seed S]
                [--api-key-file F] [--json OUT.jsonl] [--chart OUT.png] [--[no-]ignore-eos]
                [--time-limit S] [--request-timeout S]
  llmprov bench compare A.jsonl[#RUN] B.jsonl[#RUN] [--json] [--mixed] [--chart OUT.png]"""

EXIT_INTERRUPTED = 130
# `bench compare --json`'s object; bump when a field changes meaning or goes away.
COMPARE_SCHEMA_VERSION = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        usage=USAGE,
        help="measure streamed throughput and latency per concurrency level; compare runs",
        description=(
            "Send streamed chat completions at each concurrency level and report throughput, "
            "TTFT, TPOT, ITL and end-to-end latency as `vllm bench serve` does. Each level's "
            "record is appended to --json as it finishes; Ctrl-C keeps the finished levels. "
            "`llmprov bench compare --help` for comparing runs."
        ),
    )
    parser.add_argument(
        "target", metavar="URL", help="server root URL (no /v1), e.g. http://host:8000; or compare"
    )
    # Everything after URL (or `compare`) is parsed again by the run's or compare's own parser,
    # so that `bench compare --help` is compare's help and its options are its own.
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    _add_run_options(parser)
    parser.set_defaults(func=run)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
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
        "--request-rate",
        type=positive_float,
        metavar="R",
        help="Poisson arrivals at R requests/s, seeded by --seed (default: all at once, as "
        "vLLM's inf); the concurrency level still caps requests in flight",
    )
    parser.add_argument(
        "--slo",
        type=slo_arg,
        metavar="ttft=MS,tpot=MS",
        help="objectives in ms (ttft, tpot, e2el); reports goodput: requests/s meeting all",
    )
    parser.add_argument(
        "--prompts", type=Path, metavar="FILE.jsonl", help='{"prompt": ...} or {"messages": ...}'
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic prompts and arrivals (0)"
    )
    parser.add_argument("--api-key-file", type=Path, metavar="F")
    parser.add_argument(
        "--json",
        type=Path,
        dest="json_path",
        metavar="OUT.jsonl",
        help="append a result record per level, as each level finishes",
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


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmprov bench", usage=USAGE)
    parser.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    _add_run_options(parser)
    return parser


def _compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmprov bench compare",
        description=(
            "Set two benchmark runs side by side, per concurrency level, with ratios B/A. A run "
            "is FILE.jsonl, or FILE.jsonl#RUN_ID where the file holds several runs (a prefix of "
            "the id will do; a file of several runs without one lists them). Runs whose model, "
            "max_tokens, prompts, request count or request rate differ measure different things: "
            "they are refused unless --mixed."
        ),
    )
    parser.add_argument("runs", nargs="*", metavar="FILE.jsonl[#RUN]", help="runs A and B")
    parser.add_argument(
        "--json",
        action="store_true",
        dest="as_json",
        help=f"print one JSON object (schema_version {COMPARE_SCHEMA_VERSION}) instead of a table",
    )
    parser.add_argument(
        "--mixed", action="store_true", help="compare runs that differ, marking what differs"
    )
    parser.add_argument("--chart", type=Path, metavar="OUT.png", help="write a PNG chart")
    return parser


def _parse_rest(
    parser: argparse.ArgumentParser, rest: Sequence[str], into: argparse.Namespace
) -> argparse.Namespace | int:
    try:
        return parser.parse_args(rest, namespace=into)
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    if args.target == "compare":
        parsed = _parse_rest(_compare_parser(), args.rest, argparse.Namespace())
    else:
        parsed = _parse_rest(_run_parser(), args.rest, args)
    if isinstance(parsed, int):
        return parsed
    # Checked before a run of many minutes, not after it.
    for option, path in (("--json", getattr(parsed, "json_path", None)), ("--chart", parsed.chart)):
        if path is not None and not path.parent.is_dir():
            return usage_error("bench", f"{option}: directory {path.parent} does not exist")
    if args.target == "compare":
        return _compare(parsed)
    return _bench(parsed)


def _bench(args: argparse.Namespace) -> int:
    url: str = args.target
    if not url.startswith(("http://", "https://")):
        return usage_error("bench", f"URL must start with http:// or https://, got {url!r}")
    if args.extra:
        return usage_error("bench", f"unexpected arguments: {' '.join(args.extra)}")
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
        request_rate=args.request_rate,
        seed=args.seed,
        slo=args.slo,
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
    err = Console(stderr=True)
    if len(prompts) < needed:
        err.print(
            f"note: {args.prompts} has {len(prompts)} prompts for {needed} requests (the "
            "warm-up's and every level's): repeats may be answered from the server's prefix "
            "cache, with a shorter time to first token than new prompts",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
    for level in config.concurrencies:
        if level > config.requests:
            err.print(
                f"note: concurrency {level} is above the {config.requests} requests per level: "
                f"at most {config.requests} are in flight at that level",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    run_id = bench.new_run_id()
    digest = bench.prompts_digest(config, prompts)
    results: list[BenchResult] = []
    failures: Counter[str | None] = Counter()

    def on_level(level: int, records: list[RequestRecord]) -> None:
        done = bench.level_results(
            args.engine, url, config, {level: records}, timestamp, run_id, digest
        )
        if args.json_path:
            bench.append_results(args.json_path, done)
        results.extend(done)
        failures.update(r.error for r in records if not r.ok)

    interrupted = False
    try:
        _run_with_progress(url, config, prompts, on_level)
    except bench.BenchError as exc:
        err.print(Text(f"llmprov bench: {exc}", style="red"), soft_wrap=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        interrupted = True
    console = Console()
    rate = f" · {config.request_rate:g} req/s Poisson" if config.request_rate else ""
    title = f"{args.engine} · {args.model} · {url}{rate} · run {run_id}"
    if results:
        console.print(results_table(results, title))
    for error, count in failures.most_common(5):
        console.print(Text(f"{count} × {error}", style="red"), soft_wrap=True)
    if interrupted:
        kept = f", written to {args.json_path}" if args.json_path and results else ""
        err.print(
            f"interrupted: {len(results)} of {len(config.concurrencies)} levels finished{kept}",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )
        return EXIT_INTERRUPTED
    if args.chart:
        _write_chart(args.chart, {args.engine: results})
    return EXIT_FAILED if failures else EXIT_OK


def _run_with_progress(
    url: str,
    config: bench.BenchConfig,
    prompts: Sequence[bench.Messages],
    on_level: bench.LevelCallback,
) -> dict[int, list[RequestRecord]]:
    console = Console(stderr=True)
    # The bar shares the CPU with the client it reports on: rich rebuilds it on every refresh,
    # even when it has nowhere to draw (6 ms of CPU a second at its default 10 Hz, about 20 us
    # per token at 300 tokens/s), so it refreshes twice a second, and only on a terminal.
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=2,
        disable=not console.is_terminal,
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
            return await bench.run_bench(client, config, prompts, on_progress, on_level)

    with progress:
        return asyncio.run(go())


# Metrics as rows, levels as columns (as `vllm bench serve` prints them): fits any terminal.
# Latencies in milliseconds, as vLLM reports them.
_RESULT_ROWS: tuple[tuple[str, Callable[[LevelStats], float | None], str], ...] = (
    ("requests ok", lambda s: s.succeeded, "{:.0f}"),
    ("requests failed", lambda s: s.failed, "{:.0f}"),
    ("output tokens/s", lambda s: s.output_tokens_per_s, "{:.1f}"),
    ("input tokens/s", lambda s: s.input_tokens_per_s, "{:.1f}"),
    ("total tokens/s", lambda s: s.total_tokens_per_s, "{:.1f}"),
    ("requests/s", lambda s: s.requests_per_s, "{:.2f}"),
    ("goodput req/s", lambda s: s.goodput_requests_per_s, "{:.2f}"),
    ("TTFT mean ms", lambda s: s.ttft.mean_ms if s.ttft else None, "{:.1f}"),
    ("TTFT p99 ms", lambda s: s.ttft.p99_ms if s.ttft else None, "{:.1f}"),
    ("TPOT mean ms", lambda s: s.tpot.mean_ms if s.tpot else None, "{:.2f}"),
    ("ITL mean ms", lambda s: s.itl.mean_ms if s.itl else None, "{:.2f}"),
    ("ITL p99 ms", lambda s: s.itl.p99_ms if s.itl else None, "{:.2f}"),
    ("E2E median ms", lambda s: s.e2e.median_ms if s.e2e else None, "{:.1f}"),
    ("E2E p99 ms", lambda s: s.e2e.p99_ms if s.e2e else None, "{:.1f}"),
)


def level_header(result: BenchResult) -> str:
    """The level's column: its concurrency, and how many were in flight at most when fewer."""
    if result.in_flight_at_most < result.concurrency:
        return f"{result.concurrency} (≤{result.in_flight_at_most} in flight)"
    return str(result.concurrency)


def results_table(results: Sequence[BenchResult], title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("concurrency")
    for result in results:
        table.add_column(level_header(result), justify="right")
    with_slo = any(r.stats.goodput_requests_per_s is not None for r in results)
    for label, metric, fmt in _RESULT_ROWS:
        if label == "goodput req/s" and not with_slo:
            continue
        values = [metric(r.stats) for r in results]
        failed = label == "requests failed" and any(values)
        table.add_row(label, *(_cell(v, fmt) for v in values), style="red" if failed else None)
    return table


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _load_run(spec: str) -> tuple[str, list[BenchResult]]:
    """`FILE.jsonl` or `FILE.jsonl#RUN` → (label, that run's records); errors as usage errors."""
    path_text, _, run_id = spec.partition("#")
    path = Path(path_text)
    try:
        records = bench.read_results(path)
    except OSError as exc:
        raise RunSelectionError(f"cannot read results file: {exc}") from None
    chosen = select_run(records, run_id or None, path.name)
    return f"{chosen[0].engine} ({path.name})", chosen


def _compare(args: argparse.Namespace) -> int:
    if len(args.runs) != 2:
        return usage_error("bench", "compare takes two results files: A.jsonl[#RUN] B.jsonl[#RUN]")
    try:
        (label_a, a), (label_b, b) = (_load_run(spec) for spec in args.runs)
    except (RunSelectionError, ResultsFormatError) as exc:
        return usage_error("bench compare", str(exc))
    differ = differences(a, b)
    if differ and not args.mixed:
        listed = "; ".join(f"{k}: A {va}, B {vb}" for k, (va, vb) in differ.items())
        return usage_error(
            "bench compare",
            f"the runs measure different things ({listed}); pass --mixed to compare anyway",
        )
    rows = compare(a, b)
    if args.as_json:
        print(json.dumps(compare_json(args.runs, (a, b), differ, rows), sort_keys=True))
    else:
        console = Console()
        if differ:
            listed = ", ".join(f"{k} (A {va}, B {vb})" for k, (va, vb) in differ.items())
            console.print(Text(f"not like for like: {listed}", style="bold red"), soft_wrap=True)
        table = Table(
            title=f"A: {label_a}   B: {label_b}",
            caption=f"runs: A {a[0].run}, B {b[0].run}",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("concurrency", justify="right")
        table.add_column("metric")
        for side in ("A", "B", "B/A"):
            table.add_column(side, justify="right")
        for row in rows:
            shown = [(label, row.metrics[key]) for key, label, _ in COMPARE_METRICS]
            shown = [(label, pair) for label, pair in shown if (pair.a, pair.b) != (None, None)]
            for i, (label, pair) in enumerate(shown):
                table.add_row(
                    str(row.concurrency) if i == 0 else "",
                    label,
                    *_pair_cells(pair, "{:.1f}"),
                    end_section=i == len(shown) - 1,
                )
        console.print(table)
    if args.chart:
        _write_chart(args.chart, {label_a: a, label_b: b})
    return EXIT_OK


def compare_json(
    specs: Sequence[str],
    runs: tuple[Sequence[BenchResult], Sequence[BenchResult]],
    differ: dict[str, tuple[str, str]],
    rows: Sequence[CompareRow],
) -> dict[str, Any]:
    """`bench compare --json`: the two runs, what differs between them, and each level's metrics
    as {"a", "b", "ratio"} (ratio b/a; null where a side lacks the metric)."""

    def side(spec: str, records: Sequence[BenchResult]) -> dict[str, Any]:
        first = records[0]
        return {
            "source": spec,
            "run_id": first.run,
            "engine": first.engine,
            "model": first.model,
            "url": first.url,
            "timestamp": first.timestamp,
            "requests": first.requests,
            "max_tokens": first.max_tokens,
            "request_rate": first.request_rate,
            "prompts_sha256": first.prompts_sha256,
        }

    return {
        "schema_version": COMPARE_SCHEMA_VERSION,
        "a": side(specs[0], runs[0]),
        "b": side(specs[1], runs[1]),
        "differences": {k: {"a": va, "b": vb} for k, (va, vb) in differ.items()},
        "levels": [
            {
                "concurrency": row.concurrency,
                "metrics": {
                    key: {"a": pair.a, "b": pair.b, "ratio": pair.ratio}
                    for key, pair in row.metrics.items()
                },
            }
            for row in rows
        ],
    }


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


def slo_arg(text: str) -> Slo:
    try:
        return parse_slo(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
