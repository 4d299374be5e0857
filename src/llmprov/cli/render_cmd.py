"""`llmprov render`: write every host's deploy files to a folder, contacting no host."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_OK, console, load_or_report, report_errors
from llmprov.core.render import RenderError
from llmprov.core.render_plan import local_path, plan_host
from llmprov.core.validate import FieldError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "render", help="write the files a deploy would upload, per host, without connecting"
    )
    p.add_argument("inventory", help="a pyinfra inventory file")
    p.add_argument(
        "--engine", choices=["ollama", "vllm", "llamacpp"], help="override every host's engine"
    )
    p.add_argument("--out", required=True, help="folder to write DIR/<host>/<path on host> into")
    p.add_argument("--limit", action="append", help="only this host (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    plans = {}
    errors: list[FieldError] = []
    for name, cfg in loaded.hosts.items():
        try:
            plans[name] = plan_host(cfg)
        except RenderError as exc:
            host, _, rest = str(exc).partition(": ")
            field, _, reason = rest.partition(": ")
            errors.append(FieldError(host, field, reason))
    if errors:
        report_errors(errors)
        return EXIT_BAD_INPUT
    out = Path(args.out)
    for name, files in plans.items():
        for f in files:
            target = out / name / local_path(f.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.content, encoding="utf-8")
            target.chmod(f.mode)
        console.print(f"[green]{name}[/]: {len(files)} file(s) under {out / name}")
    return EXIT_OK
