"""Facts about Ollama on a host: installed versions and the current one, models, launchd and Windows state.

Every command here exits 0 whatever the host holds (a failed fact fails the host in pyinfra); the
absence of something is an empty answer. The Windows facts are PowerShell, run by the WinRM connector.
"""

from __future__ import annotations

import shlex

from pyinfra.api.facts import FactBase

from llmprov.core.ollama_release import (
    InstallState,
    parse_install_state,
    parse_model_list,
)
from llmprov.core.render import escape


class OllamaInstallState(FactBase[InstallState]):
    """Versions unpacked under `root` (a folder with the completion marker and the binary at
    `binary`, relative to the folder) and the folder the `current` link points at."""

    def command(self, root: str, binary: str = "bin/ollama") -> str:
        r = shlex.quote(root.rstrip("/"))
        b = shlex.quote(binary)
        return (
            f'for d in {r}/*/; do case "$d" in */current/|*.partial/) continue;; esac; '
            f'[ -f "${{d}}.llmprov-release" ] && [ -x "${{d}}"{b} ] && '
            f'echo "installed $(basename "$d")"; done; '
            f'[ -L {r}/current ] && echo "current $(readlink {r}/current)"; true'
        )

    @staticmethod
    def default() -> InstallState:
        return InstallState((), None)

    def process(self, output: list[str]) -> InstallState:
        return parse_install_state(output)


class OllamaModels(FactBase[set[str] | None]):
    """Models the running server lists (`ollama list`), or None when it does not answer."""

    def command(self, binary: str, address: str) -> str:
        return f"OLLAMA_HOST={shlex.quote(address)} {shlex.quote(binary)} list 2>/dev/null || true"

    def process(self, output: list[str]) -> set[str] | None:
        return parse_model_list(output)


class NvTegraRelease(FactBase[str | None]):
    """/etc/nv_tegra_release on Jetson boards (its first line names the L4T release)."""

    def command(self) -> str:
        return "cat /etc/nv_tegra_release 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        return "\n".join(output) or None


# ---------------------------------------------------------------- macOS


class LaunchdLoaded(FactBase[bool]):
    """Whether a launchd job is loaded in the system domain."""

    def command(self, label: str) -> str:
        target = shlex.quote(f"system/{label}")
        return f"launchctl print {target} >/dev/null 2>&1 && echo loaded || true"

    @staticmethod
    def default() -> bool:
        return False

    def process(self, output: list[str]) -> bool:
        return "loaded" in (line.strip() for line in output)


class MacAccount(FactBase[dict[str, int] | None]):
    """A local account's UniqueID and PrimaryGroupID from Directory Services, or None."""

    def command(self, account: str) -> str:
        path = shlex.quote(f"/Users/{account}")
        return f"dscl . -read {path} UniqueID PrimaryGroupID 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, int] | None:
        found: dict[str, int] = {}
        for line in output:
            key, _, value = line.partition(":")
            if value.strip().isdigit():
                found[key.strip()] = int(value.strip())
        return found or None


class MacUsedIds(FactBase[set[int]]):
    """Every UniqueID and PrimaryGroupID in use, so a new role account takes a free one."""

    def command(self) -> str:
        return (
            "dscl . -list /Users UniqueID 2>/dev/null; "
            "dscl . -list /Groups PrimaryGroupID 2>/dev/null; true"
        )

    @staticmethod
    def default() -> set[int]:
        return set()

    def process(self, output: list[str]) -> set[int]:
        used: set[int] = set()
        for line in output:
            parts = line.split()
            if len(parts) >= 2 and parts[-1].lstrip("-").isdigit():
                used.add(int(parts[-1]))
        return used


class BrewCaskVersion(FactBase[str | None]):
    """The installed version of a Homebrew cask, or None."""

    def command(self, brew: str, cask: str) -> str:
        return f"{shlex.quote(brew)} list --cask --versions {shlex.quote(cask)} 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        for line in output:
            parts = line.split()
            if len(parts) >= 2:
                return parts[-1]
        return None


# ---------------------------------------------------------------- Windows (PowerShell)


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted string literal (typographic quotes doubled too)."""
    return escape.powershell_quote(value, multiline=True)


class WinOllamaInstallState(FactBase[InstallState]):
    """Like OllamaInstallState, for a Windows install root whose `current` is a junction."""

    def command(self, root: str, binary: str = "ollama.exe") -> str:
        r = ps_quote(root)
        return (
            f"$r = {r}; "
            "if (Test-Path -LiteralPath $r) { "
            "Get-ChildItem -LiteralPath $r -Directory | Where-Object { "
            "$_.Name -ne 'current' -and $_.Name -notlike '*.partial' -and "
            "(Test-Path -LiteralPath (Join-Path $_.FullName '.llmprov-release')) -and "
            f"(Test-Path -LiteralPath (Join-Path $_.FullName {ps_quote(binary)})) }} | "
            "ForEach-Object { 'installed ' + $_.Name }; "
            "$c = Get-Item -LiteralPath (Join-Path $r 'current') -ErrorAction SilentlyContinue; "
            "if ($c -and $c.Target) { 'current ' + @($c.Target)[0] } }"
        )

    @staticmethod
    def default() -> InstallState:
        return InstallState((), None)

    def process(self, output: list[str]) -> InstallState:
        return parse_install_state(output)


class WinFileSha256(FactBase[str | None]):
    """A file's sha256 (lower case), or None when it does not exist."""

    def command(self, path: str) -> str:
        p = ps_quote(path)
        return (
            f"if (Test-Path -LiteralPath {p} -PathType Leaf) {{ "
            f"(Get-FileHash -Algorithm SHA256 -LiteralPath {p}).Hash.ToLower() }}"
        )

    def process(self, output: list[str]) -> str | None:
        line = "".join(output).strip()
        return line or None


class WinMissingFolders(FactBase[list[str]]):
    """Those of the given folders that do not exist."""

    def command(self, paths: list[str]) -> str:
        listed = ", ".join(ps_quote(p) for p in paths)
        return f"foreach ($p in @({listed})) {{ if (-not (Test-Path -LiteralPath $p)) {{ $p }} }}"

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class WinService(FactBase[dict[str, str] | None]):
    """A Windows service's Status and StartType, or None when it is not installed."""

    def command(self, service: str) -> str:
        return (
            f"$s = Get-Service -Name {ps_quote(service)} -ErrorAction SilentlyContinue; "
            "if ($s) { 'Status ' + $s.Status; 'StartType ' + $s.StartType }"
        )

    def process(self, output: list[str]) -> dict[str, str] | None:
        found = {}
        for line in output:
            key, _, value = line.strip().partition(" ")
            if key and value:
                found[key] = value
        return found or None


class WinOllamaModels(FactBase[set[str] | None]):
    """Models the running server lists, or None when it does not answer."""

    def command(self, binary: str, address: str) -> str:
        return (
            f"$env:OLLAMA_HOST = {ps_quote(address)}; "
            f"if (Test-Path -LiteralPath {ps_quote(binary)}) {{ "
            f"& {ps_quote(binary)} list 2>$null }}"
        )

    def process(self, output: list[str]) -> set[str] | None:
        return parse_model_list(output)


class WinInstalledMarker(FactBase[str | None]):
    """The version llmprov recorded after running the Windows installer into a folder."""

    def command(self, path: str) -> str:
        p = ps_quote(path)
        return f"if (Test-Path -LiteralPath {p}) {{ (Get-Content -LiteralPath {p} -Raw).Trim() }}"

    def process(self, output: list[str]) -> str | None:
        line = "".join(output).strip()
        return line or None
