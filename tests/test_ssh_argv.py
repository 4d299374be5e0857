"""The OpenSSH command for the wheel stream: pyinfra's connection settings, or no command at all."""

from __future__ import annotations

import itertools
import shlex

import pytest

from llmprov.core.ssh_argv import PARAMIKO_ONLY, openssh_argv

SANDBOX = {
    "ssh_hostname": "10.231.1.2",
    "ssh_user": "root",
    "ssh_key": "/root/.cache/llmprov/ssh/id_ed25519",
    "ssh_known_hosts_file": "/dev/null",
    "ssh_strict_host_key_checking": "no",
    "ssh_port": 2222,
}


def test_the_command_logs_in_as_pyinfra_does_and_never_prompts() -> None:
    argv = openssh_argv(SANDBOX, "t1", ["tar", "-x", "-C", "/var/cache/llmprov/vllm/wheels"])
    assert argv is not None
    assert argv[:4] == ["ssh", "-T", "-o", "BatchMode=yes"]
    pairs = list(itertools.pairwise(argv))
    for pair in [("-o", "UserKnownHostsFile=/dev/null"), ("-o", "StrictHostKeyChecking=no"),
                 ("-p", "2222"), ("-i", SANDBOX["ssh_key"])]:  # fmt: skip
        assert pair in pairs
    assert argv[-3:-1] == ["--", "root@10.231.1.2"]
    assert shlex.split(argv[-1]) == ["tar", "-x", "-C", "/var/cache/llmprov/vllm/wheels"]


def test_without_a_hostname_the_inventory_name_is_the_destination() -> None:
    argv = openssh_argv({}, "gpu-1.example", ["true"])
    assert argv == ["ssh", "-T", "-o", "BatchMode=yes", "--", "gpu-1.example", "true"]


@pytest.mark.parametrize("setting", PARAMIKO_ONLY)
def test_logins_only_paramiko_can_make_get_no_command(setting: str) -> None:
    assert openssh_argv({**SANDBOX, setting: "secret"}, "t1", ["true"]) is None


def test_a_hostile_destination_cannot_become_an_option() -> None:
    argv = openssh_argv({"ssh_hostname": "-oProxyCommand=touch /tmp/x"}, "t1", ["true"])
    assert argv is not None
    assert argv[argv.index("--") + 1] == "-oProxyCommand=touch /tmp/x"
