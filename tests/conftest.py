"""Fixtures shared by the spine's tests: the render cases, and a guard that no host is contacted."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmprov.core.config import HostConfig
from llmprov.core.render import RenderedFile
from llmprov.core.render.plan import plan_host
from llmprov.inventory import load_inventory

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"

# Every render case: the client inventory users copy, and one small inventory per engine and
# runtime (tests/golden/<case>.py). A case's expected output is the folder tests/golden/<case>/.
CASES: dict[str, Path] = {
    "client": REPO / "inventories" / "client.py",
    **{p.stem: p for p in sorted(GOLDEN.glob("*.py"))},
}


@dataclass(frozen=True)
class Case:
    name: str
    inventory: Path


@dataclass(frozen=True)
class RenderedHost:
    case: str
    cfg: HostConfig
    files: list[RenderedFile]

    @property
    def label(self) -> str:
        return f"{self.case}/{self.cfg.name}"


@pytest.fixture(params=sorted(CASES))
def golden_case(request: pytest.FixtureRequest) -> Case:
    return Case(request.param, CASES[request.param])


@pytest.fixture
def all_cases() -> dict[str, Path]:
    return dict(CASES)


@pytest.fixture
def golden_dir() -> Path:
    return GOLDEN


@pytest.fixture(scope="session")
def rendered_hosts() -> list[RenderedHost]:
    """Every host of every case, validated and planned offline, as `llmprov render` does."""
    return [
        RenderedHost(name, cfg, plan_host(cfg))
        for name, path in CASES.items()
        for cfg in load_inventory(path).hosts.values()
    ]


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every way pyinfra (or anything else) could reach a host fail, and record each attempt.

    Attempts are recorded as well as refused because llmprov turns exceptions raised while loading
    an inventory into error lines; a test asserts the list is empty after its command ran.
    """
    # Importing pyinfra_cli patches the socket module with gevent's; do it before the guard wraps
    # socket functions, so that undoing the guard restores gevent's and not the originals.
    import pyinfra.api.connect
    import pyinfra.api.host
    import pyinfra.connectors.ssh
    import pyinfra_cli  # noqa: F401

    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise AssertionError(f"{what} was called; validate and render must contact no host")

        return refused

    monkeypatch.setattr(pyinfra.api.connect, "connect_all", refuse("connect_all"))
    monkeypatch.setattr(pyinfra.api.host.Host, "connect", refuse("Host.connect"))
    monkeypatch.setattr(
        pyinfra.connectors.ssh.SSHConnector, "connect", refuse("SSHConnector.connect")
    )
    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    yield attempts


@pytest.fixture(autouse=True)
def _builtin_cuda_matrix() -> Iterator[None]:
    """Each test resolves vLLM from the built-in facts: a `matrix refresh` stored in the shared
    cache does not leak in, and no test's merged matrix outlives it."""
    from llmprov import matrix_cache
    from llmprov.core import matrix_data

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(matrix_cache, "REFRESH_FILE", "no-refresh-in-unit-tests.json")
        mp.setattr(matrix_data, "_ACTIVE", [])
        yield
