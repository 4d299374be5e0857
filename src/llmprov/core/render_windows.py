"""Rendering of the Windows files for Ollama: a PowerShell install script and a service definition."""

from __future__ import annotations

from llmprov.core.config import HostConfig
from llmprov.core.render import RenderedFile, ollama_env, render_template

WINDOWS_ROOT = "C:/ProgramData/llmprov/ollama"
# Ollama's standalone zip is unpacked here, one folder per version, and run as a service by WinSW.
WINDOWS_INSTALL = "C:/Program Files/llmprov/ollama"
SERVICE_NAME = "Ollama"


def _loopback(bind: str) -> bool:
    return bind.startswith("127.") or bind == "::1"


def render(cfg: HostConfig) -> list[RenderedFile]:
    o = cfg.settings.ollama
    env = ollama_env(cfg)
    context = {
        "host": cfg.name,
        "version": o.version,
        "method": o.install_method or "zip-service",
        "env": env,
        "port": cfg.port,
        "open_firewall": not _loopback(cfg.bind),
        "install_dir": WINDOWS_INSTALL,
        "root": WINDOWS_ROOT,
        "service": SERVICE_NAME,
    }
    return [
        RenderedFile(
            f"{WINDOWS_ROOT}/ollama-service.xml",
            render_template("ollama-service.xml.j2", **context),
        ),
        RenderedFile(
            f"{WINDOWS_ROOT}/configure-ollama.ps1",
            render_template("configure-ollama.ps1.j2", **context),
        ),
    ]
