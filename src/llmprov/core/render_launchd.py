"""Rendering of a launchd property list for a macOS host (Ollama, or llama-server)."""

from __future__ import annotations

from llmprov.core.config import HostConfig
from llmprov.core.layout import model_path
from llmprov.core.render import RenderedFile, llamacpp_argv, ollama_env, render_template

# LaunchAgents start at the login of the user the service belongs to, which is how Ollama's app and
# `brew services` run it on macOS (it needs that user's keychain-free home for its models).
LAUNCH_AGENTS = "~/Library/LaunchAgents"
MAC_OLLAMA_BIN = {
    "brew": "/opt/homebrew/bin/ollama",
    "app": "/Applications/Ollama.app/Contents/Resources/ollama",
}
# launchd does not expand ~ in paths it opens, so logs go to a fixed folder.
LOG_DIR = "/usr/local/var/log"
MAC_LLAMACPP_ROOT = "/opt/llmprov/llamacpp/current/bin/llama-server"


def label(cfg: HostConfig) -> str:
    return f"com.llmprov.{cfg.engine}"


def plist_path(cfg: HostConfig) -> str:
    return f"{LAUNCH_AGENTS}/{label(cfg)}.plist"


def render(cfg: HostConfig) -> list[RenderedFile]:
    if cfg.engine == "ollama":
        method = cfg.settings.ollama.install_method or "brew"
        argv = [MAC_OLLAMA_BIN.get(method, MAC_OLLAMA_BIN["brew"]), "serve"]
        env = ollama_env(cfg)
        description = "Ollama"
    else:
        argv = llamacpp_argv(cfg, MAC_LLAMACPP_ROOT, model_path(cfg))
        env = []
        description = "llama.cpp server"
    text = render_template(
        "launchd.plist.j2",
        host=cfg.name,
        description=description,
        label=label(cfg),
        argv=argv,
        env=env,
        log_dir=LOG_DIR,
    )
    return [RenderedFile(plist_path(cfg), text)]
