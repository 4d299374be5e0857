"""The `llmprov` entry point: builds the argument parser from the subcommand modules and dispatches."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence

from llmprov import __version__

# As cli.common has it; not imported from there, which would load rich and pydantic for --help.
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

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
    "llmprov.cli.advise_cmd",
    "llmprov.cli.rollback_cmd",
    "llmprov.cli.uninstall_cmd",
)


# Each command's one-line help, so that `llmprov --help` lists them without importing any
# (a test checks these against what each module registers).
SUMMARIES: dict[str, str] = {
    "render": "write the files a deploy would upload, per host, without connecting",
    "deploy": "provision the hosts of an inventory and check the result",
    "validate": "validate an inventory without connecting to any host",
    "verify": "check deployed hosts with pytest-testinfra over the inventory's connections",
    "bench": "measure streamed throughput and latency per concurrency level; compare runs",
    "check": "smoke-check an LLM server (ready, model listed, chat answer, API key enforced)",
    "sandbox": "boot throwaway Debian 12 hosts (systemd-nspawn) to deploy to over SSH",
    "models": "pull, convert and import model files on the controller",
    "matrix": "pick the vLLM, torch and CUDA build for an NVIDIA driver and GPU",
    "rollback": "switch each host back to the version it ran before, and smoke-check it",
    "uninstall": "stop and remove each host's engine: unit, settings, versions, caches, state record",
    "advise": "benchmark each engine on your workload, recommend one and (--apply) deploy it",
}


def _command_name(module: str) -> str:
    return module.rsplit(".", 1)[1].removesuffix("_cmd")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; given argv, only the command it names is imported, the rest are stubs."""
    parser = argparse.ArgumentParser(
        prog="llmprov",
        description="Provision local LLM inference servers on a pyinfra inventory and prove they work.",
    )
    parser.add_argument("--version", action="version", version=f"llmprov {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    for module in SUBCOMMAND_MODULES:
        name = _command_name(module)
        if argv is None or name == chosen or name not in SUMMARIES:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=SUMMARIES[name], add_help=False)
    return parser


def _load_refreshed_matrix() -> None:
    """Every command resolves vLLM with the built-in facts plus a stored `matrix refresh`."""
    from llmprov.core.matrix_data import MatrixDataError
    from llmprov.matrix_cache import current_matrix

    with contextlib.suppress(MatrixDataError):
        current_matrix()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    from llmprov.extras import MissingExtra, require

    _load_refreshed_matrix()
    try:
        if args.command == "bench" and getattr(args, "chart", None):
            require("matplotlib")  # before a run of many minutes, not after it
        code: int = args.func(args)
    except MissingExtra as exc:
        print(f"llmprov: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        # A deploy stopped part-way: pyinfra leaves each host as far as it got; rerunning resumes.
        print("llmprov: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
