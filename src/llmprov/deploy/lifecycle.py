"""Rollback and uninstall of a Linux engine deploy, from what the host's state record says it holds."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pyinfra.context import host
from pyinfra.operations import files, systemd

from llmprov.core.config import HostConfig
from llmprov.core.layout import EngineLayout, model_path
from llmprov.core.render_plan import plan_host
from llmprov.core.upgrade import STATE_PATH, UNRECORDED, StateError, forget, record_rollback
from llmprov.deploy.common import any_change
from llmprov.deploy.upgrade import (
    Readiness,
    installed_versions,
    now,
    read_state,
    switch_and_prove,
    write_state,
)


class LifecycleError(Exception):
    """A host cannot be rolled back or uninstalled as asked; the message names host and reason."""


def _linux_systemd(cfg: HostConfig, action: str) -> None:
    if cfg.os != "linux" or cfg.runtime != "systemd" or cfg.cluster:
        raise LifecycleError(
            f"{cfg.name}: {action} covers single Linux hosts run by systemd; this host is "
            f"{cfg.engine} on {cfg.os} with {cfg.runtime}"
            + (" in a cluster" if cfg.cluster else "")
        )


def _readiness(cfg: HostConfig, version: str, key: str) -> Readiness:
    if cfg.engine == "llamacpp":
        from llmprov.deploy.llamacpp import readiness as llamacpp_ready

        return llamacpp_ready(key)
    if cfg.engine == "vllm":
        from llmprov.deploy.vllm import readiness as vllm_ready

        return vllm_ready(cfg, key)
    from llmprov.deploy.ollama import READY_TIMEOUT_S, ollama_readiness

    return ollama_readiness(version, READY_TIMEOUT_S)


def rollback_host(cfg: HostConfig) -> None:
    """Switch `current` back to the most recent earlier version the record keeps, and prove it.

    The same protocol as an upgrade: the unit restarts on the earlier version and, if that does not
    answer, `current` goes back to the version it came from. The record then names the earlier
    version as current and the one rolled back from as the earlier one.
    """
    _linux_systemd(cfg, "rollback")
    layout = EngineLayout(cfg.engine)
    installed = installed_versions(cfg.engine)
    try:
        new, target = record_rollback(read_state(cfg), cfg.engine, now(), installed.installed)
    except StateError as exc:
        raise LifecycleError(f"{cfg.name}: rollback: {exc}") from exc
    ready = _readiness(cfg, target.version, target.key)
    if target.version == UNRECORDED:
        # Deployed before records existed: its version is unknown, any answer will do.
        ready = replace(ready, expect=ready.serving)
    switch_and_prove(cfg, layout, target.key, installed, [], ready, discard_failed=False)
    write_state(new, f"rollback of {cfg.engine} to {target.key}")


@dataclass(frozen=True)
class Removal:
    """What an uninstall removes from a host."""

    files: list[str]
    links: list[str]
    folders: list[str]


def removal(cfg: HostConfig, keep_models: bool) -> Removal:
    """What the deploy rendered and the engine's own folders, and nothing else.

    Files come from the same renderer the deploy uploads from, so nothing llmprov did not write
    is named; the models folder (or Ollama's models) stays unless `keep_models` is False.
    """
    layout = EngineLayout(cfg.engine)
    rendered = sorted({f.path for f in plan_host(cfg)})
    links: list[str] = []
    folders = [layout.root, layout.cache_dir, f"{layout.unit_path}.d"]
    if cfg.engine == "vllm":
        from llmprov.core.vllm_env import TOOLS_DIR, UV_CACHE_DIR

        folders += [TOOLS_DIR, UV_CACHE_DIR]
    if cfg.engine == "ollama":
        from llmprov.deploy.ollama import CLI_LINK

        links.append(CLI_LINK)
        if not keep_models:
            folders.append(model_path(cfg))
    elif not keep_models:
        folders.append(layout.state_dir)
    return Removal(rendered, links, folders)


def uninstall_host(cfg: HostConfig, keep_models: bool = True) -> None:
    """Stop and remove the engine's unit, settings, installed versions, caches and record entry."""
    _linux_systemd(cfg, "uninstall")
    layout = EngineLayout(cfg.engine)
    ops: list[Any] = [
        systemd.service(
            name=f"Stop {layout.unit_name}", service=layout.unit_name, running=False, enabled=False
        )
    ]
    gone = removal(cfg, keep_models)
    ops += [files.file(name=f"Remove {p}", path=p, present=False) for p in gone.files]
    ops += [files.link(name=f"Remove {p}", path=p, present=False) for p in gone.links]
    ops += [files.directory(name=f"Remove {p}", path=p, present=False) for p in gone.folders]
    systemd.daemon_reload(name="Reload systemd", _if=lambda: any_change(ops))
    state = read_state(cfg)
    if cfg.engine not in state:
        host.noop(f"{STATE_PATH} records no {cfg.engine} deploy")
        return
    rest = forget(state, cfg.engine)
    if rest:
        write_state(rest, f"the removal of {cfg.engine}")
    else:
        files.file(name=f"Remove {STATE_PATH}", path=STATE_PATH, present=False)
