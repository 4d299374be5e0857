"""The compose deploy (runtime: compose on Linux), case by case: canned facts in, exact commands out.

No Docker engine runs where the tests run, so a case is one JSON file under
tests/fixtures/compose/<engine>/: the host data, what the host's facts answer, and either what the
deploy must do (every operation that runs a command, with its exact commands and uploads, and
the deploy's noop notes) or the refusal it must raise before any operation. The deploy runs
through pyinfra's real API against its `@fake` connector; only fact answers are canned. A fact
the case does not list fails the test with the key it needs, and every fact's arguments are
checked against the real fact's `command()` signature. llmprov's own facts are given as the
command's output lines, so their parsers run too.

Two placeholders keep cases about the host rather than about byte counts: a files.Sha1File answer
of "@rendered" is the sha1 of what the deploy renders for that path (the host holds the current
file), and "@sha1:NAME" the sha1 of tests/fixtures/compose/files/NAME. "@captured:NAME" as a fact
answer reads the lines of tests/fixtures/compose/captured/NAME, output captured from a real host.

`LLMPROV_UPDATE_FIXTURES=1 .venv/bin/pytest tests/test_compose_deploy.py` rewrites the expected
part of every case from what the deploy did; read the diff before keeping it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixture_runner import CannedFacts, run_deploy

from llmprov.core import render
from llmprov.core.compose_state import (
    ComposeProject,
    Container,
    DockerState,
    docker_refusal,
    parse_compose_version,
    parse_containers,
    parse_docker_state,
    plan_up,
    read_project,
    up_argv,
)
from llmprov.core.config import HostConfig
from llmprov.core.render import RenderedFile
from llmprov.core.validate import ControllerFiles, validate_host
from llmprov.deploy import compose, upgrade
from llmprov.deploy.engines import DEPLOYS
from llmprov.deploy.runner import DeployFailed

FIXTURES = Path(__file__).parent / "fixtures" / "compose"
FILES = FIXTURES / "files"
CAPTURED = FIXTURES / "captured"
UPDATE = os.environ.get("LLMPROV_UPDATE_FIXTURES") == "1"
HOST = "@fake/compose-host"
# Uploads pin what the templates produce, not the release number in their headers.
PINNED_VERSION = "0.0.0+fixture"
# When a deploy's state record says it happened.
RECORD_TIME = "2026-01-01T00:00:00+00:00"


# ---------------------------------------------------------------- harness


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def placeholders(rendered: dict[str, str]) -> Callable[[Any, dict[str, Any]], Any]:
    """Fact answers of the form "@rendered", "@sha1:NAME", "@captured:NAME" (see above)."""

    def resolve(value: Any, kwargs: dict[str, Any]) -> Any:
        if not isinstance(value, str) or not value.startswith("@"):
            return value
        kind, _, arg = value[1:].partition(":")
        if kind == "rendered":
            return sha1(rendered[kwargs["path"]].encode())
        if kind == "sha1":
            return sha1((FILES / arg).read_bytes())
        if kind == "captured":
            return (CAPTURED / arg).read_text().splitlines()
        raise ValueError(f"unknown placeholder {value!r}")

    return resolve


def host_config(host_data: dict[str, Any]) -> HostConfig:
    result = validate_host(
        HOST,
        host_data,
        ControllerFiles(
            read=lambda p: (FILES / p).read_text(), exists=lambda p: (FILES / p).exists()
        ),
        base_dir=str(FILES),
    )
    assert not isinstance(result, list), [str(e) for e in result]
    return result


def run_case(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    cfg = host_config(case["host_data"])
    monkeypatch.setattr(render, "__version__", PINNED_VERSION)
    monkeypatch.setattr(upgrade, "now", lambda: RECORD_TIME)
    rendered: dict[str, str] = {}
    plan_host = compose.plan_host

    def recording_plan_host(*args: Any, **kwargs: Any) -> list[RenderedFile]:
        planned = plan_host(*args, **kwargs)
        rendered.update({f.path: f.content for f in planned})
        return planned

    monkeypatch.setattr(compose, "plan_host", recording_plan_host)
    module, _, func = DEPLOYS[(cfg.engine, cfg.os, cfg.runtime)].partition(":")
    deploy = getattr(importlib.import_module(module), func)
    facts = CannedFacts(case["facts"], placeholders(rendered))
    try:
        plan = run_deploy(lambda: deploy(cfg), monkeypatch, facts, HOST)
    except DeployFailed as exc:
        return {"refused": str(exc)}
    return plan.as_case()


def cases() -> Iterator[Any]:
    for path in sorted(FIXTURES.glob("*/*.json")):
        yield pytest.param(path, id=f"{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("path", list(cases()))
def test_deploy_matches_fixture(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = json.loads(path.read_text())
    got = run_case(case, monkeypatch)
    if UPDATE:
        case["expected"] = got
        path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n")
        return
    assert got == case["expected"]


# Cases whose absence would leave a promise of the deploy untested.
REQUIRED_CASES = {
    "vllm": ("install-gpu", "install-cpu", "rerun-unchanged", "upgrade-image", "refuse-no-toolkit"),
    "llamacpp": (
        "install",
        "settings-change",
        "model-change",
        "rerun-stopped",
        "refuse-compose-v1",
    ),
    "ollama": ("install-gpu", "rerun-unchanged", "refuse-no-docker", "refuse-no-runtime"),
}


def test_every_engine_has_its_cases() -> None:
    have = {(p.parent.name, p.stem) for p in FIXTURES.glob("*/*.json")}
    missing = [
        f"{e}/{c}" for e, names in REQUIRED_CASES.items() for c in names if (e, c) not in have
    ]
    assert not missing


def test_compose_runtime_on_linux_routes_every_engine_to_the_compose_deploy() -> None:
    for engine in ("vllm", "ollama", "llamacpp"):
        assert DEPLOYS[(engine, "linux", "compose")] == "llmprov.deploy.compose:deploy_compose"


# ---------------------------------------------------------------- what the cases must show


def _case(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text())["expected"])


def _op_names(expected: dict[str, Any]) -> list[str]:
    return [op["name"] for op in expected["operations"]]


def test_a_rerun_with_nothing_changed_runs_no_command() -> None:
    for name in ("vllm/rerun-unchanged", "ollama/rerun-unchanged"):
        expected = _case(name)
        assert expected["operations"] == [], name
        assert not expected["failed"]


def test_an_upgrade_pulls_the_new_image_before_the_files_change_and_up_runs() -> None:
    names = _op_names(_case("vllm/upgrade-image"))
    pull = next(i for i, n in enumerate(names) if n.startswith("Pull image"))
    upload = names.index("Upload /opt/llmprov/compose/vllm/compose.yaml")
    up = next(i for i, n in enumerate(names) if n.startswith("Start llmprov-vllm"))
    assert pull < upload < up


def test_a_refused_host_gets_no_operation_and_a_message_naming_it() -> None:
    for path in FIXTURES.glob("*/refuse-*.json"):
        expected = json.loads(path.read_text())["expected"]
        assert set(expected) == {"refused"}, path.name
        assert expected["refused"].startswith(f"{HOST}: "), path.name


# ---------------------------------------------------------------- parsers and rules (core)


def test_docker_state_from_a_real_cli_without_a_daemon() -> None:
    state = parse_docker_state((CAPTURED / "docker-28.2.2-no-daemon.txt").read_text().splitlines())
    assert state.cli == "/usr/local/bin/docker"
    assert state.server_version is None
    assert state.server_error is not None and "Is the docker daemon running?" in state.server_error
    refusal = docker_refusal(state, gpu=False)
    assert refusal is not None and "systemctl enable --now docker" in refusal


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("2.29.7", "2.29.7"),
        ("v2.20.2", "2.20.2"),
        ("2.24.6+ds1-0ubuntu2", "2.24.6"),
        ("2.27.0-desktop.1", "2.27.0"),
        ("Docker Compose version v2.17.2", "2.17.2"),
        ("garbage", None),
    ],
)
def test_compose_versions_as_distributions_print_them(text: str, version: str | None) -> None:
    found = parse_compose_version(text)
    assert (str(found) if found else None) == version


READY = DockerState(
    cli="/usr/bin/docker",
    server_version="27.3.1",
    compose_version="2.29.7",
    runtimes=frozenset({"runc", "io.containerd.runc.v2", "nvidia"}),
    nvidia_ctk="/usr/bin/nvidia-ctk",
)


@pytest.mark.parametrize(
    ("change", "gpu", "says"),
    [
        ({}, True, None),
        ({"cli": None}, False, "`docker` is not on the PATH"),
        ({"compose_version": None}, False, "no Compose v2 plugin"),
        (
            {"compose_version": None, "compose_v1": "/usr/bin/docker-compose"},
            False,
            "/usr/bin/docker-compose is there, but llmprov runs the `docker compose` plugin",
        ),
        ({"compose_version": "2.16.0"}, False, "older than 2.17.0"),
        ({"nvidia_ctk": None}, True, "`nvidia-ctk` is not on the PATH"),
        ({"nvidia_ctk": None}, False, None),
        ({"runtimes": frozenset({"runc"})}, True, "Docker has no nvidia runtime (it lists: runc)"),
    ],
)
def test_docker_refusals_say_what_is_missing(
    change: dict[str, Any], gpu: bool, says: str | None
) -> None:
    state = DockerState(**{**READY.__dict__, **change})
    refusal = docker_refusal(state, gpu=gpu)
    if says is None:
        assert refusal is None
    else:
        assert refusal is not None and says in refusal


def test_every_docker_refusal_names_a_way_out() -> None:
    for change in ({"cli": None}, {"compose_version": None}, {"compose_version": "2.3.3"}):
        refusal = docker_refusal(DockerState(**{**READY.__dict__, **change}), gpu=False)
        assert refusal is not None
        assert "docker-compose-plugin" in refusal and "docker-compose-v2" in refusal


def _inspect(status: str, image: str, health: str | None = None, oneoff: bool = False) -> str:
    state: dict[str, Any] = {"Status": status, "Running": status == "running"}
    if health:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    labels = {
        "com.docker.compose.project": "llmprov-vllm",
        "com.docker.compose.service": "vllm",
        "com.docker.compose.oneoff": "True" if oneoff else "False",
    }
    return json.dumps(
        {"Id": "0f3c", "Name": "/llmprov-vllm-vllm-1", "State": state,
         "Config": {"Image": image, "Labels": labels}, "Image": "sha256:9a1b"}
    )  # fmt: skip


PROJECT = ComposeProject("llmprov-vllm", "vllm", "vllm/vllm-openai:v0.33.0")


def test_containers_parse_from_lines_and_from_one_array() -> None:
    line = _inspect("running", PROJECT.image, "healthy")
    by_line = parse_containers([line])
    assert by_line == parse_containers(["[", line, "]"])
    assert by_line == [
        Container("llmprov-vllm-vllm-1", "vllm", PROJECT.image, "running", "healthy", False)
    ]
    assert parse_containers([]) == []


@pytest.mark.parametrize(
    ("containers", "flags", "reasons", "recreate"),
    [
        ([("running", PROJECT.image, "healthy")], {}, (), False),
        ([("running", PROJECT.image, None)], {}, (), False),
        ([("running", PROJECT.image, "starting")], {}, (), False),
        ([], {}, ("not created",), False),
        ([("exited", PROJECT.image, None)], {}, ("llmprov-vllm-vllm-1 is exited",), False),
        (
            [("running", PROJECT.image, "unhealthy")],
            {},
            ("llmprov-vllm-vllm-1 is unhealthy",),
            True,
        ),
        (
            [("running", "vllm/vllm-openai:v0.32.0", "healthy")],
            {},
            ("llmprov-vllm-vllm-1 runs vllm/vllm-openai:v0.32.0",),
            False,
        ),
        (
            [("running", PROJECT.image, "healthy")],
            {"model_changed": True},
            ("model changed",),
            True,
        ),
        (
            [("running", PROJECT.image, "healthy")],
            {"files_changed": True},
            ("compose files changed",),
            False,
        ),
    ],
)
def test_up_runs_only_when_something_changed_or_the_project_is_not_running(
    containers: list[tuple[str, str, str | None]],
    flags: dict[str, bool],
    reasons: tuple[str, ...],
    recreate: bool,
) -> None:
    parsed = parse_containers([_inspect(*c) for c in containers])
    base = {"files_changed": False, "model_changed": False, "image_pulled": False}
    plan = plan_up(parsed, PROJECT, **{**base, **flags})
    assert plan.reasons == reasons
    assert plan.recreate is recreate


def test_one_off_containers_do_not_count_as_the_service() -> None:
    parsed = parse_containers([_inspect("exited", PROJECT.image, oneoff=True)])
    plan = plan_up(parsed, PROJECT, files_changed=False, model_changed=False, image_pulled=False)
    assert plan.reasons == ("not created",)


def test_the_project_is_read_from_the_rendered_compose_file() -> None:
    text = (
        Path(__file__).parent / "golden/vllm-compose/gpu/opt/llmprov/compose/vllm/compose.yaml"
    ).read_text()
    assert read_project(text) == ComposeProject("llmprov-vllm", "vllm", "vllm/vllm-openai:v0.10.2")


def test_up_waits_with_a_timeout_and_recreates_only_when_told() -> None:
    assert up_argv("/opt/llmprov/compose/vllm", "llmprov-vllm", 900, recreate=False) == [
        "docker", "compose", "--project-directory", "/opt/llmprov/compose/vllm",
        "-p", "llmprov-vllm", "up", "-d", "--wait", "--wait-timeout", "900",
    ]  # fmt: skip
    assert up_argv("/d", "p", 5, recreate=True)[-1] == "--force-recreate"
