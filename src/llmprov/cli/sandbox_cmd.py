"""`llmprov sandbox up|down|status`: throwaway Debian hosts that outlive the command, for deploys."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from llmprov.cache import CacheError, demo_model
from llmprov.sandbox import (
    Harness,
    SandboxError,
    SandboxState,
    default_cache_dir,
    default_state_path,
    load_state,
    save_state,
    teardown,
)
from llmprov.sandbox.base import cached_base
from llmprov.sandbox.harness import host_is_running, ssh_answers
from llmprov.sandbox.plan import validate_machine_name

NAME_PREFIX = "sbx"
STATE_FILE = "state.json"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="boot throwaway Debian 12 hosts (systemd-nspawn) to deploy to over SSH",
        description=(
            "Boot Debian 12 hosts with systemd as PID 1 in systemd-nspawn containers on this "
            "machine (needs root). They stay up after `up` returns; `down` removes them and "
            "everything they changed. Point pyinfra at them with inventories/sandbox.py."
        ),
    )
    actions = parser.add_subparsers(dest="sandbox_action", required=True, metavar="ACTION")

    up = actions.add_parser("up", help="boot hosts and write the state file")
    up.add_argument("--hosts", type=_positive, default=1, help="how many hosts (default 1)")
    up.add_argument(
        "--prefix",
        type=_prefix,
        default=NAME_PREFIX,
        help=f"host names are PREFIX1..PREFIXN (default {NAME_PREFIX}); names are machine-wide, "
        "so a second sandbox beside a running one needs another prefix",
    )
    _add_state_dir(up)
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop the hosts and undo all changes")
    _add_state_dir(down)
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="show the hosts and whether they answer")
    _add_state_dir(status)
    status.set_defaults(func=_status)


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"where {STATE_FILE} lives (default: the directory of $LLMPROV_SANDBOX_STATE, "
        "else $LLMPROV_CACHE/sandbox or ~/.cache/llmprov/sandbox)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 254:
        raise argparse.ArgumentTypeError("must be between 1 and 254")
    return value


def _prefix(text: str) -> str:
    try:
        validate_machine_name(f"{text}254")
    except SandboxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _state_path(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return Path(args.state_dir) / STATE_FILE
    return default_state_path(os.environ, Path.home())


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _up(args: argparse.Namespace) -> int:
    path = _state_path(args)
    if path.exists():
        try:
            previous = load_state(path)
        except SandboxError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        running = [h.name for h in previous.hosts if host_is_running(h)]
        if running:
            print(
                f"error: a sandbox is already up ({', '.join(running)}; state {path}); "
                "run `llmprov sandbox down` first",
                file=sys.stderr,
            )
            return 1
        # A state whose hosts are all gone: clear what it left before booting anew.
        try:
            teardown(previous)
        except SandboxError as exc:
            print(f"warning: clearing the stale sandbox: {exc}", file=sys.stderr)
        path.unlink()

    cache_dir = default_cache_dir(os.environ, Path.home())
    names = [f"{args.prefix}{i}" for i in range(1, args.hosts + 1)]
    try:
        cached = cached_base(cache_dir)
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if cached is None:
        print(f"building the Debian base in {cache_dir} first (1-2 minutes)", file=sys.stderr)
    try:
        # The model inventories/sandbox.py serves; fetched once into the cache.
        demo_model(cache_dir)
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"booting {len(names)} host(s)", file=sys.stderr)
    previous_handler = signal.signal(signal.SIGTERM, _raise_interrupt)
    harness = Harness(cache_dir)
    try:
        harness.boot_many(names)
        state = harness.detach()
    except (SandboxError, KeyboardInterrupt) as exc:
        try:
            harness.close()
        except SandboxError as close_exc:
            print(f"error: {close_exc}", file=sys.stderr)
        if isinstance(exc, KeyboardInterrupt):
            print("interrupted; everything booted was torn down", file=sys.stderr)
            return 130
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    try:
        save_state(state, path)
    except OSError as exc:
        teardown(state)
        print(f"error: cannot write {path} ({exc}); the hosts were torn down", file=sys.stderr)
        return 1
    _print_hosts(state)
    print(f"state: {path}")
    if path != default_state_path(os.environ, Path.home()):
        print(f"use it with: LLMPROV_SANDBOX_STATE={path} pyinfra inventories/sandbox.py ...")
    return 0


def _down(args: argparse.Namespace) -> int:
    path = _state_path(args)
    if not path.exists():
        print(f"no sandbox is up (no {path})")
        return 0
    try:
        teardown(load_state(path))
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"the state file {path} is kept; run `down` again to retry", file=sys.stderr)
        return 1
    path.unlink()
    print("sandbox is down")
    return 0


def _status(args: argparse.Namespace) -> int:
    path = _state_path(args)
    try:
        state = load_state(path)
    except SandboxError as exc:
        print(str(exc))
        return 1
    healthy = True
    print(f"{'NAME':<14}{'ADDRESS':<16}{'RUNNING':<9}SSH")
    for host in state.hosts:
        running = host_is_running(host)
        ssh = running and ssh_answers(host.address)
        healthy = healthy and running and ssh
        print(f"{host.name:<14}{host.address:<16}{_yes(running):<9}{_yes(ssh)}")
    print(f"key: {state.hosts[0].ssh_key}" if state.hosts else "no hosts")
    return 0 if healthy and state.hosts else 1


def _print_hosts(state: SandboxState) -> None:
    for host in state.hosts:
        print(f"{host.name:<14}{host.address:<16}ssh -i {host.ssh_key} root@{host.address}")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
