"""Rendering of the Windows files for Ollama: the WinSW service definition and a configure script.

Ollama's standalone zip is unpacked under WINDOWS_INSTALL, one folder per version, with a `current`
junction; WinSW runs `current/ollama.exe serve` as the service `Ollama`, started at boot. Settings
go twice: into the service's own environment (what the server sees) and into machine-level
environment variables (what an `ollama` run by a user on the box sees). The firewall is opened for
the port only when the bind address is not loopback, and then only to the host's `allow_from` networks.
"""

from __future__ import annotations

from llmprov.core.config import HostConfig
from llmprov.core.render.base import RenderedFile, RenderError, render_template
from llmprov.core.render.engines import ollama_env
from llmprov.core.values import is_loopback

WINDOWS_ROOT = "C:/ProgramData/llmprov/ollama"
# Ollama's standalone zip is unpacked here, one folder per version, and run as a service by WinSW.
WINDOWS_INSTALL = "C:/Program Files/llmprov/ollama"
# Where the per-user installer (OllamaSetup.exe) is told to install, with /DIR=.
WINDOWS_INSTALLER_DIR = "C:/Program Files/Ollama"
WINDOWS_MODELS = f"{WINDOWS_ROOT}/models"
SERVICE_NAME = "Ollama"
# WinSW 2 takes its definition from the XML beside it with the same base name.
SERVICE_EXE = f"{WINDOWS_ROOT}/ollama-service.exe"
SERVICE_XML = f"{WINDOWS_ROOT}/ollama-service.xml"
CONFIGURE_SCRIPT = f"{WINDOWS_ROOT}/configure-ollama.ps1"
FIREWALL_RULE = "llmprov-ollama"
METHODS = ("zip-service", "installer")
# Every variable llmprov may set; those the inventory no longer sets are removed again.
MANAGED_ENV = (
    "OLLAMA_HOST",
    "OLLAMA_MODELS",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_KEEP_ALIVE",
    "OLLAMA_MAX_QUEUE",
    "OLLAMA_FLASH_ATTENTION",
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_CONTEXT_LENGTH",
)


class WindowsRenderError(RenderError):
    """A Windows file cannot be rendered as asked."""


def install_method(cfg: HostConfig) -> str:
    method = cfg.settings.ollama.install_method or "zip-service"
    if method not in METHODS:
        raise WindowsRenderError(
            f"{cfg.name}: ollama.install_method: {method!r} is not a Windows method; "
            f"use one of {', '.join(METHODS)}"
        )
    return method


def windows_env(cfg: HostConfig) -> list[tuple[str, str]]:
    """ollama_env, with the models kept under ProgramData unless the inventory says where.

    A service runs as LocalSystem, whose home (and so Ollama's default models folder) is inside
    C:/Windows/System32; nobody would look for models there.
    """
    env = ollama_env(cfg)
    if not any(k == "OLLAMA_MODELS" for k, _ in env):
        env.insert(1, ("OLLAMA_MODELS", WINDOWS_MODELS))
    return env


def render(cfg: HostConfig) -> list[RenderedFile]:
    o = cfg.settings.ollama
    method = install_method(cfg)
    env = windows_env(cfg)
    set_keys = {k for k, _ in env}
    context = {
        "host": cfg.name,
        "version": o.version,
        "method": method,
        "env": env,
        "unset_env": [k for k in MANAGED_ENV if k not in set_keys],
        "port": cfg.port,
        "open_firewall": not is_loopback(cfg.bind_address),
        # Validation requires allow_from for any bind beyond loopback (Ollama has no key).
        "allow_from": list(cfg.settings.allow_from),
        "firewall_rule": FIREWALL_RULE,
        "install_dir": WINDOWS_INSTALL,
        "root": WINDOWS_ROOT,
        "service": SERVICE_NAME,
    }
    files = [
        RenderedFile(CONFIGURE_SCRIPT, render_template("configure-ollama.ps1.j2", **context)),
    ]
    if method == "zip-service":
        files.insert(
            0, RenderedFile(SERVICE_XML, render_template("ollama-service.xml.j2", **context))
        )
    return files
