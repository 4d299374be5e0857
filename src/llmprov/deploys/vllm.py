"""vLLM as a packaged pyinfra deploy: `from llmprov.deploys import vllm; vllm.deploy(...)`."""

from __future__ import annotations

from typing import Any

from llmprov.deploys._engine import run_engine_deploy


def deploy(**settings: Any) -> None:
    """Deploy vLLM on the current pyinfra host, e.g. `vllm.deploy(model="hf://HuggingFaceTB/SmolLM2-1.7B-Instruct@main", port=8000)`.

    `settings` are llmprov's host keys (model, port, bind, runtime, vllm={...}, ...) and win over
    the host's inventory data; pyinfra's global arguments (`_sudo=True`) apply to every operation.
    They are validated as `llmprov validate` does: a bad one raises PyinfraError naming host and
    field before any operation is added.
    """
    run_engine_deploy("vllm", settings)
