"""Facts an upgrade decides on: the versions installed under an engine's root and the state record."""

from __future__ import annotations

import shlex

from pyinfra.api.facts import FactBase

from llmprov.core.render import escape
from llmprov.core.upgrade import STATE_PATH, WINDOWS_STATE_PATH, InstallState, parse_install_state


class InstalledVersions(FactBase[InstallState]):
    """Version folders under `root` that are complete (`binary` is executable there and, when
    given, the `marker` written last is present) and the folder the `current` link points at."""

    def command(self, root: str, binary: str, marker: str | None = None) -> str:
        r = shlex.quote(root.rstrip("/"))
        b = shlex.quote(binary)
        done = f'[ -f "${{d}}"{shlex.quote(marker)} ] && ' if marker else ""
        return (
            f'for d in {r}/*/; do case "$d" in */current/|*.partial/) continue;; esac; '
            f'{done}[ -x "${{d}}"{b} ] && echo "installed $(basename "$d")"; done; '
            f'[ -L {r}/current ] && echo "current $(readlink {r}/current)"; true'
        )

    @staticmethod
    def default() -> InstallState:
        return InstallState((), None)

    def process(self, output: list[str]) -> InstallState:
        return parse_install_state(output)


class StateRecord(FactBase[str | None]):
    """The text of /etc/llmprov/state.json, or None where no deploy has written it yet."""

    def command(self, path: str = STATE_PATH) -> str:
        p = shlex.quote(path)
        return f"if [ -f {p} ]; then cat {p}; fi"

    def process(self, output: list[str]) -> str | None:
        return "\n".join(output) if output else None


class WinStateRecord(FactBase[str | None]):
    """The text of the state record on a Windows host, or None where no deploy has written it."""

    def command(self, path: str = WINDOWS_STATE_PATH) -> str:
        p = escape.powershell_quote(path, multiline=True)
        return f"if (Test-Path -LiteralPath {p}) {{ Get-Content -LiteralPath {p} -Raw }}"

    def process(self, output: list[str]) -> str | None:
        return "\n".join(output) if output else None
