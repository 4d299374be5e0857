"""llama.cpp as a packaged pyinfra deploy: `from llmprov.deploys import llamacpp; llamacpp.deploy(...)`."""

from __future__ import annotations

from typing import Any

from llmprov.deploys._engine import run_engine_deploy


def deploy(**settings: Any) -> None:
    """Deploy llama.cpp on the current pyinfra host, e.g. `llamacpp.deploy(model="hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf")`.

    `settings` are llmprov's host keys (model, port, bind, runtime, llamacpp={...}, ...) and win over
    the host's inventory data; pyinfra's global arguments (`_sudo=True`) apply to every operation.
    They are validated as `llmprov validate` does: a bad one raises PyinfraError naming host and
    field before any operation is added.
    """
    run_engine_deploy("llamacpp", settings)
