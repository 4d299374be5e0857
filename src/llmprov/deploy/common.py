"""Operations every Linux engine deploy shares: service user, folders, uploads, the unit, readiness."""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO
from typing import Any

from pyinfra.context import host
from pyinfra.operations import files, server, systemd

from llmprov.core.config import HostConfig
from llmprov.core.layout import ENV_DIR, EngineLayout
from llmprov.core.render import RenderedFile
from llmprov.core.snapshot import Snapshot
from llmprov.core.values import probe_address

SHELL = "/usr/sbin/nologin"
# Given where a caller has no snapshot: it vouches for nothing, so every operation runs as before.
NO_SNAPSHOT = Snapshot()


def any_change(metas: list[Any]) -> bool:
    """Whether any of these operations will change the host (evaluated when operations are added)."""
    return any(m.will_change for m in metas)


def service_user(
    cfg: HostConfig, home: str, groups: list[str] | None = None, snap: Snapshot = NO_SNAPSHOT
) -> list[Any]:
    user = cfg.service_user
    ops: list[Any] = []
    if snap.group_ok(user):
        host.noop(f"group {user} exists")
    else:
        ops.append(server.group(name=f"Group {user}", group=user, system=True))
    if snap.user_ok(user, user, groups or [], home, SHELL):
        host.noop(f"user {user} exists as configured")
    else:
        ops.append(
            server.user(
                name=f"User {user}",
                user=user,
                group=user,
                groups=groups or [],
                system=True,
                home=home,
                create_home=False,
                shell=SHELL,
            )
        )
    return ops


def directory(
    snap: Snapshot,
    name: str,
    path: str,
    user: str | None = None,
    group: str | None = None,
    mode: str | None = None,
) -> list[Any]:
    """files.directory, unless the snapshot shows the folder exactly so."""
    if snap.dir_ok(path, user, group, mode):
        host.noop(f"{path} is in place")
        return []
    return [files.directory(name=name, path=path, user=user, group=group, mode=mode)]


def engine_dirs(cfg: HostConfig, snap: Snapshot = NO_SNAPSHOT) -> list[Any]:
    layout = EngineLayout(cfg.engine)
    user = cfg.service_user
    return [
        *directory(snap, "Install root", layout.root, "root", "root", "755"),
        # 0700: a secret written here is out of reach even before its own mode is set.
        *directory(snap, "Settings folder", ENV_DIR, "root", "root", "700"),
        *directory(snap, "State folder", layout.state_dir, user, user, "750"),
        *directory(snap, "Models folder", layout.models_dir, user, user, "750"),
        *directory(snap, "Cache folder", layout.cache_dir, user, user, "750"),
    ]


def engine_dir_paths(cfg: HostConfig) -> list[str]:
    """The folders engine_dirs makes, for a snapshot request."""
    layout = EngineLayout(cfg.engine)
    return [layout.root, ENV_DIR, layout.state_dir, layout.models_dir, layout.cache_dir]


def private_upload_dir(ssh_user: str) -> str:
    """The connecting user's own 0700 folder that a sudo upload passes through.

    pyinfra uploads as the SSH user to a temporary file and copies it into place with sudo; under
    /tmp that file would be readable with the user's umask until the copy. In this folder it is not.
    """
    return f"/tmp/llmprov-upload-{ssh_user}"


def content_sha256(f: RenderedFile) -> str:
    return hashlib.sha256(f.content.encode()).hexdigest()


def upload_paths(rendered: list[RenderedFile]) -> list[str]:
    """The files upload writes and their folders, for a snapshot request."""
    return [*dict.fromkeys(f.path.rsplit("/", 1)[0] for f in rendered), *(f.path for f in rendered)]


def upload(rendered: list[RenderedFile], snap: Snapshot = NO_SNAPSHOT) -> list[Any]:
    metas = []
    # What the snapshot shows in place (content, owner, mode, in a folder) is not uploaded again.
    placed = [
        f
        for f in rendered
        if snap.dir_ok(f.path.rsplit("/", 1)[0])
        and snap.file_ok(f.path, content_sha256(f), f.owner, f.owner, f"{f.mode:o}")
    ]
    for f in placed:
        host.noop(f"{f.path} is up to date")
    rendered = [f for f in rendered if f not in placed]
    secret = [f for f in rendered if not f.mode & 0o077]
    temp_dir = private_upload_dir(str(host.data.get("ssh_user") or "root"))
    if secret:
        # Made as the connecting user (no sudo), so that user can upload into it and nobody else.
        metas.append(
            files.directory(
                name="Private upload folder for secrets", path=temp_dir, mode="700", _sudo=False
            )
        )
    for f in rendered:
        folder = f.path.rsplit("/", 1)[0]
        metas.append(files.directory(name=f"Folder {folder}", path=folder, present=True))
        extra: dict[str, Any] = {"_temp_dir": temp_dir} if f in secret else {}
        metas.append(
            files.put(
                name=f"Upload {f.path}",
                src=StringIO(f.content),
                dest=f.path,
                user=f.owner,
                group=f.owner,
                mode=f"{f.mode:o}",
                **extra,
            )
        )
    return metas


def run_unit(unit: str, changed: bool, snap: Snapshot = NO_SNAPSHOT) -> list[Any]:
    ops: list[Any] = []
    if changed or not snap.taken:
        # Known when planning; where a snapshot is taken, an operation that would only skip
        # itself is not added at all (pyinfra's handling costs milliseconds per operation and host).
        ops.append(systemd.daemon_reload(name="Reload systemd", _if=lambda: changed))
    if not changed and snap.unit_ok(unit):
        # systemd.service would read the unit's state twice (planning, then running) to do nothing.
        host.noop(f"{unit} is running and enabled")
        return ops
    ops.append(
        systemd.service(
            name=f"Run {unit}",
            service=unit,
            running=True,
            enabled=True,
            restarted=changed,
        )
    )
    return ops


def wait_http(cfg: HostConfig, path: str, expect: str, changed: bool, timeout_s: int) -> Any:
    """Wait on the host until GET `path` answers 200 and its body holds `expect` (only after a change).

    Uses bash's /dev/tcp so that hosts without curl or python can still be checked.
    """
    addr = probe_address(cfg.bind_address)
    tcp = shlex.quote(f"/dev/tcp/{addr}/{cfg.port}")
    request = shlex.quote(f"GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n")
    probe = f"exec 3<>{tcp} && printf {request} >&3 && cat <&3"
    failed = shlex.quote(f"no answer from {addr}:{cfg.port}{path} after {timeout_s}s")
    script = (
        f"for i in $(seq {int(timeout_s)}); do "
        f"out=$(timeout 5 bash -c {shlex.quote(probe)} 2>/dev/null) && "
        f"printf '%s' \"$out\" | head -1 | grep -q ' 200 ' && "
        f"printf '%s' \"$out\" | grep -q {shlex.quote(expect)} && exit 0; sleep 1; done; "
        f"echo {failed} >&2; exit 1"
    )
    return server.shell(
        name=f"Wait for {path} on {addr}:{cfg.port}",
        commands=[f"bash -c {shlex.quote(script)}"],
        _if=lambda: changed,
    )
