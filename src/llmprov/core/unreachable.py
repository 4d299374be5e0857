"""One line per host that cannot be reached: the reason in words and the address that was tried."""

from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping
from typing import Any

# Checked in order against the error text (paramiko's, pyinfra's or OpenSSH's stderr), lower-cased.
_TEXT_REASONS: tuple[tuple[str, str], ...] = (
    ("connection refused", "connection refused"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network unreachable"),
    ("timed out", "timed out"),
    ("could not resolve", "host name not resolved"),
    ("name or service not known", "host name not resolved"),
    ("temporary failure in name resolution", "host name not resolved"),
    ("host key verification failed", "host key not trusted"),
    ("remote host identification has changed", "host key changed"),
    ("no host key", "host key not known"),
    ("permission denied", "authentication failed"),
    ("authentication", "authentication failed"),
    ("connection reset", "connection reset"),
    ("connection closed", "connection closed"),
)

_ERRNO_REASONS: dict[int, str] = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.ECONNRESET: "connection reset",
}


def unreachable_reason(text: str, errnos: Iterable[int | None] = ()) -> str:
    """The reason a connection failed, in a few words, from socket errnos or else the error text."""
    for code in errnos:
        if code in _ERRNO_REASONS:
            return _ERRNO_REASONS[code]
    low = text.lower()
    for needle, reason in _TEXT_REASONS:
        if needle in low:
            return reason
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no answer"


def connect_address(name: str, data: Mapping[str, Any]) -> str:
    """HOST:PORT that pyinfra's connector for this host dials (ssh, or the `@winrm` connector)."""
    if name.startswith("@winrm/"):
        host = str(data.get("winrm_hostname") or name.removeprefix("@winrm/"))
        port = data.get("winrm_port") or (5986 if data.get("winrm_ssl", True) else 5985)
    elif name.startswith("@local"):
        return "localhost"
    else:
        host = str(data.get("ssh_hostname") or name)
        port = data.get("ssh_port") or 22
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}"


def unreachable_line(host: str, reason: str, address: str) -> str:
    """`h1: unreachable: connection refused on 10.0.0.5:22`."""
    return f"{host}: unreachable: {reason} on {address}"
