"""Running the deploys of a validated inventory through pyinfra's API, and the per-operation results."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.api.state import State
from pyinfra.context import ctx_state

from llmprov.core.config import HostConfig
from llmprov.deploy.prepare import prepare_hosts
from llmprov.inventory import LoadedInventory, load_pyinfra_inventory


class DeployFailed(Exception):
    """The deploy could not run at all (no host reachable, for example)."""


@dataclass(frozen=True)
class OpResult:
    """One operation on one host after the run: pyinfra's own outcome, not log text."""

    name: str
    changed: bool
    success: bool
    planned_change: bool


@dataclass
class HostResult:
    host: str
    connected: bool
    ops: list[OpResult] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.connected and self.error is None and all(op.success for op in self.ops)

    @property
    def changed(self) -> list[OpResult]:
        return [op for op in self.ops if op.changed]


@dataclass
class DeployRun:
    results: dict[str, HostResult]
    dry: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())


DeployFunc = Callable[[HostConfig], None]


def _op_results(state: State, host: Any, executed: bool) -> list[OpResult]:
    out: list[OpResult] = []
    for op_hash in state.get_op_order():
        op_data = state.ops[host].get(op_hash)
        if op_data is None:
            continue
        meta = op_data.operation_meta
        names = state.get_op_meta(op_hash).names
        name = ", ".join(sorted(names)) if names else op_hash
        if executed and meta.is_complete():
            out.append(OpResult(name, meta.did_change(), meta.did_succeed(), meta.will_change))
        elif executed:
            # Not run because an earlier operation failed on this host.
            out.append(OpResult(name, False, False, meta.will_change))
        else:
            out.append(OpResult(name, False, True, meta.will_change))
    return out


def run_pyinfra(
    loaded: LoadedInventory,
    deploy: DeployFunc,
    dry: bool = False,
    parallel: int | None = None,
) -> DeployRun:
    """Connect to every host, add `deploy(cfg)` per host, run it (unless dry) and collect results."""
    logging.getLogger("pyinfra").setLevel(logging.WARNING)
    started = time.monotonic()
    # pyinfra hosts keep per-run state (operation order, facts): each run gets a fresh inventory.
    inventory = load_pyinfra_inventory(loaded.path)
    limit = [h for h in inventory if h.name in loaded.hosts]
    config = Config(PARALLEL=parallel or max(len(limit), 1))
    state = State(check_for_changes=True)
    state.init(inventory, config, initial_limit=limit)
    results: dict[str, HostResult] = {h.name: HostResult(h.name, connected=False) for h in limit}
    with ctx_state.use(state):
        try:
            connect_all(state)
        except PyinfraError as exc:  # every host failed to connect
            raise DeployFailed(
                f"no host could be reached ({exc}): " + ", ".join(h.name for h in limit)
            ) from exc
    connected = [h for h in limit if h in state.active_hosts]
    for h in limit:
        results[h.name].connected = h in connected
        if h not in connected:
            results[h.name].error = "could not connect"
    if not connected:
        raise DeployFailed("no host could be reached: " + ", ".join(h.name for h in limit))

    def per_host() -> None:
        from pyinfra.context import host

        try:
            deploy(loaded.hosts[host.name])
        except Exception as exc:
            # A host whose operations cannot be planned runs none of them; the others go on.
            results[host.name].error = f"{type(exc).__name__}: {exc}"
            state.failed_hosts.add(host)
            state.active_hosts.discard(host)

    try:
        prepare_hosts(state, per_host)
        if not dry and state.active_hosts:
            try:
                run_ops(state)
            except PyinfraError as exc:
                # pyinfra stops once no host is left; each failed host's results are collected below.
                if "No hosts remaining" not in str(exc):
                    raise
    finally:
        with ctx_state.use(state):
            disconnect_all(state)
    for h in connected:
        r = results[h.name]
        r.ops = _op_results(state, h, executed=not dry)
        if h in state.failed_hosts and r.error is None:
            failed = [op.name for op in r.ops if not op.success]
            r.error = f"failed at: {failed[0]}" if failed else "failed"
        r.seconds = time.monotonic() - started
    return DeployRun(results=results, dry=dry, seconds=time.monotonic() - started)
