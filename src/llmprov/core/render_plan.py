"""From a validated host config to the files a deploy uploads, with offline defaults for what facts decide."""

from __future__ import annotations

from pathlib import PurePosixPath

from llmprov.core.config import HostConfig
from llmprov.core.render import RenderedFile, Resolved, render_host

# The vLLM release a compose file pins when the inventory names none and no matrix answer is at hand.
DEFAULT_VLLM_VERSION = "0.11.0"


class PlanError(ValueError):
    """Files cannot be planned for a host; the message is `host: field: reason`."""


def offline_resolved(cfg: HostConfig) -> Resolved:
    """What rendering needs to know, from the inventory alone (render contacts no host)."""
    s = cfg.settings
    return Resolved(
        vllm_version=s.vllm.version or DEFAULT_VLLM_VERSION,
        vllm_cpu=s.gpu.count == 0,
        gpu_count=s.gpu.count if s.gpu.vendor in ("nvidia", "jetson") else 0,
        llamacpp_image_tag=s.llamacpp.release,
    )


def plan_host(cfg: HostConfig, resolved: Resolved | None = None) -> list[RenderedFile]:
    return render_host(cfg, resolved or offline_resolved(cfg))


def local_path(host_path: str) -> PurePosixPath:
    """Where `llmprov render` writes a host path under DIR/<host>/ (drive letters and ~ made plain)."""
    p = host_path.replace("\\", "/")
    if len(p) > 2 and p[1] == ":":
        p = f"{p[0]}/{p[3:]}"
    if p.startswith("~/"):
        p = "_home/" + p[2:]
    return PurePosixPath(p.lstrip("/"))
