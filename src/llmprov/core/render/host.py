"""Every file a deploy of one host uploads, by its runtime."""

from __future__ import annotations

from llmprov.core.config import HostConfig
from llmprov.core.render import compose, launchd, windows
from llmprov.core.render.base import RenderedFile, Resolved
from llmprov.core.render.systemd import render_systemd


def render_host(cfg: HostConfig, resolved: Resolved) -> list[RenderedFile]:
    """Every file that a deploy of `cfg` uploads, in a stable order."""
    if cfg.runtime == "systemd":
        return render_systemd(cfg, resolved)
    if cfg.runtime == "compose":
        return compose.render(cfg, resolved)
    if cfg.runtime == "launchd":
        return launchd.render(cfg)
    return windows.render(cfg)
