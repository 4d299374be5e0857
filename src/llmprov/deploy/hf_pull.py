"""Hugging Face pulls on the host: huggingface_hub in the tools venv, the pull script, one pull.

The tools venv (/opt/llmprov/tools) is the one the vLLM deploy makes with uv; a host of another
engine gets it the same way. The pull runs as root, reads HF_TOKEN (and HF_ENDPOINT, for a mirror)
from its own environment file (HF_PULL_ENV; no server's environment holds the token), writes into `<dest>.partial`, gives the files to the service
user and renames them into place; then it records what it pulled beside the model (the commit
included). A re-run that finds that record for the same reference pulls nothing: a reference
without `@revision` stays at the commit of its first pull until the inventory names a revision.
"""

from __future__ import annotations

from typing import Any

from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import Directory, File, FileContents
from pyinfra.operations import apt, files, server

from llmprov.convert import hf_download
from llmprov.core.config import HostConfig
from llmprov.core.layout import HF_PULL_ENV
from llmprov.core.model_pull import (
    HF_HUB_MARKER,
    HF_HUB_VERSION,
    HF_PULL_SCRIPT,
    HfPull,
    hf_pull_argv,
    install_hf_hub_argv,
    marker_identity,
    marker_path,
    pull_identity,
    read_marker,
)
from llmprov.core.vllm_env import UV, UV_MARKER, UV_VERSION, bootstrap_uv_argv, shell, uv_pypi_args

# The tools venv is made with the distribution's python: these must be there first.
TOOLS_PACKAGES: tuple[str, ...] = ("python3", "python3-venv")


def ensure_tools(cfg: HostConfig) -> list[Any]:
    """uv and huggingface_hub in the tools venv, and the pull script beside them."""
    mirror = cfg.settings.mirror
    ops: list[Any] = []
    installed = host.get_fact(DebPackages) or {}
    missing = [p for p in TOOLS_PACKAGES if p not in installed]
    if missing:
        ops.append(
            apt.packages(name="Tools venv packages", packages=missing, update=True, cache_time=3600)
        )
    if not (host.get_fact(File, path=UV_MARKER) and host.get_fact(File, path=UV)):
        # Guarded again when it runs: the vLLM deploy may have made the venv earlier in this run.
        bootstrap = " && ".join(shell(argv) for argv in bootstrap_uv_argv(mirror))
        ops.append(
            server.shell(
                name=f"Install uv {UV_VERSION} into the tools venv",
                commands=[f"if [ ! -f {UV_MARKER} ] || [ ! -x {UV} ]; then {bootstrap}; fi"],
            )
        )
    if not host.get_fact(File, path=HF_HUB_MARKER):
        ops.append(
            server.shell(
                name=f"Install huggingface_hub {HF_HUB_VERSION} into the tools venv",
                commands=[shell(argv) for argv in install_hf_hub_argv(uv_pypi_args(mirror))],
            )
        )
    ops.append(
        files.put(
            name="Hugging Face pull script",
            src=hf_download.__file__,
            dest=HF_PULL_SCRIPT,
            user="root",
            group="root",
            mode="755",
        )
    )
    return ops


def pull_ops(cfg: HostConfig, pull: HfPull, dest: str, owner: str | None = None) -> list[Any]:
    """Pull `pull` into `dest` on the host, unless the record beside it says it is there."""
    marker = host.get_fact(FileContents, path=marker_path(dest))
    present = host.get_fact(File if pull.is_file else Directory, path=dest)
    if present and marker_identity(read_marker(marker)) == pull_identity(pull):
        host.noop(f"{pull.label} is already pulled into {dest}")
        return []
    ops = ensure_tools(cfg)
    argv = hf_pull_argv(pull, dest, owner or cfg.service_user, HF_PULL_ENV)
    ops.append(
        server.shell(
            name=f"Pull {pull.label} into {dest} (resumes a partial pull)",
            commands=[shell(argv)],
        )
    )
    return ops
