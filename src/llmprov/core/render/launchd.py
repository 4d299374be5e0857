"""Rendering of a launchd property list for a macOS host (Ollama, or llama-server).

Ollama runs as a LaunchDaemon in the system domain, as the role account `_ollama`: it starts at
boot without anyone logged in (a Mac serving models is usually headless), and like the Linux unit it
runs as its own user with its own home for keys and models. Its settings are the job's
EnvironmentVariables, which is the environment the server sees; `launchctl setenv` would reach only
the GUI session of whoever is logged in. llama-server keeps a LaunchAgent of the login user.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llmprov.core.config import HostConfig
from llmprov.core.layout import model_path
from llmprov.core.render import escape
from llmprov.core.render.base import RenderedFile, RenderError, render_template
from llmprov.core.render.engines import llamacpp_argv, ollama_env

LAUNCH_AGENTS = "~/Library/LaunchAgents"
LAUNCH_DAEMONS = "/Library/LaunchDaemons"
# Ollama's install root on macOS: one folder per version holding Ollama.app, and `current`.
MAC_OLLAMA_ROOT = "/opt/llmprov/ollama"
MAC_APP_BINARY = "Ollama.app/Contents/Resources/ollama"
# The Homebrew cask puts the app where a user would; its server binary is inside it.
BREW_CASK = "ollama-app"
BREW_APP_BINARY = f"/Applications/{MAC_APP_BINARY}"
BREW_BIN = {"aarch64": "/opt/homebrew/bin/brew", "x86_64": "/usr/local/bin/brew"}
MAC_OLLAMA_BIN = {
    "app": f"{MAC_OLLAMA_ROOT}/current/{MAC_APP_BINARY}",
    "brew": BREW_APP_BINARY,
}
# The role account the daemon runs as (underscore names are the macOS convention for services),
# its home (HOME for the server: ~/.ollama holds its key and, by default, its models).
MAC_OLLAMA_USER = "_ollama"
MAC_OLLAMA_HOME = "/usr/local/var/ollama"
# Role accounts take IDs below 500 (hidden from the login window); Apple's own use most of 200-299.
ROLE_ID_RANGE = range(300, 400)
# launchd does not expand ~ in paths it opens, so logs go to a fixed folder.
LOG_DIR = "/usr/local/var/log"
MAC_LLAMACPP_ROOT = "/opt/llmprov/llamacpp/current/bin/llama-server"


class MacRenderError(RenderError):
    """A macOS file cannot be rendered as asked."""


def label(cfg: HostConfig) -> str:
    return f"com.llmprov.{cfg.engine}"


def plist_path(cfg: HostConfig) -> str:
    folder = LAUNCH_DAEMONS if cfg.engine == "ollama" else LAUNCH_AGENTS
    return f"{folder}/{label(cfg)}.plist"


def ollama_method(cfg: HostConfig) -> str:
    method = cfg.settings.ollama.install_method or "app"
    if method not in MAC_OLLAMA_BIN:
        raise MacRenderError(
            f"{cfg.name}: ollama.install_method: {method!r} is not a macOS method; "
            f"use one of {', '.join(MAC_OLLAMA_BIN)}"
        )
    return method


def ollama_log_dir() -> str:
    return f"{LOG_DIR}/ollama"


def free_role_id(used: Iterable[int]) -> int:
    """The lowest role-account ID that is neither a user's nor a group's (one ID serves both)."""
    taken = set(used)
    for candidate in ROLE_ID_RANGE:
        if candidate not in taken:
            return candidate
    raise MacRenderError(
        f"no free user and group ID in {ROLE_ID_RANGE.start}-{ROLE_ID_RANGE.stop - 1} "
        f"for {MAC_OLLAMA_USER}"
    )


def _plist(
    cfg: HostConfig,
    description: str,
    argv: list[str],
    env: list[tuple[str, str]],
    user: str | None,
    working_directory: str | None,
    log_dir: str,
    keep_alive: bool,
) -> str:
    """The job's property list, written by plistlib (which escapes every string it holds)."""
    job: dict[str, Any] = {"Label": label(cfg), "ProgramArguments": argv}
    if user:
        job["UserName"] = user
        job["GroupName"] = user
    if working_directory:
        job["WorkingDirectory"] = working_directory
    job["EnvironmentVariables"] = dict(env)
    job["RunAtLoad"] = True
    if keep_alive:
        job["KeepAlive"] = True
        job["ThrottleInterval"] = 5
    else:
        job["KeepAlive"] = {"SuccessfulExit": False}
    job["ProcessType"] = "Interactive"
    job["StandardOutPath"] = f"{log_dir}/{label(cfg)}.log"
    job["StandardErrorPath"] = f"{log_dir}/{label(cfg)}.err.log"
    head = render_template("launchd-comment.j2", host=cfg.name, description=description)
    text = escape.plist_dump(job)
    # The comment goes after the doctype, where XML allows one before the root element.
    decl, doctype, rest = text.split("\n", 2)
    return f"{decl}\n{doctype}\n{head}{rest}"


def render(cfg: HostConfig) -> list[RenderedFile]:
    if cfg.engine == "ollama":
        argv = [MAC_OLLAMA_BIN[ollama_method(cfg)], "serve"]
        env = [("HOME", MAC_OLLAMA_HOME), *ollama_env(cfg)]
        text = _plist(
            cfg,
            "Ollama",
            argv,
            env,
            user=MAC_OLLAMA_USER,
            working_directory=MAC_OLLAMA_HOME,
            log_dir=ollama_log_dir(),
            keep_alive=True,
        )
        return [RenderedFile(plist_path(cfg), text, owner="root")]
    text = _plist(
        cfg,
        "llama.cpp server",
        llamacpp_argv(cfg, MAC_LLAMACPP_ROOT, model_path(cfg)),
        [],
        user=None,
        working_directory=None,
        log_dir=LOG_DIR,
        keep_alive=False,
    )
    return [RenderedFile(plist_path(cfg), text)]
