"""Facts about a host's platform that decide which build of an engine fits it."""

from __future__ import annotations

from pyinfra.api.facts import FactBase


class CpuFlagsDigest(FactBase[str | None]):
    """sha256 of the first CPU's feature flags: a native build runs where this is the same."""

    def command(self) -> str:
        return "grep -m1 -E '^(flags|Features)' /proc/cpuinfo | sha256sum | cut -c1-16"

    def process(self, output: list[str]) -> str | None:
        line = "".join(output).strip()
        return line or None


class OsRelease(FactBase[dict[str, str]]):
    """/etc/os-release as a mapping (ID, VERSION_ID, ...)."""

    def command(self) -> str:
        return "cat /etc/os-release"

    def process(self, output: list[str]) -> dict[str, str]:
        from llmprov.core.parsers import parse_os_release

        return parse_os_release(output)
