"""Reaching a deployed server from the controller: directly, or through SSH when it listens on loopback."""

from __future__ import annotations

import contextlib
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from llmprov.core.config import HostConfig

LOOPBACK = ("127.", "::1")


class EndpointError(Exception):
    """The server's address cannot be reached from the controller."""


def api_kind(cfg: HostConfig) -> Literal["openai", "ollama"]:
    return "ollama" if cfg.engine == "ollama" else "openai"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ssh_tunnel_argv(
    data: Mapping[str, Any], local_port: int, remote: str, remote_port: int
) -> list[str]:
    """An `ssh -L` command from pyinfra's ssh_* host data (the same connection the deploy used)."""
    target = data.get("ssh_hostname") or data["_llmprov_name"]
    argv = ["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes"]
    if data.get("ssh_port"):
        argv += ["-p", str(data["ssh_port"])]
    if data.get("ssh_key"):
        argv += ["-i", str(data["ssh_key"])]
    if data.get("ssh_user"):
        argv += ["-l", str(data["ssh_user"])]
    if data.get("ssh_known_hosts_file"):
        argv += ["-o", f"UserKnownHostsFile={data['ssh_known_hosts_file']}"]
    if str(data.get("ssh_strict_host_key_checking", "")).lower() in ("no", "off", "false"):
        argv += ["-o", "StrictHostKeyChecking=no"]
    host = f"[{remote}]" if ":" in remote else remote
    return [*argv, "-L", f"127.0.0.1:{local_port}:{host}:{remote_port}", str(target)]


def direct_address(cfg: HostConfig, data: Mapping[str, Any]) -> tuple[str, int] | None:
    """The (address, port) the controller dials for a server it reaches without SSH, else None."""
    if cfg.bind.startswith(LOOPBACK) and not cfg.name.startswith("@local"):
        return None
    address = (
        str(data.get("ssh_hostname") or cfg.name) if cfg.bind in ("0.0.0.0", "::") else cfg.bind
    )
    return address, cfg.port


def host_down(address: str, port: int, timeout_s: float = 5.0) -> OSError | None:
    """The error when the host itself cannot be reached (no route, timeout, unknown name).

    A refused connection is not one: the host answered, and its server may still be starting,
    which the smoke check's readiness wait is for.
    """
    try:
        with socket.create_connection((address, port), timeout_s):
            return None
    except ConnectionRefusedError:
        return None
    except OSError as exc:
        return exc


@contextlib.contextmanager
def endpoint(cfg: HostConfig, data: Mapping[str, Any], timeout_s: float = 15.0) -> Iterator[str]:
    """Yield a base URL for the host's server; tunnel through SSH when it only listens locally."""
    bind = cfg.bind
    loopback = bind.startswith(LOOPBACK)
    if not loopback or cfg.name.startswith("@local"):
        address = str(data.get("ssh_hostname") or cfg.name) if bind in ("0.0.0.0", "::") else bind
        host = f"[{address}]" if ":" in address else address
        yield f"http://{host}:{cfg.port}"
        return
    local_port = _free_port()
    argv = ssh_tunnel_argv({"_llmprov_name": cfg.name, **data}, local_port, bind, cfg.port)
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise EndpointError(
                    f"{cfg.name}: ssh tunnel failed ({shlex.join(argv)}): {err.strip()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", local_port), 0.5),
            ):
                break
            time.sleep(0.1)
        else:
            raise EndpointError(f"{cfg.name}: ssh tunnel did not open within {timeout_s}s")
        yield f"http://127.0.0.1:{local_port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
