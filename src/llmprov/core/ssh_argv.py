"""The OpenSSH command that reaches a pyinfra `@ssh` host, built as pyinfra's own rsync support does."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

# Settings only paramiko can honour: with any of them set, the transfer stays on pyinfra's connection.
PARAMIKO_ONLY = ("ssh_password", "ssh_key_password", "ssh_paramiko_connect_kwargs")


def openssh_argv(
    data: Mapping[str, Any], host_name: str, remote: Sequence[str]
) -> list[str] | None:
    """`ssh … HOST 'remote argv'` from the connector's data, or None where OpenSSH could not log
    in the way pyinfra does (a password, a key passphrase, paramiko-only options).

    BatchMode: a prompt would hang a deploy, so OpenSSH fails instead and the caller falls back.
    """
    if any(data.get(k) for k in PARAMIKO_ONLY):
        return None
    argv = ["ssh", "-T", "-o", "BatchMode=yes"]
    if data.get("ssh_known_hosts_file"):
        argv += ["-o", f"UserKnownHostsFile={data['ssh_known_hosts_file']}"]
    if data.get("ssh_strict_host_key_checking"):
        argv += ["-o", f"StrictHostKeyChecking={data['ssh_strict_host_key_checking']}"]
    if data.get("ssh_config_file"):
        argv += ["-F", str(data["ssh_config_file"])]
    if data.get("ssh_port"):
        argv += ["-p", str(int(data["ssh_port"]))]
    if data.get("ssh_key"):
        argv += ["-i", str(data["ssh_key"])]
    hostname = str(data.get("ssh_hostname") or host_name)
    user = data.get("ssh_user")
    destination = f"{user}@{hostname}" if user else hostname
    # `--` ends ssh's options: a destination can never be read as one.
    return [*argv, "--", destination, shlex.join(remote)]
