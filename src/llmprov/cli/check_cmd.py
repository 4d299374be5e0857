"""`llmprov check`: smoke-check a serving endpoint and print one table of steps."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmprov.checks import smoke
from llmprov.cli.common import ENGINE_HELP, LIMIT_HELP, console, new_table, print_json

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
    parser.add_argument(
        "--engine",
        choices=("ollama", "vllm", "llamacpp"),
        metavar="ENGINE",
        help="with an inventory: "
        + ENGINE_HELP
        + "; with --url: the server's engine, as for bench",
    )
    parser.add_argument("--limit", action="append", metavar="PATTERN", help=LIMIT_HELP)
    parser.add_argument("--url", help="server root URL (no /v1), e.g. http://host:8000")
    # Kept for scripts written before --engine took this role in --url mode.
    parser.add_argument("--api", choices=("openai", "ollama"), help=argparse.SUPPRESS)
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
    parser.add_argument("--json", action="store_true", help="print one JSON object (see README)")
    parser.set_defaults(func=run)


def api_for_engine(engine: str) -> str:
    """The API a server of this engine speaks: Ollama's own, or OpenAI's (vLLM, llama.cpp)."""
    return "ollama" if engine == "ollama" else "openai"


def run(args: argparse.Namespace) -> int:
    if args.inventory:
        if args.url:
            return usage_error("check", "give an inventory or --url, not both")
        return _run_inventory(args)
    if args.api is None and args.engine is not None:
        args.api = api_for_engine(args.engine)
    missing = [f"--{n}" for n in ("url", "model") if not getattr(args, n)]
    if args.api is None:
        missing.insert(1, "--engine")
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
    if args.json:
        print_json(
            {
                "command": "check",
                "ok": report.ok,
                "hosts": {
                    args.url: {"ok": report.ok, "url": args.url, "smoke": smoke_json(report)}
                },
            }
        )
    else:
        console.print(smoke_table(report, f"{args.url} ({args.api}, {args.model})"))
    return EXIT_OK if report.ok else EXIT_FAILED


def smoke_json(report: smoke.SmokeReport | None) -> list[dict[str, Any]] | None:
    """The steps of a smoke report as JSON: name, ok, seconds, detail."""
    if report is None:
        return None
    return [
        {"name": s.name, "ok": s.ok, "seconds": round(s.seconds, 3), "detail": s.detail}
        for s in report.steps
    ]


def smoke_table(report: smoke.SmokeReport, title: str) -> Table:
    table = new_table(title, ["step", "result"])
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
    from llmprov.checks.endpoint import EndpointError, direct_address, host_down
    from llmprov.cli.common import load_or_report
    from llmprov.core.unreachable import connect_address, unreachable_line, unreachable_reason

    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_USAGE
    failed: list[str] = []
    hosts: dict[str, Any] = {}
    for name, cfg in loaded.hosts.items():
        data = loaded.host_data[name]
        direct = direct_address(cfg, data)
        down = host_down(*direct) if direct is not None else None
        if direct is not None and down is not None:
            errnos = [down.errno] + ([errno.ETIMEDOUT] if isinstance(down, TimeoutError) else [])
            reason = unreachable_reason(str(down), errnos)
            host = f"[{direct[0]}]" if ":" in direct[0] else direct[0]
            line = unreachable_line(name, reason, f"{host}:{direct[1]}")
            print(line, file=sys.stderr)
            hosts[name] = {"ok": False, "unreachable": line}
            failed.append(name)
            continue
        try:
            proof = prove(cfg, data, run_bench=False, ready_timeout_s=args.ready_timeout)
        except EndpointError as exc:  # the SSH tunnel to a loopback-only server did not open
            line = unreachable_line(name, unreachable_reason(str(exc)), connect_address(name, data))
            print(line, file=sys.stderr)
            hosts[name] = {"ok": False, "unreachable": line}
            failed.append(name)
            continue
        except Exception as exc:  # a check that cannot run fails this host; the others still run
            print(f"{name}: check could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
            hosts[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
            continue
        hosts[name] = {"ok": proof.ok, "url": proof.url, "smoke": smoke_json(proof.smoke)}
        if proof.smoke is not None and not args.json:
            console.print(
                smoke_table(
                    proof.smoke, f"{name}: {proof.url} ({cfg.engine}, {cfg.served_model_name})"
                )
            )
        if not proof.ok:
            failed.append(name)
    if args.json:
        print_json(
            {
                "command": "check",
                "inventory": args.inventory,
                "engine": args.engine,
                "left_out": loaded.left_out,
                "ok": not failed,
                "hosts": hosts,
            }
        )
    elif failed:
        console.print(f"[red]failed: {', '.join(failed)}[/]")
    return EXIT_FAILED if failed else EXIT_OK
