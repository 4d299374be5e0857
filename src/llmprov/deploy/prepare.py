"""Planning every host's operations side by side, as pyinfra's own CLI does, not one host after another.

pyinfra's API `add_deploy` runs the deploy function for each host in turn, and planning is where a
deploy reads facts: one SSH round trip each, dozens per host. With N hosts that is N times one
host's planning, however parallel the execution after it. pyinfra's CLI instead plans each host in
its own greenlet (pyinfra_cli.util._parallel_load_hosts); `prepare_hosts` does the same for the API.
In API mode an operation's identity is its position in its host's sequence, so the order the
greenlets interleave in does not change the plan.
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra.api.state import State
from pyinfra.context import ctx_config, ctx_host, ctx_state


def prepare_hosts(state: State, per_host: Callable[[], None]) -> None:
    """Run `per_host()` with each active host as pyinfra's current host, the hosts in parallel.

    The first host is planned alone: it fills what the controller computes once for every host
    (model conversions, digests) before the others ask for it. `per_host` handles its own errors.
    """
    hosts = [h for h in state.inventory if h in state.active_hosts]  # inventory order

    def plan(one: object) -> None:
        with ctx_config.use(state.config.copy()), ctx_host.use(one):
            per_host()

    with ctx_state.use(state):
        for first in hosts[:1]:
            plan(first)
        greenlets = [state.pool.spawn(plan, h) for h in hosts[1:]]
        for greenlet in greenlets:
            greenlet.get()  # waits; re-raises what the greenlet raised
