"""The one entry a deploy goes through: pick the deploy for a validated host's engine, OS and runtime."""

from __future__ import annotations

import importlib

from llmprov.core.config import HostConfig

# (engine, os, runtime) -> "module:function" taking the HostConfig; imported only when used.
DEPLOYS: dict[tuple[str, str, str], str] = {
    ("llamacpp", "linux", "systemd"): "llmprov.deploy.llamacpp:deploy_llamacpp",
    ("vllm", "linux", "systemd"): "llmprov.deploy.vllm:deploy_vllm",
    ("ollama", "linux", "systemd"): "llmprov.deploy.ollama:deploy_ollama",
    ("vllm", "linux", "compose"): "llmprov.deploy.compose:deploy_compose",
    ("ollama", "linux", "compose"): "llmprov.deploy.compose:deploy_compose",
    ("llamacpp", "linux", "compose"): "llmprov.deploy.compose:deploy_compose",
    ("ollama", "macos", "launchd"): "llmprov.deploy.ollama_macos:deploy_ollama_macos",
    ("ollama", "windows", "windows-service"): "llmprov.deploy.ollama_windows:deploy_ollama_windows",
}


# A node of a serving cluster (cluster: in its data) is deployed as such, whatever its engine's entry.
CLUSTER_DEPLOY = "llmprov.deploy.ray_cluster:deploy_cluster_node"


class UnsupportedTarget(Exception):
    """This engine, OS and runtime combination has no deploy."""


def deploy_host(cfg: HostConfig) -> None:
    target = CLUSTER_DEPLOY if cfg.cluster else DEPLOYS.get((cfg.engine, cfg.os, cfg.runtime))
    if target is None:
        raise UnsupportedTarget(
            f"{cfg.name}: no deploy for {cfg.engine} on {cfg.os} with {cfg.runtime}"
        )
    module, _, func = target.partition(":")
    getattr(importlib.import_module(module), func)(cfg)
