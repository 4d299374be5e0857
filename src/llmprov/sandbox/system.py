"""Controller-side primitives the harness builds on: commands, locks, atomic dirs, mounts, /proc."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from llmprov.sandbox import plan
from llmprov.sandbox.errors import SandboxError

# Commands run with a fixed environment, so a caller's locale or PATH cannot change their output.
COMMAND_ENV: Mapping[str, str] = {"PATH": plan.CONTAINER_PATH, "LC_ALL": "C.UTF-8", "HOME": "/root"}


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float | None = 120.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; a failure raises SandboxError with its stderr."""
    try:
        result = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env if env is not None else COMMAND_ENV),
            check=False,
        )
    except FileNotFoundError as exc:
        raise SandboxError(f"command not found: {argv[0]} (running {shlex.join(argv)})") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"timed out after {timeout} s: {shlex.join(argv)}") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise SandboxError(f"exit {result.returncode}: {shlex.join(argv)}: {detail}")
    return result


def require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            "the sandbox harness needs root (overlay mounts, systemd-nspawn, iptables); "
            "run it as root"
        )


def ensure_host_tools(tools: Mapping[str, str] = plan.HOST_TOOLS) -> list[str]:
    """Install, with apt-get, the packages of any missing controller tool; returns those installed."""
    search = plan.CONTAINER_PATH
    missing = sorted(
        {pkg for tool, pkg in tools.items() if shutil.which(tool, path=search) is None}
    )
    if not missing:
        return []
    env = {**COMMAND_ENV, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], env=env, timeout=600)
    run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env, timeout=900)
    still = sorted(t for t in tools if shutil.which(t, path=search) is None)
    if still:
        raise SandboxError(f"installed {', '.join(missing)} but still missing: {', '.join(still)}")
    return missing


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `final`; rename it into place only if the block succeeds.

    Callers hold a lock for `final`, so any leftover temporary sibling is from a build that was
    interrupted and is removed first.
    """
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f".tmp-{final.name}-"
    for stale in parent.glob(prefix + "*"):
        remove_tree(stale)
    temp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield temp
        os.chmod(temp, 0o755)
        os.rename(temp, final)
    except BaseException:
        remove_tree(temp)
        raise


def read_mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def unmount_tree(root: Path) -> None:
    """Unmount everything mounted at or below `root`, deepest first; lazily if busy."""
    root = root.absolute()
    for point in plan.mount_points_under(read_mountinfo(), root):
        if run(["umount", str(point)], check=False).returncode != 0:
            run(["umount", "--lazy", str(point)], check=False)
    left = plan.mount_points_under(read_mountinfo(), root)
    if left:
        raise SandboxError(f"could not unmount {', '.join(map(str, left))}")


def remove_tree(path: Path) -> None:
    """Delete a directory tree, first unmounting anything below it so deletion stays on this tree."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink():
        path.unlink()
        return
    unmount_tree(path)
    shutil.rmtree(path)


def remove_cgroup(path: Path, timeout: float = 5.0) -> None:
    """Remove a cgroup and the ones nspawn made below it, once their processes are gone."""
    deadline = time.monotonic() + timeout
    while path.exists():
        try:
            for dirpath, _dirs, _files in os.walk(path, topdown=False):
                os.rmdir(dirpath)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SandboxError(f"cannot remove cgroup {path}: {exc}") from exc
            time.sleep(0.05)


def proc_stat(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of a live process, or None if it is gone."""
    try:
        return plan.parse_proc_stat(Path(f"/proc/{pid}/stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None


def is_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie nobody reaps counts as gone."""
    stat = proc_stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, comm) of the live children of `pid`."""
    found: list[tuple[int, str]] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat is not None and stat[2] == pid and stat[1] not in ("Z", "X"):
            found.append((int(entry.name), stat[0]))
    return found


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def read_text(path: Path, default: str = "") -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return default


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
