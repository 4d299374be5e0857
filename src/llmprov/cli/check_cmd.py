"""`llmprov check`: smoke-check a serving endpoint and print one table of steps."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmprov.checks import smoke

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="smoke-check an LLM server (ready, model listed, chat answer, API key enforced)",
        description=(
            "Smoke-check every host of an inventory (through SSH where a server listens on "
            "loopback only), or one server by --url. Exits 1 when a step fails."
        ),
    )
    parser.add_argument("inventory", nargs="?", help="a pyinfra inventory file (or use --url)")
    parser.add_argument("--engine", choices=("ollama", "vllm", "llamacpp"), help="override engines")
    parser.add_argument("--limit", action="append", help="only this host (repeatable)")
    parser.add_argument("--url", help="server root URL (no /v1), e.g. http://host:8000")
    parser.add_argument("--api", choices=("openai", "ollama"))
    parser.add_argument("--model", help="model name the server should list")
    parser.add_argument(
        "--api-key-file", type=Path, help="file holding the API key (also checks it is enforced)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the server to get ready (default 60)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.inventory:
        if args.url:
            return usage_error("check", "give an inventory or --url, not both")
        return _run_inventory(args)
    missing = [f"--{n}" for n in ("url", "api", "model") if not getattr(args, n)]
    if missing:
        return usage_error("check", f"without an inventory, {', '.join(missing)} are required")
    try:
        api_key = read_api_key(args.api_key_file) if args.api_key_file else None
    except (OSError, ValueError) as exc:
        return usage_error("check", str(exc))
    with smoke.open_client(args.url) as client:
        report = smoke.run_smoke(
            client, args.api, args.model, api_key, ready_timeout_s=args.ready_timeout
        )
    Console().print(smoke_table(report, f"{args.url} ({args.api}, {args.model})"))
    return EXIT_OK if report.ok else EXIT_FAILED


def smoke_table(report: smoke.SmokeReport, title: str) -> Table:
    table = Table(title=title)
    table.add_column("step")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    table.add_column("detail", overflow="fold")
    for step in report.steps:
        table.add_row(
            step.name,
            Text("ok", style="green") if step.ok else Text("FAILED", style="bold red"),
            f"{step.seconds:.2f}",
            Text(step.detail),
        )
    return table


def read_api_key(path: Path) -> str:
    """The key is the file's content, surrounding whitespace removed."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise OSError(f"cannot read API key file {path}: {exc.strerror or exc}") from None
    if not key:
        raise ValueError(f"API key file {path} is empty")
    return key


def usage_error(command: str, message: str) -> int:
    """Report bad input the way argparse does, for errors found after parsing."""
    Console(stderr=True).print(
        Text(f"llmprov {command}: error: {message}", style="red"), soft_wrap=True
    )
    return EXIT_USAGE


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _run_inventory(args: argparse.Namespace) -> int:
    from llmprov.checks.after_deploy import prove
    from llmprov.cli.common import load_or_report

    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_USAGE
    console = Console()
    failed: list[str] = []
    for name, cfg in loaded.hosts.items():
        try:
            proof = prove(
                cfg, loaded.host_data[name], run_bench=False, ready_timeout_s=args.ready_timeout
            )
        except Exception as exc:  # an unreachable host is a failed check, the others still run
            console.print(f"[red]{name}: check could not run: {exc}[/]")
            failed.append(name)
            continue
        if proof.smoke is not None:
            console.print(
                smoke_table(
                    proof.smoke, f"{name}: {proof.url} ({cfg.engine}, {cfg.served_model_name})"
                )
            )
        if not proof.ok:
            failed.append(name)
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/]")
    return EXIT_FAILED if failed else EXIT_OK
