"""Every rendered systemd unit passes `systemd-analyze verify` and scores <= 2.5 on `security`.

`systemd-analyze verify` looks up a unit's dependencies (network-online.target, sysinit.target...)
and its ExecStart binary on the machine it runs on. With `--root=DIR` (systemd 252 has it) it looks
under DIR for both instead, and reads the unit's drop-ins from there too. So each host's units are
checked in a throwaway root under tmp_path: the system's unit folder (linked from one copy), the
rendered unit and drop-ins at their paths under /etc/systemd/system, and a stub executable at the
exact ExecStart path. Nothing outside tmp_path is written, so nothing needs cleaning up but it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from llmprov.core.layout import SYSTEMD_DIR

if TYPE_CHECKING:
    # Only for annotations: at run time `conftest` may name another folder's conftest module.
    from conftest import RenderedHost

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# Where distributions install the units that the rendered ones depend on.
SYSTEM_UNIT_DIRS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
MAX_EXPOSURE = 2.5
_EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+)")

pytestmark = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze not found (Debian's `systemd` package provides it; CI installs it)",
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "cat", "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _exec_start(unit_text: str) -> str:
    line = next(x for x in unit_text.splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))[0]


def _units(host: RenderedHost) -> list[str]:
    return [f.path for f in host.files if f.path.endswith(".service")]


@pytest.fixture(scope="module")
def system_units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the system's unit folder; each root below links to it instead of copying."""
    source = next((d for d in SYSTEM_UNIT_DIRS if d.is_dir()), None)
    if source is None:
        pytest.skip(
            "no system unit folder (looked in " + ", ".join(map(str, SYSTEM_UNIT_DIRS)) + ")"
        )
    copy = tmp_path_factory.mktemp("system-units") / "system"
    shutil.copytree(source, copy, symlinks=True)
    return copy


def _root_for(host: RenderedHost, tmp: Path, units: Path, stub_binary: bool = True) -> Path:
    """A root holding the system's units, every file of `host` under SYSTEMD_DIR, and stubs."""
    root = tmp / host.case / host.cfg.name
    # Hard links: the system units are only read, and linking is much faster than copying.
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True, copy_function=os.link)
    for f in host.files:
        if f.path.startswith(SYSTEMD_DIR + "/"):
            target = root / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.content, encoding="utf-8")
            if stub_binary and f.path.endswith(".service"):
                binary = root / _exec_start(f.content).lstrip("/")
                binary.parent.mkdir(parents=True, exist_ok=True)
                binary.write_text("#!/bin/sh\nexit 0\n")
                binary.chmod(0o755)
    return root


def _systemd_hosts(rendered_hosts: list[RenderedHost]) -> list[RenderedHost]:
    return [h for h in rendered_hosts if h.cfg.runtime == "systemd"]


def test_cases_render_units_for_every_engine(rendered_hosts: list[RenderedHost]) -> None:
    # The checks below loop over these units; an empty loop would pass without checking anything.
    engines = {h.cfg.engine for h in _systemd_hosts(rendered_hosts)}
    assert engines == {"vllm", "llamacpp", "ollama"}


def test_every_unit_passes_systemd_analyze_verify(
    rendered_hosts: list[RenderedHost], tmp_path: Path, system_units: Path
) -> None:
    failures = []
    for host in _systemd_hosts(rendered_hosts):
        root = _root_for(host, tmp_path, system_units)
        for unit in _units(host):
            proc = _run("verify", f"--root={root}", "--man=no", Path(unit).name)
            # verify exits 0 on warnings such as an unknown key; any output is a finding.
            if proc.returncode != 0 or proc.stdout.strip() or proc.stderr.strip():
                failures.append(
                    f"{host.label}: {unit}: rc={proc.returncode}\n{proc.stdout}{proc.stderr}"
                )
    assert not failures, "\n".join(failures)


def test_the_ollama_unit_is_verified_with_its_drop_in(
    rendered_hosts: list[RenderedHost], tmp_path: Path, system_units: Path
) -> None:
    hosts = [h for h in _systemd_hosts(rendered_hosts) if h.cfg.engine == "ollama"]
    assert hosts
    for host in hosts:
        root = _root_for(host, tmp_path, system_units)
        dropins = list((root / SYSTEMD_DIR.lstrip("/") / "ollama.service.d").glob("*.conf"))
        assert [p.name for p in dropins] == ["llmprov.conf"], host.label

        clean = _run("verify", f"--root={root}", "--man=no", "ollama.service")
        assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", ""), host.label
        # The same run sees a fault planted in the drop-in, so the drop-in is really read.
        dropins[0].write_text(dropins[0].read_text() + "NotASystemdKey=1\n")
        planted = _run("verify", f"--root={root}", "--man=no", "ollama.service")
        assert "NotASystemdKey" in planted.stderr, host.label


def test_verify_fails_when_the_exec_start_binary_is_missing(
    rendered_hosts: list[RenderedHost], tmp_path: Path, system_units: Path
) -> None:
    # Without the stub verify must complain, which shows the binary is looked up under --root.
    host = _systemd_hosts(rendered_hosts)[0]
    unit = next(f for f in host.files if f.path.endswith(".service"))
    root = _root_for(host, tmp_path, system_units, stub_binary=False)
    proc = _run("verify", f"--root={root}", "--man=no", Path(unit.path).name)
    assert proc.returncode != 0
    assert f"{_exec_start(unit.content)} is not executable" in proc.stderr


def test_every_unit_scores_at_most_2_5_on_systemd_analyze_security(
    rendered_hosts: list[RenderedHost], tmp_path: Path, system_units: Path
) -> None:
    scores = {}
    for host in _systemd_hosts(rendered_hosts):
        root = _root_for(host, tmp_path, system_units)
        for unit in _units(host):
            name = Path(unit).name
            proc = _run("security", "--offline=true", f"--root={root}", "--no-pager", name)
            found = _EXPOSURE.search(proc.stdout)
            assert found, f"{host.label}: {unit}: no exposure line\n{proc.stdout}{proc.stderr}"
            assert found.group(1) == name
            scores[f"{host.label}:{name}"] = float(found.group(2))
    assert len(scores) == sum(len(_units(h)) for h in _systemd_hosts(rendered_hosts))
    assert {k: v for k, v in scores.items() if v > MAX_EXPOSURE} == {}, scores
