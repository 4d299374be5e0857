"""Docker's answers about a host parsed (engine, compose plugin, containers), and the compose deploy's rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from packaging.version import Version

# `up --wait` came with Compose 2.1.1 and `up --wait-timeout` with 2.17.0 (docker/compose#10276,
# release notes of v2.17.0). Without the timeout a container that never turns healthy holds the
# deploy forever.
MIN_COMPOSE_VERSION = Version("2.17.0")

# Labels Compose puts on every container it creates.
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"

# Line tags of the DockerEngine fact's output: the fact prints them, parse_docker_state reads them.
TAG_CLI = "cli"
TAG_SERVER = "server"
TAG_SERVER_ERROR = "server-error"
TAG_COMPOSE = "compose"
TAG_COMPOSE_V1 = "compose-v1"
TAG_RUNTIMES = "runtimes"
TAG_NVIDIA_CTK = "nvidia-ctk"
_TAGS = frozenset(
    (
        TAG_CLI,
        TAG_SERVER,
        TAG_SERVER_ERROR,
        TAG_COMPOSE,
        TAG_COMPOSE_V1,
        TAG_RUNTIMES,
        TAG_NVIDIA_CTK,
    )
)

# Debian 12 packages no Compose v2 (its docker-compose 1.29.2 is the Python Compose v1, without
# `docker compose` or `up --wait`); Ubuntu ships it as docker-compose-v2 since 20.04; Docker's own
# apt repository as docker-compose-plugin.
INSTALL_DOCKER = (
    "install Docker Engine and the Compose v2 plugin: on Debian 12 from Docker's apt repository "
    "(docker-ce docker-ce-cli containerd.io docker-compose-plugin; Debian's own docker-compose "
    "1.29 is Compose v1), on Ubuntu 24.04 `apt-get install docker.io docker-compose-v2`; "
    "or deploy with runtime: systemd"
)
INSTALL_TOOLKIT = (
    "install nvidia-container-toolkit (NVIDIA's apt repository), then run "
    "`nvidia-ctk runtime configure --runtime=docker` and `systemctl restart docker`"
)


class ComposeStateError(ValueError):
    """Docker's output cannot be read as expected; the message quotes what was seen."""


@dataclass(frozen=True)
class DockerState:
    """What the DockerEngine fact found: each field None (or empty) when absent."""

    cli: str | None = None
    server_version: str | None = None
    server_error: str | None = None
    compose_version: str | None = None
    compose_v1: str | None = None
    runtimes: frozenset[str] = frozenset()
    nvidia_ctk: str | None = None


def parse_compose_version(text: str) -> Version | None:
    """`2.29.1`, `v2.20.2`, `2.24.6+ds1-0ubuntu2`, `2.27.0-desktop.1`: the release it names."""
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return Version(".".join(found.groups())) if found else None


def parse_docker_state(lines: Iterable[str]) -> DockerState:
    values: dict[str, str] = {}
    for line in lines:
        tag, sep, value = line.partition(": ")
        if sep and tag in _TAGS and tag not in values:
            values[tag] = value.strip()
    runtimes: frozenset[str] = frozenset()
    if values.get(TAG_RUNTIMES):
        try:
            decoded = json.loads(values[TAG_RUNTIMES])
        except json.JSONDecodeError as exc:
            raise ComposeStateError(
                f"docker info's Runtimes is not JSON: {values[TAG_RUNTIMES]!r}"
            ) from exc
        if isinstance(decoded, dict):
            runtimes = frozenset(str(k) for k in decoded)
    return DockerState(
        cli=values.get(TAG_CLI) or None,
        server_version=values.get(TAG_SERVER) or None,
        server_error=values.get(TAG_SERVER_ERROR) or None,
        compose_version=values.get(TAG_COMPOSE) or None,
        compose_v1=values.get(TAG_COMPOSE_V1) or None,
        runtimes=runtimes,
        nvidia_ctk=values.get(TAG_NVIDIA_CTK) or None,
    )


def docker_refusal(state: DockerState, gpu: bool) -> str | None:
    """Why this host cannot run a compose project (what to install or start), or None."""
    if state.cli is None:
        return f"runtime 'compose' needs Docker and `docker` is not on the PATH: {INSTALL_DOCKER}"
    if state.server_version is None:
        seen = state.server_error or "no answer"
        return (
            f"the Docker daemon does not answer ({seen}): start it with "
            "`systemctl enable --now docker`, or connect as root or with sudo"
        )
    if state.compose_version is None:
        v1 = (
            f"; {state.compose_v1} is there, but llmprov runs the `docker compose` plugin"
            if state.compose_v1
            else ""
        )
        return (
            f"Docker {state.server_version} has no Compose v2 plugin "
            f"(`docker compose version` does not answer){v1}: {INSTALL_DOCKER}"
        )
    found = parse_compose_version(state.compose_version)
    if found is None or found < MIN_COMPOSE_VERSION:
        return (
            f"Docker Compose {state.compose_version} is older than {MIN_COMPOSE_VERSION}, the "
            f"first with `up --wait-timeout`: {INSTALL_DOCKER}"
        )
    if gpu and state.nvidia_ctk is None:
        return (
            "the host has NVIDIA GPUs and containers reach them through the NVIDIA Container "
            f"Toolkit, but `nvidia-ctk` is not on the PATH: {INSTALL_TOOLKIT}"
        )
    if gpu and "nvidia" not in state.runtimes:
        listed = ", ".join(sorted(state.runtimes)) or "none"
        return (
            f"the NVIDIA Container Toolkit is installed ({state.nvidia_ctk}) but Docker has no "
            f"nvidia runtime (it lists: {listed}): run "
            "`nvidia-ctk runtime configure --runtime=docker` and `systemctl restart docker`"
        )
    return None


# ---------------------------------------------------------------- the rendered project


@dataclass(frozen=True)
class ComposeProject:
    """A rendered compose.yaml's project name, its one service and the image that service runs."""

    name: str
    service: str
    image: str


def read_project(compose_yaml: str) -> ComposeProject:
    """The project a compose.yaml that llmprov rendered describes (one service, one image)."""
    doc = yaml.safe_load(compose_yaml)
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or len(services) != 1:
        raise ComposeStateError("a compose.yaml from llmprov holds exactly one service")
    service, body = next(iter(services.items()))
    name = doc.get("name")
    image = body.get("image") if isinstance(body, dict) else None
    if not isinstance(name, str) or not isinstance(image, str):
        raise ComposeStateError(f"compose.yaml names no project or no image for {service}")
    return ComposeProject(name=name, service=str(service), image=image)


# ---------------------------------------------------------------- containers


@dataclass(frozen=True)
class Container:
    """One container as `docker inspect` reports it."""

    name: str
    service: str | None
    # The reference the container was created from (Config.Image), as compose.yaml names it.
    image: str
    # created, running, paused, restarting, removing, exited or dead.
    status: str
    # starting, healthy or unhealthy; None when the image or service has no healthcheck.
    health: str | None
    oneoff: bool


def _container(obj: Any) -> Container:
    if not isinstance(obj, dict):
        raise ComposeStateError(f"docker inspect gave {type(obj).__name__}, not an object")
    config = obj.get("Config") or {}
    state = obj.get("State") or {}
    labels = config.get("Labels") or {}
    health = state.get("Health") or {}
    return Container(
        name=str(obj.get("Name", "")).lstrip("/"),
        service=labels.get(SERVICE_LABEL),
        image=str(config.get("Image", "")),
        status=str(state.get("Status", "unknown")),
        health=health.get("Status") or None,
        oneoff=str(labels.get(ONEOFF_LABEL, "False")).lower() == "true",
    )


def parse_containers(lines: Sequence[str]) -> list[Container]:
    """`docker inspect` output: one JSON object per line (`--format '{{json .}}'`) or one array."""
    text = "\n".join(lines).strip()
    if not text:
        return []
    try:
        if text.startswith("["):
            objs = json.loads(text)
        else:
            objs = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise ComposeStateError(f"docker inspect output is not JSON: {text[:200]!r}") from exc
    return [_container(o) for o in objs]


@dataclass(frozen=True)
class UpPlan:
    """Whether `docker compose up` must run, why, and whether Compose must recreate."""

    reasons: tuple[str, ...]
    # Compose recreates on its own when the configuration or the image changed; it keeps a
    # running container whose model files changed under it, or one that is unhealthy.
    recreate: bool

    @property
    def needed(self) -> bool:
        return bool(self.reasons)


def plan_up(
    containers: Sequence[Container],
    project: ComposeProject,
    files_changed: bool,
    model_changed: bool,
    image_pulled: bool,
) -> UpPlan:
    reasons: list[str] = []
    if files_changed:
        reasons.append("compose files changed")
    if model_changed:
        reasons.append("model changed")
    if image_pulled:
        reasons.append(f"{project.image} pulled")
    mine = [c for c in containers if c.service == project.service and not c.oneoff]
    unhealthy = False
    if not mine:
        reasons.append("not created")
    for c in mine:
        if c.status != "running":
            reasons.append(f"{c.name} is {c.status}")
        elif c.health == "unhealthy":
            unhealthy = True
            reasons.append(f"{c.name} is unhealthy")
        if c.image != project.image:
            reasons.append(f"{c.name} runs {c.image}")
    # With no container yet there is nothing to recreate.
    return UpPlan(tuple(reasons), recreate=bool(mine) and (model_changed or unhealthy))


# ---------------------------------------------------------------- commands (argv)


def compose_argv(project_dir: str, project: str, *args: str) -> list[str]:
    """`docker compose` on the project in `project_dir` (its compose.yaml and .env)."""
    return ["docker", "compose", "--project-directory", project_dir, "-p", project, *args]


def up_argv(project_dir: str, project: str, timeout_s: int, recreate: bool) -> list[str]:
    """Start or update the project and wait until its healthcheck passes (or fail after timeout_s)."""
    argv = compose_argv(
        project_dir, project, "up", "-d", "--wait", "--wait-timeout", str(timeout_s)
    )
    return [*argv, "--force-recreate"] if recreate else argv


def pull_argv(image: str) -> list[str]:
    return ["docker", "pull", image]


def exec_argv(project_dir: str, project: str, service: str, *command: str) -> list[str]:
    """Run a command in the service's running container, without a TTY."""
    return compose_argv(project_dir, project, "exec", "-T", service, *command)
