"""Rendering of systemd units, drop-ins and environment files for an engine on a Linux host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmprov.core.config import HostConfig
from llmprov.core.layout import HF_PULL_ENV, OLLAMA_HOME, EngineLayout, model_path
from llmprov.core.render.base import RenderedFile, Resolved, env_value, render_template
from llmprov.core.render.engines import (
    engine_env,
    llamacpp_argv,
    ollama_env,
    pull_env,
    secret_env,
    vendor_devices,
    vllm_argv,
)


@dataclass(frozen=True)
class UnitSpec:
    description: str
    documentation: str
    user: str
    # The command as argv; the unit template quotes it for systemd, not for a shell.
    exec_start: Sequence[str]
    working_directory: str
    env_file: str | None
    environment: Sequence[tuple[str, str]]
    writable_paths: Sequence[str]
    gpu_devices: Sequence[str]
    supplementary_groups: Sequence[str] = ()
    # AMD and Jetson device nodes are group-owned (render, video): a private user namespace would
    # map those groups away, so such units keep the host's users.
    private_users: bool = True
    deny_wx: bool = False
    timeout_start: int = 300
    # "pid" hides /proc/meminfo and /proc/cpuinfo, which vLLM reads (psutil, py-cpuinfo) at start.
    proc_subset: str = "pid"


def _systemd_unit(cfg: HostConfig, resolved: Resolved) -> UnitSpec:
    layout = EngineLayout(cfg.engine)
    vendor = cfg.settings.gpu.vendor
    devices = vendor_devices(vendor, resolved.gpu_count)
    if cfg.engine == "vllm":
        return UnitSpec(
            description=f"vLLM OpenAI-compatible server ({cfg.served_model_name})",
            documentation="https://docs.vllm.ai/",
            user=cfg.service_user,
            exec_start=tuple(
                vllm_argv(cfg, f"{layout.current}/bin/python", model_path(cfg), resolved.gpu_count)
            ),
            working_directory=layout.state_dir,
            env_file=layout.env_file,
            environment=[("HOME", layout.state_dir)],
            writable_paths=[layout.state_dir, layout.cache_dir],
            gpu_devices=devices,
            timeout_start=900,
            proc_subset="all",
        )
    if cfg.engine == "llamacpp":
        return UnitSpec(
            description=f"llama.cpp server ({cfg.served_model_name})",
            documentation="https://github.com/ggml-org/llama.cpp/tree/master/tools/server",
            user=cfg.service_user,
            exec_start=tuple(
                llamacpp_argv(cfg, f"{layout.current}/bin/llama-server", model_path(cfg))
            ),
            working_directory=layout.state_dir,
            env_file=layout.env_file,
            environment=[("HOME", layout.state_dir)],
            writable_paths=[layout.state_dir],
            gpu_devices=devices,
            deny_wx=not devices,
        )
    return UnitSpec(
        description="Ollama Service",
        documentation="https://github.com/ollama/ollama/blob/main/docs/linux.md",
        user=cfg.service_user,
        exec_start=tuple([f"{layout.current}/bin/ollama", "serve"]),
        working_directory=OLLAMA_HOME,
        env_file=None,
        environment=[("HOME", OLLAMA_HOME)],
        writable_paths=[
            OLLAMA_HOME,
            *([cfg.settings.ollama.models_dir] if cfg.settings.ollama.models_dir else []),
        ],
        gpu_devices=devices,
        supplementary_groups=("render", "video") if vendor != "none" else (),
        private_users=vendor not in ("amd", "jetson"),
    )


def render_systemd(cfg: HostConfig, resolved: Resolved) -> list[RenderedFile]:
    layout = EngineLayout(cfg.engine)
    unit = _systemd_unit(cfg, resolved)
    files = [
        RenderedFile(layout.unit_path, render_template("service.j2", host=cfg.name, unit=unit)),
    ]
    if cfg.engine == "ollama":
        files.append(
            RenderedFile(
                layout.dropin_path,
                render_template("ollama-dropin.conf.j2", host=cfg.name, env=ollama_env(cfg)),
            )
        )
    else:
        env = (
            engine_env(cfg, resolved, layout.cache_dir) + list(resolved.extra_env) + secret_env(cfg)
        )
        files.append(
            RenderedFile(
                layout.env_file,
                render_template(
                    "env.j2",
                    host=cfg.name,
                    unit_name=layout.unit_name,
                    env=[(k, env_value(v)) for k, v in env],
                ),
                mode=0o600,
            )
        )
    return files + pull_env_files(cfg)


def pull_env_files(cfg: HostConfig) -> list[RenderedFile]:
    """The pull step's environment file, where the host has an HF token (mode 0600, root's)."""
    env = pull_env(cfg)
    if not env:
        return []
    text = render_template(
        "env.j2",
        host=cfg.name,
        unit_name="the Hugging Face pull step",
        env=[(k, env_value(v)) for k, v in env],
    )
    return [RenderedFile(HF_PULL_ENV, text, mode=0o600)]
