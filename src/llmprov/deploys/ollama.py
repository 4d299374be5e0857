"""Ollama as a packaged pyinfra deploy: `from llmprov.deploys import ollama; ollama.deploy(...)`."""

from __future__ import annotations

from typing import Any

from llmprov.deploys._engine import run_engine_deploy


def deploy(**settings: Any) -> None:
    """Deploy Ollama on the current pyinfra host, e.g. `ollama.deploy(model="ollama://llama3.2:3b", bind="0.0.0.0")`.

    `settings` are llmprov's host keys (model, port, bind, runtime, ollama={...}, ...) and win over
    the host's inventory data; pyinfra's global arguments (`_sudo=True`) apply to every operation.
    They are validated as `llmprov validate` does: a bad one raises PyinfraError naming host and
    field before any operation is added.
    """
    run_engine_deploy("ollama", settings)
