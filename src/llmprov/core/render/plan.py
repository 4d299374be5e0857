"""From a validated host config to the files a deploy uploads, with offline defaults for what facts decide."""

from __future__ import annotations

from pathlib import PurePosixPath

from packaging.version import Version

from llmprov.core.config import HostConfig
from llmprov.core.render.base import RenderedFile, RenderError, Resolved
from llmprov.core.render.host import render_host
from llmprov.core.resolve import NoCompatibleBuild, resolve


class PlanError(RenderError):
    """Files cannot be planned for a host; the message is `host: field: reason`."""


def _vllm_version(cfg: HostConfig) -> str | None:
    """The vLLM release a compose image pins: the inventory's, else the matrix's answer for its data."""
    s = cfg.settings
    if s.vllm.version or cfg.engine != "vllm" or cfg.runtime != "compose":
        return s.vllm.version
    gpu = s.gpu
    if gpu.count and not gpu.driver_version:
        raise PlanError(
            f"{cfg.name}: vllm.version: a compose file pins its image; state vllm.version or "
            "gpu.driver_version (render contacts no host to detect it)"
        )
    cc = (
        tuple(int(p) for p in gpu.compute_capability.split(".")) if gpu.compute_capability else None
    )
    try:
        found = resolve(
            driver=Version(gpu.driver_version) if gpu.driver_version else None,
            compute_capability=cc,  # type: ignore[arg-type]
            os=s.os,
            arch=s.arch,
            requested_vllm=None,
            cpu=gpu.count == 0,
        )
    except NoCompatibleBuild as exc:
        raise PlanError(f"{cfg.name}: vllm.version: {exc}") from exc
    return found.vllm


def offline_resolved(cfg: HostConfig) -> Resolved:
    """What rendering needs to know, from the inventory alone (render contacts no host)."""
    s = cfg.settings
    return Resolved(
        vllm_version=_vllm_version(cfg),
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
    local = PurePosixPath(p.lstrip("/"))
    if ".." in local.parts or not local.parts:
        raise PlanError(f"{host_path}: path: would leave the host's folder under --out")
    return local


def out_path(out: PurePosixPath, host: str, host_path: str) -> PurePosixPath:
    """Where a host's file goes under --out: DIR/<host>/<path>, refused if it would climb out."""
    folder = PurePosixPath(host)
    if folder.is_absolute() or ".." in folder.parts or len(folder.parts) > 2:
        raise PlanError(f"{host}: host: its name cannot be a folder under --out")
    return out / folder / local_path(host_path)
