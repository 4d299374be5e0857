"""Operations every Linux engine deploy shares: service user, folders, uploads, the unit, readiness."""

from __future__ import annotations

import shlex
from io import StringIO
from typing import Any

from pyinfra.context import host
from pyinfra.operations import files, server, systemd

from llmprov.core.config import HostConfig
from llmprov.core.layout import ENV_DIR, EngineLayout
from llmprov.core.render import RenderedFile
from llmprov.core.values import probe_address


def any_change(metas: list[Any]) -> bool:
    """Whether any of these operations will change the host (evaluated when operations are added)."""
    return any(m.will_change for m in metas)


def service_user(cfg: HostConfig, home: str, groups: list[str] | None = None) -> list[Any]:
    user = cfg.service_user
    return [
        server.group(name=f"Group {user}", group=user, system=True),
        server.user(
            name=f"User {user}",
            user=user,
            group=user,
            groups=groups or [],
            system=True,
            home=home,
            create_home=False,
            shell="/usr/sbin/nologin",
        ),
    ]


def engine_dirs(cfg: HostConfig) -> list[Any]:
    layout = EngineLayout(cfg.engine)
    user = cfg.service_user
    return [
        files.directory(
            name="Install root", path=layout.root, user="root", group="root", mode="755"
        ),
        files.directory(
            # 0700: a secret written here is out of reach even before its own mode is set.
            name="Settings folder",
            path=ENV_DIR,
            user="root",
            group="root",
            mode="700",
        ),
        files.directory(
            name="State folder", path=layout.state_dir, user=user, group=user, mode="750"
        ),
        files.directory(
            name="Models folder", path=layout.models_dir, user=user, group=user, mode="750"
        ),
        files.directory(
            name="Cache folder", path=layout.cache_dir, user=user, group=user, mode="750"
        ),
    ]


def private_upload_dir(ssh_user: str) -> str:
    """The connecting user's own 0700 folder that a sudo upload passes through.

    pyinfra uploads as the SSH user to a temporary file and copies it into place with sudo; under
    /tmp that file would be readable with the user's umask until the copy. In this folder it is not.
    """
    return f"/tmp/llmprov-upload-{ssh_user}"


def upload(rendered: list[RenderedFile]) -> list[Any]:
    metas = []
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


def run_unit(unit: str, changed: bool) -> list[Any]:
    return [
        systemd.daemon_reload(name="Reload systemd", _if=lambda: changed),
        systemd.service(
            name=f"Run {unit}",
            service=unit,
            running=True,
            enabled=True,
            restarted=changed,
        ),
    ]


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
