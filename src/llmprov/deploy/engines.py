"""The one entry a deploy goes through: pick the engine's deploy for a validated host config."""

from __future__ import annotations

from llmprov.core.config import HostConfig


class UnsupportedTarget(Exception):
    """This engine, runtime and OS combination has no deploy yet."""


def deploy_host(cfg: HostConfig) -> None:
    if cfg.os == "linux" and cfg.runtime == "systemd" and cfg.engine == "llamacpp":
        from llmprov.deploy.llamacpp import deploy_llamacpp

        deploy_llamacpp(cfg)
        return
    raise UnsupportedTarget(
        f"{cfg.name}: no deploy for {cfg.engine} on {cfg.os} with {cfg.runtime} yet"
    )
