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
        description="Smoke-check one LLM server. Exits 1 when a step fails.",
    )
    parser.add_argument(
        "--url", required=True, help="server root URL (no /v1), e.g. http://host:8000"
    )
    parser.add_argument("--api", required=True, choices=("openai", "ollama"))
    parser.add_argument("--model", required=True, help="model name the server should list")
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
