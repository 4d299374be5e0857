"""What the packaged deploys share: the current host's data plus keyword settings, validated."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyinfra.api.deploy import deploy as pyinfra_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import ctx_host, ctx_state, host, state

from llmprov.core.config import HostConfig
from llmprov.core.matrix_data import MatrixDataError
from llmprov.core.validate import validate_host
from llmprov.inventory import controller_files
from llmprov.matrix_cache import current_matrix


def host_config(engine: str, settings: Mapping[str, Any]) -> HostConfig:
    """The current host's config for `engine`: its data with `settings` over it, validated as
    `llmprov validate` does; PyinfraError listing every fault by host and field."""
    if "engine" in settings:
        raise PyinfraError(
            f"{host.name}: engine: set by the deploy called ({engine}), not a setting"
        )
    base = state.cwd or os.getcwd()
    # Validation and the vLLM resolver see the releases a `llmprov matrix refresh` stored.
    with contextlib.suppress(MatrixDataError):
        current_matrix()
    data = {**host.data.dict(), **settings}
    result = validate_host(host.name, data, controller_files(Path(base)), engine, base)
    if isinstance(result, list):
        raise PyinfraError("invalid host data:\n" + "\n".join(str(e) for e in result))
    return result


@functools.cache
def _wrapped(engine: str) -> Callable[..., Any]:
    """The engine's deploy under pyinfra's @deploy: its name groups the operations in pyinfra's
    output, and pyinfra's global arguments (`_sudo=True`, ...) given to it apply to each one."""

    def run(**settings: Any) -> None:
        # Looked up at call time, so that tests (and wrappers) can stand in for the engine deploys.
        from llmprov.deploy import engines

        engines.deploy_host(host_config(engine, settings))

    run.__name__ = run.__qualname__ = f"deploy_{engine}"
    wrapped: Callable[..., Any] = pyinfra_deploy(f"llmprov {engine}")(run)
    return wrapped


def run_engine_deploy(engine: str, settings: dict[str, Any]) -> None:
    """Run the engine's deploy on the current host, inside pyinfra's deploy context."""
    if not (ctx_state.isset() and ctx_host.isset()):
        raise PyinfraError(
            f"llmprov.deploys.{engine}.deploy() adds operations to a pyinfra run: call it from a "
            "deploy file (`pyinfra INVENTORY deploy.py`) or inside pyinfra.api.add_deploy"
        )
    _wrapped(engine)(**settings)
