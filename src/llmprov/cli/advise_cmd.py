"""`llmprov advise`: measure each candidate engine on the client's workload, recommend one, apply it."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.text import Text

from llmprov.cli.bench_cmd import concurrency_list, positive_int
from llmprov.cli.check_cmd import positive_float
from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, console, report_errors
from llmprov.core.advise.html import report_to_html
from llmprov.core.advise.report import (
    AdviseReport,
    ReportFormatError,
    WorkloadInfo,
    host_report,
    report_from_json,
    report_to_json,
    report_to_markdown,
)
from llmprov.core.advise.slo import Slo, SloError, parse_slo
from llmprov.core.advise.workload import (
    WorkloadError,
    WorkloadRequest,
    parse_synthetic,
    parse_workload,
    synthetic_requests,
)
from llmprov.core.bench_stats import result_to_line
from llmprov.core.config import ENGINES
from llmprov.core.layout import safe_name
from llmprov.core.validate import FieldError
from llmprov.inventory import InventoryError, load_inventory

USAGE = """
  llmprov advise INVENTORY --workload W.jsonl|synthetic:in=A..B,out=C..D[,n=N]
                 [--engines vllm,ollama,llamacpp] [--slo ttft_p99=2s,tpot_p99=100ms]
                 [--concurrency 1,2,4,8,16,32] [--rates 0.5,1,2] [--requests N] [--users N]
                 [--limit HOST] [--out DIR] [--apply] [-y]
  llmprov advise --from-report DIR/advise.json [--out DIR]"""

REPORT_FILES = ("advise.json", "advise.md", "advise.html")
# Deploys llmprov can time and stop by unit: advise needs a systemd unit per engine.
SUPPORTED = ("linux", "systemd")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "advise",
        usage=USAGE,
        help="benchmark each engine on your workload, recommend one and (--apply) deploy it",
        description=(
            "Deploy each candidate engine on each host in turn (the others stopped), time its "
            "cold start, replay the workload at each concurrency level, read its memory, and "
            "write a report (JSON, Markdown, HTML) with a recommendation per host."
        ),
    )
    p.add_argument("inventory", nargs="?")
    p.add_argument(
        "--workload", metavar="W",
        help="OpenAI chat requests (JSONL), ShareGPT (JSON or JSONL), or "
        "synthetic:in=LOW..HIGH,out=LOW..HIGH[,n=N][,seed=S] (token lengths)",
    )  # fmt: skip
    p.add_argument(
        "--engines",
        type=engine_list,
        default=("vllm", "llamacpp", "ollama"),
        metavar="LIST",
        help="candidate engines (default vllm,llamacpp,ollama)",
    )
    p.add_argument("--slo", default="", help="e.g. ttft_p99=2s,tpot_p99=100ms (default: none)")
    p.add_argument(
        "--concurrency", type=concurrency_list, default=(1, 2, 4, 8, 16, 32), metavar="LIST",
        help="concurrency levels (default 1,2,4,8,16,32)",
    )  # fmt: skip
    p.add_argument(
        "--rates", type=rate_list, default=(), metavar="LIST",
        help="also replay at these request rates per second, e.g. 0.5,1,2 (default: none)",
    )  # fmt: skip
    p.add_argument(
        "--requests", type=positive_int, default=32, metavar="N", help="requests per level (32)"
    )
    p.add_argument("--users", type=positive_int, metavar="N", help="expected concurrent users")
    p.add_argument("--limit", action="append", metavar="HOST", help="only this host (repeatable)")
    p.add_argument(
        "--out", type=Path, default=Path("advise"), metavar="DIR", help="report folder (./advise)"
    )
    p.add_argument(
        "--ready-timeout", type=positive_float, default=900.0, metavar="S",
        help="bound on an engine's cold start to its first token (default 900)",
    )  # fmt: skip
    p.add_argument(
        "--request-timeout", type=positive_float, default=300.0, metavar="S",
        help="fail a request not finished after this many seconds (default 300)",
    )  # fmt: skip
    p.add_argument(
        "--time-limit", type=positive_float, default=600.0, metavar="S",
        help="start no new request at a level after this many seconds (default 600)",
    )  # fmt: skip
    p.add_argument("--apply", action="store_true", help="deploy each host's recommendation")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before changing hosts")
    p.add_argument("--from-report", type=Path, metavar="JSON", help="re-render a report")
    p.set_defaults(func=run)


def engine_list(text: str) -> tuple[str, ...]:
    engines = tuple(part.strip() for part in text.split(","))
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise argparse.ArgumentTypeError(
            f"unknown engine(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(ENGINES)}"
        )
    if len(set(engines)) != len(engines):
        raise argparse.ArgumentTypeError(f"engines repeat in {text!r}")
    return engines


def rate_list(text: str) -> tuple[float, ...]:
    """`0.5,1,2` → (0.5, 1.0, 2.0): positive, finite, distinct."""
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,1,2, got {text!r}") from None
    if not all(0 < r < float("inf") for r in rates):
        raise argparse.ArgumentTypeError(f"request rates must be positive numbers, got {text!r}")
    if len(set(rates)) != len(rates):
        raise argparse.ArgumentTypeError(f"request rates repeat in {text!r}")
    return rates


def _error(message: str) -> int:
    Console(stderr=True).print(
        Text(f"llmprov advise: error: {message}", style="red"), soft_wrap=True
    )
    return EXIT_BAD_INPUT


def load_workload(spec: str) -> list[WorkloadRequest]:
    """A workload file, or a `synthetic:` spec; WorkloadError or OSError otherwise."""
    synthetic = parse_synthetic(spec)
    if synthetic is not None:
        return synthetic_requests(synthetic)
    path = Path(spec)
    return parse_workload(path.read_text(encoding="utf-8"), str(path))


def write_report(report: AdviseReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    texts = (report_to_json(report), report_to_markdown(report), report_to_html(report))
    paths = [out / name for name in REPORT_FILES]
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text, encoding="utf-8")
    # The raw records too, in `llmprov bench --json`'s format, so `bench compare` reads them.
    for host in report.hosts:
        for engine in host.engines:
            if engine.results:
                path = out / f"bench-{safe_name(host.host)}-{engine.engine}.jsonl"
                path.write_text("".join(map(result_to_line, engine.results)), encoding="utf-8")
                paths.append(path)
    return paths


def validate_candidates(
    path: Path, engines: tuple[str, ...], limit: list[str] | None
) -> tuple[list[str], list[FieldError]]:
    """Every host's configuration under every candidate engine, checked before any host is
    touched: the hosts, and every fault found."""
    errors: list[FieldError] = []
    hosts: list[str] = []
    for engine in engines:
        try:
            loaded = load_inventory(path, engine_override=engine, limit=limit, every_host=True)
        except InventoryError as exc:
            errors += [e for e in exc.errors if e not in errors]
            continue
        for name, cfg in loaded.hosts.items():
            if (cfg.os, cfg.runtime) != SUPPORTED:
                fault = FieldError(
                    name, "runtime",
                    f"advise measures systemd units on Linux; this host is {cfg.os}/{cfg.runtime}",
                )  # fmt: skip
                if fault not in errors:
                    errors.append(fault)
            elif cfg.cluster is not None:
                errors.append(FieldError(name, "cluster", "advise does not measure cluster nodes"))
            if name not in hosts:
                hosts.append(name)
    return hosts, errors


def run(args: argparse.Namespace) -> int:
    if args.from_report is not None:
        try:
            report = report_from_json(
                args.from_report.read_text(encoding="utf-8"), str(args.from_report)
            )
        except (OSError, ReportFormatError) as exc:
            return _error(str(exc))
        for path in write_report(report, args.out):
            console.print(f"wrote {path}")
        return EXIT_OK
    if not args.inventory or not args.workload:
        return _error("INVENTORY and --workload are required")
    try:
        slo = parse_slo(args.slo) if args.slo else Slo(())
        workload = load_workload(args.workload)
    except (SloError, WorkloadError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"cannot read workload {args.workload}: {exc.strerror or exc}")
    if args.out.exists() and not args.out.is_dir():
        return _error(f"--out {args.out} exists and is not a folder")
    path = Path(args.inventory)
    hosts, errors = validate_candidates(path, args.engines, args.limit)
    if errors:
        report_errors(errors)
        return EXIT_BAD_INPUT
    if not args.yes and not _confirm(hosts, args.engines):
        return EXIT_BAD_INPUT
    return _measure(args, path, hosts, slo, workload)


def _confirm(hosts: list[str], engines: tuple[str, ...]) -> bool:
    if not sys.stdin.isatty():
        Console(stderr=True).print(
            "llmprov advise: refusing to change hosts without a terminal; pass -y"
        )
        return False
    answer = input(f"Deploy {', '.join(engines)} in turn on {', '.join(hosts)}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _measure(
    args: argparse.Namespace,
    path: Path,
    hosts: list[str],
    slo: Slo,
    workload: list[WorkloadRequest],
) -> int:
    # Imported here: pyinfra and the deploys are needed only once hosts are touched.
    from llmprov.deploy.advise import (
        AdvisePlan,
        apply_choice,
        hardware_of,
        load_for,
        measure_engine,
    )

    plan = AdvisePlan(
        inventory=path,
        engines=args.engines,
        workload=workload,
        concurrencies=args.concurrency,
        requests=args.requests,
        slo=slo,
        users=args.users,
        rates=args.rates,
        ready_timeout_s=args.ready_timeout,
        request_timeout_s=args.request_timeout,
        level_time_limit_s=args.time_limit,
    )

    def progress(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    reports = []
    model = ""
    for host in hosts:
        measurements = [measure_engine(plan, host, engine, progress) for engine in plan.engines]
        first = load_for(path, plan.engines[0], host).hosts[host]
        model = model or first.served_model_name
        reports.append(host_report(host, hardware_of(first), measurements, slo, plan.users))
    report = AdviseReport(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        model=model,
        workload=WorkloadInfo(
            source=args.workload,
            requests=len(workload),
            mean_output_tokens=sum(r.max_tokens for r in workload) / len(workload),
        ),
        slo=str(slo),
        users=plan.users,
        concurrencies=list(plan.concurrencies),
        request_rates=sorted(plan.rates),
        hosts=reports,
    )
    failed = any(e.error for h in report.hosts for e in h.engines)
    if args.apply:
        applied = []
        for h in report.hosts:
            if h.recommendation.engine is None:
                applied.append(f"{h.host}: nothing applied (no recommendation)")
                failed = True
                continue
            outcome = apply_choice(path, h.host, h.recommendation.engine, plan.engines, progress)
            applied += outcome.lines
            failed |= not outcome.ok
        report = report.model_copy(update={"applied": applied})
    for h in report.hosts:
        console.print(
            Text(f"{h.host}: recommended {h.recommendation.engine or 'none'}", style="bold")
        )
        for reason in h.recommendation.reasons:
            console.print(f"  - {reason}", markup=False, highlight=False)
    for line in report.applied:
        console.print(line, markup=False, highlight=False)
    for path_written in write_report(report, args.out):
        console.print(f"wrote {path_written}")
    return EXIT_FAILED if failed else EXIT_OK
