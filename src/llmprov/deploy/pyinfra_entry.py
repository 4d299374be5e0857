"""For deploy files run by the pyinfra CLI: the current host's validated config, or a clear error."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import host, state

from llmprov.core.config import HostConfig
from llmprov.core.matrix_data import MatrixDataError
from llmprov.core.validate import validate_host
from llmprov.inventory import controller_files
from llmprov.matrix_cache import current_matrix


def current_host_config(engine: str) -> HostConfig:
    base = state.cwd or os.getcwd()
    # Validation and the vLLM resolver see the releases a `llmprov matrix refresh` stored.
    with contextlib.suppress(MatrixDataError):
        current_matrix()
    result = validate_host(host.name, host.data.dict(), controller_files(Path(base)), engine, base)
    if isinstance(result, list):
        raise PyinfraError("invalid host data:\n" + "\n".join(str(e) for e in result))
    return result
