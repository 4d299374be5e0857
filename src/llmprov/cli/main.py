"""The `llmprov` entry point: builds the argument parser from the subcommand modules and dispatches."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from llmprov import __version__

# Each module exposes `register(subparsers)`; the parser it adds sets `func(args) -> int`.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "llmprov.cli.render_cmd",
    "llmprov.cli.deploy_cmd",
    "llmprov.cli.validate_cmd",
    "llmprov.cli.verify_cmd",
    "llmprov.cli.bench_cmd",
    "llmprov.cli.check_cmd",
    "llmprov.cli.sandbox_cmd",
    "llmprov.cli.models_cmd",
    "llmprov.cli.matrix_cmd",
    "llmprov.cli.rollback_cmd",
    "llmprov.cli.uninstall_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmprov",
        description="Provision local LLM inference servers on a pyinfra inventory and prove they work.",
    )
    parser.add_argument("--version", action="version", version=f"llmprov {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
