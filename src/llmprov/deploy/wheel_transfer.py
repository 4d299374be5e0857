"""Sending a tar of wheels from the controller into a folder on the current host, in one stream.

Fastest first: OpenSSH piping into `tar -x` (C all the way, the bytes written once on the host);
then pyinfra's own paramiko connection piping into `tar -x`; then, for any connector or sudo, one
upload through pyinfra unpacked afterwards.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable
from typing import Any

from pyinfra.api.command import StringCommand
from pyinfra.context import host

from llmprov.core.ssh_argv import openssh_argv
from llmprov.deploy.runner import DeployFailed

Chunks = Callable[[], Iterable[bytes]]


def untar_argv(folder: str) -> list[str]:
    return ["tar", "-x", "--no-same-owner", "--no-same-permissions", "-C", folder]


def sudo_args() -> dict[str, Any]:
    """The privilege settings of host data, for commands a callback runs itself."""
    return {k: host.data.get(k) for k in ("_sudo", "_sudo_user") if host.data.get(k)}


def send_tar(make_chunks: Chunks, folder: str) -> str:
    """Unpack the tar `make_chunks()` yields into `folder` on the host; returns the way it went."""
    if not sudo_args():
        if _over_openssh(make_chunks, folder):
            return "openssh"
        if _over_pyinfra_channel(make_chunks, folder):
            return "ssh-channel"
    _upload_then_unpack(make_chunks, folder)
    return "upload"


def _ssh_data() -> dict[str, Any] | None:
    from pyinfra.connectors.ssh import SSHConnector

    connector = host.connector
    if not isinstance(connector, SSHConnector):
        return None
    return dict(connector.data)


def _over_openssh(make_chunks: Chunks, folder: str) -> bool:
    data = _ssh_data()
    if data is None or shutil.which("ssh") is None:
        return False
    probe = openssh_argv(data, host.name, ["true"])
    if probe is None:
        return False
    try:
        # A login OpenSSH cannot make (agent, keys) falls back before any byte is read.
        if subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode != 0:
            return False
    except (OSError, subprocess.TimeoutExpired):
        return False
    argv = openssh_argv(data, host.name, untar_argv(folder))
    assert argv is not None
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stderr is not None
    try:
        for chunk in make_chunks():
            proc.stdin.write(chunk)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # tar stopped reading: its exit status and message say why
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    errors = proc.stderr.read().decode(errors="replace").strip()
    if proc.wait() != 0:
        raise DeployFailed(f"{host.name}: unpacking the wheels into {folder} failed: {errors}")
    return True


def _over_pyinfra_channel(make_chunks: Chunks, folder: str) -> bool:
    client = getattr(host.connector, "client", None) if _ssh_data() is not None else None
    transport = client.get_transport() if client is not None else None
    if transport is None:
        return False
    channel = transport.open_session()
    try:
        channel.exec_command(shlex.join(untar_argv(folder)))
        for chunk in make_chunks():
            channel.sendall(chunk)
        channel.shutdown_write()
        status = channel.recv_exit_status()
        errors = channel.makefile_stderr("rb").read().decode(errors="replace").strip()
    finally:
        channel.close()
    if status != 0:
        raise DeployFailed(f"{host.name}: unpacking the wheels into {folder} failed: {errors}")
    return True


def _upload_then_unpack(make_chunks: Chunks, folder: str) -> None:
    from llmprov.wheel_cache import stream_reader

    incoming = f"{folder}/.incoming.tar"
    if not host.put_file(stream_reader(make_chunks()), incoming, **sudo_args()):
        raise DeployFailed(f"{host.name}: sending the wheels to {incoming} failed")
    untar = shlex.join([*untar_argv(folder), "-f", incoming])
    command = StringCommand("sh", "-c", f"{untar}; s=$?; rm -f {shlex.quote(incoming)}; exit $s")
    ok, output = host.run_shell_command(command, **sudo_args())
    if not ok:
        tail = "\n".join(output.output_lines[-10:])
        raise DeployFailed(f"{host.name}: unpacking {incoming} failed:\n{tail}")
