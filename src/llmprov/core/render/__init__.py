"""Rendering of the files a deploy uploads: a module per target format, the shared pieces beneath.

base (RenderedFile, Resolved, templates) and escape (one quoting function per format) are at the
bottom; engines builds command lines and environments as plain data; systemd, compose, launchd,
windows, k8s and prometheus each render one format from them; host picks the renderer for a host's
runtime and plan adds the offline defaults. No module imports one above it.
"""

from __future__ import annotations

from llmprov import __version__
from llmprov.core.render.base import (
    RenderedFile,
    RenderError,
    Resolved,
    env_value,
    render_template,
    templates_dir,
)
from llmprov.core.render.engines import (
    AMD_DEVICES,
    JETSON_DEVICES,
    NVIDIA_DEVICES,
    engine_env,
    gpu_devices,
    llamacpp_argv,
    ollama_env,
    pull_env,
    secret_env,
    secret_values,
    vendor_devices,
    vllm_argv,
)
from llmprov.core.render.host import render_host
from llmprov.core.render.systemd import UnitSpec, render_systemd

__all__ = [
    "AMD_DEVICES",
    "JETSON_DEVICES",
    "NVIDIA_DEVICES",
    "RenderError",
    "RenderedFile",
    "Resolved",
    "UnitSpec",
    "__version__",
    "engine_env",
    "env_value",
    "gpu_devices",
    "llamacpp_argv",
    "ollama_env",
    "pull_env",
    "render_host",
    "render_systemd",
    "render_template",
    "secret_env",
    "secret_values",
    "templates_dir",
    "vendor_devices",
    "vllm_argv",
]
