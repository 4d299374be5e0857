"""Hosts are planned side by side (their fact round trips overlap), the first one alone, each with
itself as pyinfra's current host and the same operation identities as one after another."""

from __future__ import annotations

import time

import gevent
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.context import ctx_state, host
from pyinfra.operations import server

from llmprov.deploy.prepare import prepare_hosts

NAMES = [f"@fake/h{i}" for i in range(8)]


def state_of(names: list[str]) -> State:
    inventory = Inventory(([(n, {"fake_delay": 0, "fake_delay_jitter": 0}) for n in names], {}))
    state = State(inventory, Config(PARALLEL=len(names)))
    with ctx_state.use(state):
        connect_all(state)
    return state


def test_hosts_are_planned_in_parallel_after_the_first_alone() -> None:
    state = state_of(NAMES)
    events: list[tuple[str, str]] = []

    def per_host() -> None:
        events.append(("start", host.name))
        gevent.sleep(0.2)  # a fact's SSH round trip
        events.append(("end", host.name))

    started = time.monotonic()
    prepare_hosts(state, per_host)
    elapsed = time.monotonic() - started
    assert elapsed < 0.2 * len(NAMES) / 2, f"{elapsed:.2f} s: the round trips did not overlap"
    assert events[:2] == [("start", NAMES[0]), ("end", NAMES[0])], "the first host alone"
    assert sorted(n for kind, n in events if kind == "end") == sorted(NAMES)


def test_parallel_planning_gives_each_host_its_own_operations_in_order() -> None:
    state = state_of(NAMES[:4])

    def per_host() -> None:
        gevent.sleep(0.01 * (hash(host.name) % 3))  # interleave the hosts differently
        server.shell(name=f"first on {host.name}", commands=[f"echo 1 {host.name}"])
        gevent.sleep(0.01)
        server.shell(name=f"second on {host.name}", commands=[f"echo 2 {host.name}"])

    prepare_hosts(state, per_host)
    order = state.get_op_order()
    assert len(order) == 2, "op i of every host is one operation, whatever the interleaving"
    hosts = [h.name for h in state.inventory]
    assert state.get_op_meta(order[0]).names == {f"first on {h}" for h in hosts}
    assert state.get_op_meta(order[1]).names == {f"second on {h}" for h in hosts}
