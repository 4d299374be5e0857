"""Deploy of an engine as a Docker Compose project on Linux: Docker checked, model placed, image pinned.

llmprov does not install Docker: it checks that the host has Docker Engine with the Compose v2
plugin (and, with NVIDIA GPUs, the NVIDIA Container Toolkit wired into Docker) and refuses with
what to install otherwise. Debian 12 packages no Compose v2 at all, the toolkit comes from
NVIDIA's repository, and the daemon's configuration is the site's, as with Ansible's
community.docker modules, which need the same and install none of it.

The order is what keeps a running server serving through an upgrade: the new image is pulled
while the old container runs, and only then are compose.yaml and .env replaced and
`docker compose up -d --wait` run, which recreates the container and waits for its healthcheck.
`up` runs only when a file, the model or the image changed, or when the project is not running
as rendered; a re-run with nothing changed changes nothing.
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.context import host
from pyinfra.operations import files, server

from llmprov.core.compose_state import (
    ComposeProject,
    Container,
    docker_refusal,
    exec_argv,
    plan_up,
    pull_argv,
    read_project,
    up_argv,
)
from llmprov.core.config import HostConfig
from llmprov.core.layout import EngineLayout
from llmprov.core.model_ref import OllamaRef
from llmprov.core.ollama_release import model_present
from llmprov.core.render import RenderedFile, Resolved
from llmprov.core.render.plan import plan_host
from llmprov.deploy import vllm
from llmprov.deploy.common import any_change, service_user, upload, wait_http
from llmprov.deploy.models import place_model
from llmprov.deploy.runner import DeployFailed
from llmprov.deploy.upgrade import deployed, record_serving, write_state
from llmprov.facts.docker import ComposeContainers, ComposeOllamaModels, DockerEngine, DockerImage
from llmprov.facts.versions import StateRecord

# How long `up --wait` and the readiness probe wait; vLLM compiles its graphs on every start.
READY_TIMEOUT_S = {"llamacpp": 300, "ollama": 120}


class ComposeDeployError(DeployFailed):
    """A compose deploy cannot be planned for a host; the message says what to install or change."""


def gpu_count(cfg: HostConfig) -> int:
    """GPUs the project reserves: NVIDIA (and Jetson) ones, which Compose reaches through the toolkit."""
    return cfg.gpu.count if cfg.has_nvidia else 0


def ollama_model(cfg: HostConfig) -> str:
    """The name:tag Ollama pulls; Ollama's models come from its registry, not from files."""
    ref = cfg.model_ref
    if not isinstance(ref, OllamaRef):
        raise ComposeDeployError(
            f"{cfg.name}: model: the ollama deploy pulls ollama:// models; {ref.raw} is not one"
        )
    return f"{ref.name}:{ref.tag}"


def check_host(cfg: HostConfig) -> None:
    """Refuse before any operation when the host cannot run the project as rendered."""
    if cfg.gpu.vendor == "amd":
        raise ComposeDeployError(
            f"{cfg.name}: gpu.vendor: the compose files llmprov renders reserve NVIDIA GPUs only, "
            "so this host would serve on its CPU; use runtime: systemd for AMD GPUs"
        )
    if cfg.engine == "ollama":
        ollama_model(cfg)
    problem = docker_refusal(host.get_fact(DockerEngine), gpu=gpu_count(cfg) > 0)
    if problem is not None:
        raise ComposeDeployError(f"{cfg.name}: {problem}")


def resolved_for_host(cfg: HostConfig) -> Resolved:
    """What pins the image: for vLLM the matrix's answer for this host's GPUs (as the systemd
    deploy resolves; vLLM's images carry the same default CUDA build as its PyPI wheels)."""
    if cfg.engine == "vllm":
        return vllm.resolved_for_render(vllm.resolve_for_host(cfg))
    count = gpu_count(cfg)
    return Resolved(
        vllm_cpu=count == 0, gpu_count=count, llamacpp_image_tag=cfg.settings.llamacpp.release
    )


def _compose_file(rendered: list[RenderedFile]) -> str:
    return next(f.content for f in rendered if f.path.endswith("/compose.yaml"))


def _folders(cfg: HostConfig) -> list[Any]:
    """The state folder and the models folder the `models` volume binds into the container."""
    layout = EngineLayout(cfg.engine)
    user = cfg.service_user
    return [
        files.directory(
            name="State folder", path=layout.state_dir, user=user, group=user, mode="750"
        ),
        files.directory(
            name="Models folder", path=layout.models_dir, user=user, group=user, mode="750"
        ),
    ]


def pull_image(image: str) -> list[Any]:
    """Download the image unless the host has it, before anything the running container uses moves."""
    if host.get_fact(DockerImage, image=image):
        host.noop(f"image {image} is present")
        return []
    return [
        server.shell(
            name=f"Pull image {image} (minutes)",
            commands=[shlex.join(pull_argv(image))],
        )
    ]


def _ready_check(cfg: HostConfig) -> tuple[str, str, int]:
    """(path, text the answer holds, timeout in seconds) that show the server is up."""
    if cfg.engine == "vllm":
        eager = cfg.settings.vllm.enforce_eager
        return "/health", "HTTP/1", vllm.READY_TIMEOUT_EAGER_S if eager else vllm.READY_TIMEOUT_S
    if cfg.engine == "llamacpp":
        return "/health", "ok", READY_TIMEOUT_S["llamacpp"]
    # The version the image's tag names, so an upgrade shows that the new server answers.
    return (
        "/api/version",
        f'"version":"{cfg.settings.ollama.version}"',
        READY_TIMEOUT_S["ollama"],
    )


def pull_ollama_model(cfg: HostConfig, project: ComposeProject) -> list[Any]:
    """Pull the model with the image's own CLI, through the server's /api/pull, unless it is there.

    Ollama keeps its models in the project's `models` volume, so they outlive the container.
    """
    name = ollama_model(cfg)
    project_dir = EngineLayout(cfg.engine).compose_dir
    present = host.get_fact(
        ComposeOllamaModels, project_dir=project_dir, project=project.name, service=project.service
    )
    if present is not None and model_present(present, name):
        host.noop(f"model {name} is already pulled")
        return []
    argv = exec_argv(project_dir, project.name, project.service, "ollama", "pull", name)
    return [server.shell(name=f"Pull model {name}", commands=[shlex.join(argv)])]


def deploy_compose(cfg: HostConfig) -> None:
    """Run `cfg`'s engine as the compose project llmprov-<engine> on a Linux host."""
    layout = EngineLayout(cfg.engine)
    check_host(cfg)
    rendered = plan_host(cfg, resolved_for_host(cfg))
    project = read_project(_compose_file(rendered))
    # First, as it takes longest and touches nothing the running container uses.
    pulled = pull_image(project.image)
    model: list[Any] = []
    if cfg.engine != "ollama":
        service_user(cfg, home=layout.state_dir)
        _folders(cfg)
        model = place_model(cfg)
    uploaded = upload(rendered)
    containers: list[Container] = host.get_fact(ComposeContainers, project=project.name)
    up = plan_up(
        containers,
        project,
        files_changed=any_change(uploaded),
        model_changed=any_change(model),
        image_pulled=bool(pulled),
    )
    path, expect, timeout = _ready_check(cfg)
    if up.needed:
        server.shell(
            name=f"Start {project.name} ({'; '.join(up.reasons)})",
            commands=[shlex.join(up_argv(layout.compose_dir, project.name, timeout, up.recreate))],
        )
    else:
        host.noop(f"compose project {project.name} runs {project.image} as rendered")
    wait_http(cfg, path, expect, up.needed, timeout_s=timeout)
    if cfg.engine == "ollama":
        pull_ollama_model(cfg, project)
    # The image is what a compose deploy switches: its reference is the key, its tag the version.
    tag = project.image.rsplit("/", 1)[-1].partition(":")[2] or "latest"
    record_serving(cfg, deployed(cfg, tag, project.image), host.get_fact(StateRecord), write_state)
