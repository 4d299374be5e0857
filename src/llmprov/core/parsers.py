"""Parsers of captured command output that more than one engine's deploy reads."""

from __future__ import annotations

import shlex


def parse_os_release(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        parts = shlex.split(value) if value else [""]
        out[key] = parts[0] if parts else ""
    return out


def distro_id(os_release: dict[str, str]) -> str:
    """`debian-12`, `ubuntu-24.04`, `rocky-9.4`: what a build is tied to."""
    return f"{os_release.get('ID', 'linux')}-{os_release.get('VERSION_ID', 'unknown')}"
