"""The `@winrm` connector: registered with pyinfra, and running an Ollama Windows deploy's facts,
commands and uploads through a PowerShell Remoting client (a recording fake: no Windows here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.connectors import get_all_connectors
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import ConnectError, PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.context import ctx_state
from pyinfra.operations import server

from llmprov.connectors.winrm import WinRMConnector


class FakeStreams:
    def __init__(self, errors: list[str]) -> None:
        self.error = errors


class FakePsrpClient:
    """Answers execute_ps by the first matching substring; records scripts and copies."""

    def __init__(self, answers: dict[str, tuple[str, bool]], **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.answers = answers
        self.scripts: list[str] = []
        self.copies: list[tuple[str, bytes]] = []

    def execute_ps(self, script: str) -> tuple[str, FakeStreams, bool]:
        self.scripts.append(script)
        for needle, (output, failed) in self.answers.items():
            if needle in script:
                return output, FakeStreams(["boom"] if failed else []), failed
        return "", FakeStreams([]), False

    def copy(self, src: str, dest: str) -> str:
        self.copies.append((dest, Path(src).read_bytes()))
        return dest


def run(
    monkeypatch: pytest.MonkeyPatch,
    answers: dict[str, tuple[str, bool]],
    deploy: Any,
    clients: list[FakePsrpClient] | None = None,
    **data: Any,
) -> tuple[FakePsrpClient, State]:
    clients = [] if clients is None else clients

    def factory(**kwargs: Any) -> FakePsrpClient:
        clients.append(FakePsrpClient(answers, **kwargs))
        return clients[-1]

    monkeypatch.setattr(WinRMConnector, "client_factory", staticmethod(factory))
    inventory = Inventory(([("@winrm/win-box", {"winrm_username": "Administrator", **data})], {}))
    state = State(inventory, Config())
    with ctx_state.use(state):
        connect_all(state)
    add_deploy(state, deploy)
    run_ops(state)
    return clients[0], state


def test_winrm_is_a_pyinfra_connector_through_the_entry_point() -> None:
    assert get_all_connectors()["winrm"] is WinRMConnector


def test_client_gets_the_host_data_with_tls_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = run(monkeypatch, {}, lambda: None, winrm_password="pw")
    assert client.kwargs == {
        "server": "win-box",
        "username": "Administrator",
        "password": "pw",
        "port": 5986,
        "ssl": True,
        "auth": "negotiate",
        "cert_validation": True,
    }
    plain, _ = run(monkeypatch, {}, lambda: None, winrm_ssl=False, winrm_hostname="10.0.0.5")
    assert (plain.kwargs["server"], plain.kwargs["port"]) == ("10.0.0.5", 5985)


def test_commands_run_as_powershell_and_errors_fail_the_operation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def deploy() -> None:
        server.shell(name="ok", commands=["Get-Service -Name 'Ollama'"])
        server.shell(name="fails", commands=["throw 'no'"])
        server.shell(name="never", commands=["Write-Output 'after'"])

    clients: list[FakePsrpClient] = []

    with pytest.raises(PyinfraError, match="No hosts remaining"):  # its only host failed
        run(monkeypatch, {"throw 'no'": ("", True)}, deploy, clients=clients)
    scripts = clients[0].scripts
    assert scripts[0] == "$PSVersionTable.PSVersion.Major"
    assert scripts[1:] == ["Get-Service -Name 'Ollama'", "throw 'no'"]


def test_uploads_go_through_psrp_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmprov.deploy.ollama_windows import put_text

    def deploy() -> None:
        put_text(name="xml", content="<service/>\n", dest="C:/ProgramData/llmprov/ollama/x.xml")

    client, state = run(monkeypatch, {}, deploy)
    assert not state.failed_hosts
    # The fact asked for the file's sha256 first (no answer: the file is missing).
    assert "Get-FileHash" in client.scripts[1]
    assert client.copies == [("C:/ProgramData/llmprov/ollama/x.xml", b"<service/>\n")]


def test_an_unreachable_host_is_a_connect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def factory(**kwargs: Any) -> Any:
        raise OSError("connection refused")

    monkeypatch.setattr(WinRMConnector, "client_factory", staticmethod(factory))
    inventory = Inventory(([("@winrm/win-box", {})], {}))
    state = State(inventory, Config())
    connector = WinRMConnector(state, inventory.get_host("@winrm/win-box"))
    with pytest.raises(ConnectError, match="win-box:5986: connection refused"):
        connector.connect()


def test_without_pypsrp_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from llmprov.connectors import winrm

    real = importlib.import_module

    def no_pypsrp(name: str, *args: Any) -> Any:
        if name.startswith("pypsrp"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(winrm.importlib, "import_module", no_pypsrp)
    with pytest.raises(ConnectError, match=r"llmprov\[windows\]"):
        winrm.pypsrp_client(server="x")
