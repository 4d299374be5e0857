"""Unreachable hosts as one line each, readable testinfra errors, and masked file diffs."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmprov.checks.host_verify import readable_error
from llmprov.core.file_diff import MASK, file_diff, mask
from llmprov.core.unreachable import connect_address, unreachable_line, unreachable_reason


@pytest.mark.parametrize(
    ("text", "errnos", "reason"),
    [
        # paramiko's NoValidConnectionsError keeps the errno per address; its text does not say why.
        (
            "Could not connect ([Errno None] Unable to connect to port 22 on 10.0.0.5)",
            [None, 111],
            "connection refused",
        ),
        ("Could not connect (timed out)", [], "timed out"),
        (
            "Could not resolve hostname ([Errno -2] Name or service not known)",
            [],
            "host name not resolved",
        ),
        ("ssh: connect to host 10.0.0.5 port 22: Connection refused\r\n", [], "connection refused"),
        ("ssh: connect to host 10.0.0.9 port 22: No route to host", [], "no route to host"),
        ("root@h: Permission denied (publickey).", [], "authentication failed"),
        ("Host key verification failed.", [], "host key not trusted"),
        ("something else\nthe last line", [], "the last line"),
        ("", [errno.EHOSTUNREACH], "no route to host"),
    ],
)
def test_unreachable_reason(text: str, errnos: list[int | None], reason: str) -> None:
    assert unreachable_reason(text, errnos) == reason


def test_unreachable_line_names_host_reason_and_address() -> None:
    data = {"ssh_hostname": "10.0.0.5"}
    line = unreachable_line("h1", "connection refused", connect_address("h1", data))
    assert line == "h1: unreachable: connection refused on 10.0.0.5:22"
    assert connect_address("@winrm/win", {"winrm_hostname": "10.0.0.50"}) == "10.0.0.50:5986"
    assert connect_address("@winrm/win", {"winrm_ssl": False}) == "win:5985"
    assert connect_address("v6", {"ssh_hostname": "fd00::5", "ssh_port": 2222}) == "[fd00::5]:2222"


def test_testinfra_command_result_becomes_one_readable_line() -> None:
    raw = AssertionError(
        "Unexpected exit code 255 for CommandResult(backend=<testinfra.backend.ssh.SshBackend "
        "object at 0x7f3c>, exit_status=255, command=b'getent passwd llamacpp', "
        "_stdout=b'', _stderr=b'ssh: connect to host 10.0.0.5 port 22: Connection refused\\r\\n')"
    )
    line = readable_error(raw)
    assert "CommandResult" not in line and "0x7f3c" not in line
    assert line == (
        "`getent passwd llamacpp` exited 255: ssh: connect to host 10.0.0.5 port 22: "
        "Connection refused"
    )
    assert readable_error(ValueError("plain")) == "ValueError: plain"


def test_diff_of_a_new_file_and_of_a_changed_one() -> None:
    new = file_diff("/etc/x.env", None, "A=1\nKEY=s3cret\n", ["s3cret"])
    assert new.splitlines()[:2] == ["--- /dev/null", "+++ /etc/x.env (to upload)"]
    assert f"+KEY={MASK}" in new and "s3cret" not in new
    changed = file_diff("/etc/x.env", ["A=1", "KEY=old-secret"], "A=2\nKEY=s3cret\n", ["s3cret"])
    assert "-A=1" in changed and "+A=2" in changed
    # The host's old key is shown as it is: only the keys llmprov holds are known secrets.
    assert "s3cret" not in changed


def test_no_diff_when_equal_and_a_note_when_only_a_secret_changes() -> None:
    assert file_diff("/f", ["a", "b"], "a\nb\n") == ""
    assert file_diff("/f", [f"K={MASK}"], "K=s3cret\n", ["s3cret"]) == (
        "/f: only a masked secret changes"
    )


secret_st = st.text(alphabet="abcXYZ019-_", min_size=1, max_size=12)


@given(st.lists(secret_st, max_size=3), st.text(alphabet="abcXYZ019-_ =\n", max_size=60))
def test_mask_leaves_no_secret_behind(secrets: list[str], text: str) -> None:
    body = text + "".join(secrets)
    assert not any(s in mask(body, secrets) for s in secrets)
