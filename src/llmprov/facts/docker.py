"""Facts about Docker on a host: the engine and compose plugin, a project's containers, local images.

Every command exits 0 whatever the host holds (a failed fact fails the host in pyinfra); what is
absent is an empty answer. Parsing lives in llmprov.core.compose_state.
"""

from __future__ import annotations

import shlex

from pyinfra.api.exceptions import FactProcessError
from pyinfra.api.facts import FactBase

from llmprov.core.compose_state import (
    PROJECT_LABEL,
    TAG_CLI,
    TAG_COMPOSE,
    TAG_COMPOSE_V1,
    TAG_NVIDIA_CTK,
    TAG_RUNTIMES,
    TAG_SERVER,
    TAG_SERVER_ERROR,
    ComposeStateError,
    Container,
    DockerState,
    exec_argv,
    parse_containers,
    parse_docker_state,
)
from llmprov.core.ollama_release import parse_model_list

# Go templates for docker's --format; kept out of f-strings, whose braces they would fight.
_SERVER_VERSION = shlex.quote("{{.Server.Version}}")
_RUNTIMES = shlex.quote("{{json .Runtimes}}")
_JSON = shlex.quote("{{json .}}")
_ID = shlex.quote("{{.Id}}")


def _tagged(tag: str, command: str) -> str:
    """Print `tag: <output>` when `command` succeeds, nothing otherwise."""
    return f'out=$({command} 2>/dev/null) && echo {shlex.quote(tag + ": ")}"$out"'


class DockerEngine(FactBase[DockerState]):
    """The docker CLI, whether its daemon answers, the Compose v2 plugin's version, the daemon's
    runtimes, and nvidia-ctk: what a compose deploy needs before it changes anything."""

    def command(self) -> str:
        server_version = f"docker version --format {_SERVER_VERSION} 2>&1"
        return "; ".join(
            [
                f"if {_tagged(TAG_CLI, 'command -v docker')}",
                f'then if v=$({server_version}); then echo {shlex.quote(TAG_SERVER + ": ")}"$v"',
                # The daemon's complaint (not running, permission denied) is its last line.
                f"else echo {shlex.quote(TAG_SERVER_ERROR + ': ')}"
                '"$(printf \'%s\\n\' "$v" | grep . | tail -n1)"; fi',
                _tagged(TAG_COMPOSE, "docker compose version --short"),
                _tagged(TAG_RUNTIMES, f"docker info --format {_RUNTIMES}"),
                "fi",
                _tagged(TAG_COMPOSE_V1, "command -v docker-compose"),
                _tagged(TAG_NVIDIA_CTK, "command -v nvidia-ctk"),
                "true",
            ]
        )

    @staticmethod
    def default() -> DockerState:
        return DockerState()

    def process(self, output: list[str]) -> DockerState:
        try:
            return parse_docker_state(output)
        except ComposeStateError as exc:
            raise FactProcessError(str(exc)) from exc


class ComposeContainers(FactBase[list[Container]]):
    """Every container of a compose project, running or not, as `docker inspect` reports it."""

    def command(self, project: str) -> str:
        label = shlex.quote(f"label={PROJECT_LABEL}={project}")
        return (
            f"ids=$(docker ps -aq --filter {label} 2>/dev/null); "
            f'if [ -n "$ids" ]; then docker inspect --format {_JSON} $ids 2>/dev/null; fi; true'
        )

    @staticmethod
    def default() -> list[Container]:
        return []

    def process(self, output: list[str]) -> list[Container]:
        try:
            return parse_containers(output)
        except ComposeStateError as exc:
            raise FactProcessError(str(exc)) from exc


class DockerImage(FactBase[str | None]):
    """The local image ID of a reference (`sha256:...`), or None when it has not been pulled."""

    def command(self, image: str) -> str:
        return f"docker image inspect --format {_ID} {shlex.quote(image)} 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        return next((line.strip() for line in output if line.startswith("sha256:")), None)


class ComposeOllamaModels(FactBase[set[str] | None]):
    """Models the Ollama server in a compose project lists, or None when it does not answer."""

    def command(self, project_dir: str, project: str, service: str) -> str:
        argv = exec_argv(project_dir, project, service, "ollama", "list")
        return f"{shlex.join(argv)} 2>/dev/null || true"

    def process(self, output: list[str]) -> set[str] | None:
        return parse_model_list(output)
