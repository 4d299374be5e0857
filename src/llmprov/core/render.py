"""Rendering of the files a deploy uploads (units, drop-ins, env files, compose, plists, Windows scripts)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from llmprov import __version__
from llmprov.core.config import HostConfig
from llmprov.core.layout import OLLAMA_HOME, EngineLayout, model_path

NVIDIA_DEVICES: tuple[str, ...] = (
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)


class RenderError(ValueError):
    """A file cannot be rendered from what is known; the message is `host: field: reason`."""


@dataclass(frozen=True)
class RenderedFile:
    """One file as the deploy uploads it: its path on the host, text, mode and owner."""

    path: str
    content: str
    mode: int = 0o644
    owner: str = "root"


@dataclass(frozen=True)
class Resolved:
    """Values a deploy learns from facts and the matrix, passed in so rendering probes nothing.

    `vllm_version` pins the compose image; `gpu_count` is the detected or stated count.
    """

    vllm_version: str | None = None
    vllm_cpu: bool = True
    gpu_count: int = 0
    llamacpp_image_tag: str | None = None
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class UnitSpec:
    description: str
    documentation: str
    user: str
    exec_start: str
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


def templates_dir() -> Path:
    """The templates/ folder: top level in a source checkout, package data when installed."""
    checkout = Path(__file__).resolve().parents[3] / "templates"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("llmprov") / "templates"))


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    # A JSON string is a YAML double-quoted scalar; unlike `tojson` this keeps quotes readable.
    env.filters["q"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env


def render_template(name: str, **context: Any) -> str:
    return _env().get_template(name).render(llmprov_version=__version__, **context)


def env_value(value: str) -> str:
    """Quote a value for a systemd EnvironmentFile and a compose .env alike."""
    if value and all(c.isalnum() or c in "._-/:,@+=" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


# AMD (ROCm): the compute interface and the render nodes; Jetson: its memory and GPU host nodes.
AMD_DEVICES: tuple[str, ...] = ("/dev/kfd", "char-drm")
JETSON_DEVICES: tuple[str, ...] = (
    "/dev/nvmap",
    "/dev/nvhost-ctrl",
    "/dev/nvhost-ctrl-gpu",
    "/dev/nvhost-prof-gpu",
    "/dev/nvhost-gpu",
    "/dev/nvhost-as-gpu",
)


def vendor_devices(vendor: str, count: int) -> list[str]:
    """The device nodes a GPU vendor's runtime opens; none without GPUs."""
    if vendor == "amd":
        return list(AMD_DEVICES)
    if vendor == "jetson":
        return list(JETSON_DEVICES)
    return gpu_devices(count) if vendor == "nvidia" else []


def gpu_devices(count: int) -> list[str]:
    return [f"/dev/nvidia{i}" for i in range(count)] + list(NVIDIA_DEVICES) if count else []


def _join(argv: Sequence[str]) -> str:
    return shlex.join(argv)


# ---------------------------------------------------------------- engine command lines


def vllm_argv(cfg: HostConfig, python: str, model: str, gpu_count: int) -> list[str]:
    v = cfg.settings.vllm
    tp = v.tensor_parallel_size or max(gpu_count, 1)
    argv = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model,
        "--served-model-name", cfg.served_model_name,
        "--host", cfg.bind,
        "--port", str(cfg.port),
        "--tensor-parallel-size", str(tp),
        "--pipeline-parallel-size", str(v.pipeline_parallel_size),
        "--dtype", v.dtype,
    ]  # fmt: skip
    if v.max_model_len:
        argv += ["--max-model-len", str(v.max_model_len)]
    if gpu_count:
        argv += ["--gpu-memory-utilization", str(v.gpu_memory_utilization)]
    if v.enforce_eager:
        argv.append("--enforce-eager")
    return argv + list(v.extra_args)


def llamacpp_argv(cfg: HostConfig, binary: str, model: str) -> list[str]:
    s = cfg.settings.llamacpp
    argv = [
        binary,
        "--model", model,
        "--alias", cfg.served_model_name,
        "--host", cfg.bind,
        "--port", str(cfg.port),
        "--parallel", str(s.parallel),
        "--ctx-size", str(s.ctx_size),
        "--metrics",
        "--no-webui",
    ]  # fmt: skip
    if s.threads:
        argv += ["--threads", str(s.threads)]
    return argv + list(s.extra_args)


def ollama_env(cfg: HostConfig) -> list[tuple[str, str]]:
    """The OLLAMA_* settings; only what the inventory sets, so Ollama's own defaults apply otherwise."""
    o = cfg.settings.ollama
    host = f"[{cfg.bind}]" if ":" in cfg.bind else cfg.bind
    env = [("OLLAMA_HOST", f"{host}:{cfg.port}")]
    if o.models_dir:
        env.append(("OLLAMA_MODELS", o.models_dir))
    pairs: list[tuple[str, object]] = [
        ("OLLAMA_NUM_PARALLEL", o.num_parallel),
        ("OLLAMA_MAX_LOADED_MODELS", o.max_loaded_models),
        ("OLLAMA_KEEP_ALIVE", o.keep_alive),
        ("OLLAMA_MAX_QUEUE", o.max_queue),
        ("OLLAMA_KV_CACHE_TYPE", o.kv_cache_type),
        ("OLLAMA_CONTEXT_LENGTH", o.context_length),
    ]
    if o.flash_attention is not None:
        pairs.append(("OLLAMA_FLASH_ATTENTION", "1" if o.flash_attention else "0"))
    env += [(k, str(v)) for k, v in pairs if v is not None]
    return env


def secret_env(cfg: HostConfig) -> list[tuple[str, str]]:
    key_var = {"vllm": "VLLM_API_KEY", "llamacpp": "LLAMA_API_KEY"}.get(cfg.engine)
    env: list[tuple[str, str]] = []
    if cfg.api_key and key_var:
        env.append((key_var, cfg.api_key))
    if cfg.hf_token:
        env.append(("HF_TOKEN", cfg.hf_token))
    return env


def engine_env(cfg: HostConfig, resolved: Resolved, cache_dir: str) -> list[tuple[str, str]]:
    """Non-secret environment each engine needs to run offline and keep its caches in place."""
    if cfg.engine == "vllm":
        env = [
            ("HF_HUB_OFFLINE", "1"),
            ("VLLM_CACHE_ROOT", f"{cache_dir}/vllm"),
            ("XDG_CACHE_HOME", cache_dir),
            ("VLLM_NO_USAGE_STATS", "1"),
            ("DO_NOT_TRACK", "1"),
        ]
        if not resolved.gpu_count:
            env.append(("VLLM_CPU_KVCACHE_SPACE", str(cfg.settings.vllm.cpu_kvcache_space_gib)))
        return env
    return []


# ---------------------------------------------------------------- systemd


def _systemd_unit(cfg: HostConfig, resolved: Resolved) -> UnitSpec:
    layout = EngineLayout(cfg.engine)
    vendor = cfg.settings.gpu.vendor
    devices = vendor_devices(vendor, resolved.gpu_count)
    if cfg.engine == "vllm":
        return UnitSpec(
            description=f"vLLM OpenAI-compatible server ({cfg.served_model_name})",
            documentation="https://docs.vllm.ai/",
            user=cfg.service_user,
            exec_start=_join(
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
            exec_start=_join(
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
        exec_start=_join([f"{layout.current}/bin/ollama", "serve"]),
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
    return files


# ---------------------------------------------------------------- dispatch


def render_host(cfg: HostConfig, resolved: Resolved) -> list[RenderedFile]:
    """Every file that a deploy of `cfg` uploads, in a stable order."""
    from llmprov.core import render_compose, render_launchd, render_windows

    if cfg.runtime == "systemd":
        return render_systemd(cfg, resolved)
    if cfg.runtime == "compose":
        return render_compose.render(cfg, resolved)
    if cfg.runtime == "launchd":
        return render_launchd.render(cfg)
    return render_windows.render(cfg)
