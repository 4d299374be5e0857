"""`llmprov render`: write every host's deploy files to a folder, contacting no host."""

from __future__ import annotations

import argparse
from pathlib import Path, PurePosixPath

from llmprov.cli.common import (
    ENGINE_HELP,
    EXIT_BAD_INPUT,
    EXIT_OK,
    LIMIT_HELP,
    console,
    load_or_report,
    report_errors,
)
from llmprov.core.cluster import plan_files
from llmprov.core.render.compose import ComposeRenderError
from llmprov.core.render.k8s import K8sRenderError, render_manifests, resolved_for_k8s
from llmprov.core.render.plan import PlanError, out_path
from llmprov.core.validate import FieldError

# Under --out, beside the host folders; a leading underscore keeps them apart from host names.
K8S_DIR = "_k8s"
PROMETHEUS_FILE = "_prometheus/prometheus.yml"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "render", help="write the files a deploy would upload, per host, without connecting"
    )
    p.add_argument("inventory", help="a pyinfra inventory file")
    p.add_argument(
        "--engine", choices=["ollama", "vllm", "llamacpp"], metavar="ENGINE", help=ENGINE_HELP
    )
    p.add_argument("--out", required=True, help="folder to write DIR/<host>/<path on host> into")
    p.add_argument("--limit", action="append", metavar="PATTERN", help=LIMIT_HELP)
    p.add_argument(
        "--k8s",
        action="store_true",
        help=f"also write Kubernetes manifests for the hosts to DIR/{K8S_DIR}/ "
        "(a Deployment per serving setup, a LeaderWorkerSet per serving cluster)",
    )
    p.add_argument(
        "--prometheus",
        nargs="?",
        const="",
        metavar="FILE",
        help="also write Prometheus scrape jobs for every engine's metrics endpoint to FILE "
        f"(default DIR/{PROMETHEUS_FILE})",
    )
    p.set_defaults(func=run)


def _field_error(exc: Exception) -> FieldError:
    host, _, rest = str(exc).partition(": ")
    field, _, reason = rest.partition(": ")
    return FieldError(host, field, reason)


def _write(target: Path, content: str, mode: int = 0o644) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    target.chmod(mode)


def run(args: argparse.Namespace) -> int:
    from llmprov.core.render.prometheus import render_prometheus

    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    out = Path(args.out)
    plans = {}
    errors: list[FieldError] = []
    for name, cfg in loaded.hosts.items():
        try:
            # Every target is placed (and checked to stay under --out) before anything is written.
            plans[name] = [
                (Path(out_path(PurePosixPath(out), name, f.path)), f) for f in plan_files(cfg)
            ]
        except (ComposeRenderError, PlanError) as exc:
            errors.append(_field_error(exc))
    manifests = []
    if args.k8s:
        try:
            resolved = {name: resolved_for_k8s(cfg) for name, cfg in loaded.hosts.items()}
            manifests = render_manifests(loaded.hosts, resolved)
        except K8sRenderError as exc:
            errors.append(_field_error(exc))
    if errors:
        report_errors(errors)
        return EXIT_BAD_INPUT
    for name, files in plans.items():
        for target, f in files:
            _write(target, f.content, f.mode)
        console.print(f"[green]{name}[/]: {len(files)} file(s) under {out / name}")
    for m in manifests:
        _write(out / K8S_DIR / m.filename, m.text)
    if manifests:
        console.print(f"[green]kubernetes[/]: {len(manifests)} manifest(s) under {out / K8S_DIR}")
    if args.prometheus is not None:
        target = Path(args.prometheus) if args.prometheus else out / PROMETHEUS_FILE
        _write(target, render_prometheus(loaded.hosts, loaded.host_data, args.inventory))
        console.print(f"[green]prometheus[/]: scrape jobs in {target}")
    return EXIT_OK
