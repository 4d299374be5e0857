"""`llmprov verify`: pytest-testinfra checks of a deployed engine, over the inventory's own connection."""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmprov.core.config import HostConfig
from llmprov.core.layout import EngineLayout, model_path
from llmprov.core.render.launchd import MAC_OLLAMA_ROOT, ollama_method
from llmprov.core.unreachable import unreachable_reason
from llmprov.core.upgrade import record_names, state_path

# OpenSSH exits 255 when it cannot connect or log in; a remote command's own codes stay below.
SSH_FAILED = 255


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def connect_testinfra(name: str, data: Mapping[str, Any]) -> Any:
    """A testinfra host reached the way pyinfra reaches it (ssh_* data), or locally for @local."""
    import testinfra

    if name.startswith("@local"):
        return testinfra.get_host("local://")
    user = data.get("ssh_user", "root")
    target = data.get("ssh_hostname") or name
    port = data.get("ssh_port")
    spec = f"ssh://{user}@{target}" + (f":{port}" if port else "")
    extra = ["-o", "BatchMode=yes"]
    if data.get("ssh_known_hosts_file"):
        extra += ["-o", f"UserKnownHostsFile={data['ssh_known_hosts_file']}"]
    if str(data.get("ssh_strict_host_key_checking", "")).lower() in ("no", "off", "false"):
        extra += ["-o", "StrictHostKeyChecking=no"]
    return testinfra.get_host(
        spec,
        ssh_identity_file=data.get("ssh_key"),
        ssh_extra_args=shlex.join(extra),
        sudo=bool(data.get("_sudo")),
    )


def _probe(cfg: HostConfig, path: str) -> str:
    addr = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(cfg.bind, cfg.bind)
    inner = (
        f"exec 3<>/dev/tcp/{addr}/{cfg.port} && "
        f"printf 'GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && timeout 5 cat <&3"
    )
    return f"bash -c {shlex.quote(inner)}"


def _literal(text: str | None) -> str:
    if text is None:
        return ""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


_QUOTED = r"(b?'(?:[^'\\]|\\.)*'|b?\"(?:[^\"\\]|\\.)*\")"


def readable_error(exc: BaseException) -> str:
    """An exception as one readable line: testinfra's "CommandResult(backend=<...>)" text becomes
    the command, its exit code and its stderr."""
    text = str(exc)
    if "CommandResult(" not in text:
        return f"{type(exc).__name__}: {text}"
    code = re.search(r"exit_status=(-?\d+)", text)
    command = re.search(r"command=" + _QUOTED, text)
    stderr = re.search(r"_stderr=" + _QUOTED, text)
    err = _literal(stderr.group(1) if stderr else None).strip().splitlines()
    return (
        f"`{_literal(command.group(1) if command else None)}` exited "
        f"{code.group(1) if code else '?'}" + (f": {err[-1]}" if err else "")
    )


def unreachable(host: Any) -> str | None:
    """Why a testinfra host cannot be reached (a few words), or None when a no-op command runs."""
    try:
        out = host.run("true")
    except Exception as exc:  # the backend could not even start the command
        return unreachable_reason(readable_error(exc))
    if out.rc == SSH_FAILED or (out.rc != 0 and not out.stdout):
        return unreachable_reason(out.stderr or f"exit {out.rc}")
    return None


def _check(name: str, fn: Callable[[], tuple[bool, str]]) -> Check:
    try:
        ok, detail = fn()
    except Exception as exc:  # a check that errors is a failed check with the reason shown
        return Check(name, False, readable_error(exc))
    return Check(name, ok, detail)


def verify_host(cfg: HostConfig, host: Any) -> list[Check]:
    """Run every check against one testinfra host; none stops the others."""
    layout = EngineLayout(cfg.engine)
    unit = layout.unit_name
    checks: list[Check] = []

    def user() -> tuple[bool, str]:
        u = host.user(cfg.service_user)
        return u.exists, f"uid {u.uid}, shell {u.shell}" if u.exists else "missing"

    def service() -> tuple[bool, str]:
        s = host.service(unit)
        return s.is_enabled and s.is_running, f"enabled={s.is_enabled} running={s.is_running}"

    def listening() -> tuple[bool, str]:
        want = f"tcp://{cfg.bind}:{cfg.port}"
        mine = [s for s in host.socket.get_listening_sockets() if s.endswith(f":{cfg.port}")]
        return mine == [want], f"listening {', '.join(mine) or 'nowhere'}; want only {want}"

    def settings_file() -> tuple[bool, str]:
        if cfg.engine == "ollama":
            f = host.file(layout.dropin_path)
            return f.exists and f.user == "root", f"{layout.dropin_path} owner {f.user}"
        f = host.file(layout.env_file)
        ok = f.exists and f.mode == 0o600 and f.user == "root"
        return (
            ok,
            f"{layout.env_file} mode {oct(f.mode) if f.exists else '-'} owner {f.user if f.exists else '-'}",
        )

    def model() -> tuple[bool, str]:
        path = model_path(cfg)
        f = host.file(path)
        return f.exists, f"{path} {'present' if f.exists else 'missing'}"

    def api() -> tuple[bool, str]:
        path = "/api/version" if cfg.engine == "ollama" else "/health"
        out = host.run(_probe(cfg, path))
        status = out.stdout.splitlines()[0].strip() if out.stdout else out.stderr.strip()
        return " 200 " in f"{status} ", f"GET {path}: {status or 'no answer'}"

    def linked(current: str) -> str | None:
        link = host.file(current)
        return link.linked_to.rstrip("/").rsplit("/", 1)[-1] if link.is_symlink else None

    def serving() -> str | None:
        """What the record's key must name: the compose project's image, the Mac's Ollama folder
        (or its Homebrew cask), else the version folder `current` links to."""
        if cfg.runtime == "compose":
            project = f"label=com.docker.compose.project=llmprov-{cfg.engine}"
            out = host.run(
                shlex.join(["docker", "ps", "--filter", project, "--format", "{{.Image}}"])
            )
            return out.stdout.split()[0] if out.stdout.split() else None
        if cfg.os == "macos":
            return linked(f"{MAC_OLLAMA_ROOT}/current") if ollama_method(cfg) == "app" else "brew"
        return linked(layout.current)

    def record() -> tuple[bool, str]:
        path = state_path(cfg.os)
        f = host.file(path)
        return record_names(f.content_string if f.exists else None, path, cfg.engine, serving())

    recorded: list[tuple[str, Callable[[], tuple[bool, str]]]] = []
    # Windows hosts are reached over WinRM, which testinfra does not speak: their record is
    # written (C:/ProgramData/llmprov/state.json) but verify cannot read it yet.
    if cfg.runtime in ("systemd", "compose", "launchd") and not cfg.cluster:
        recorded.append(("state record names what serves", record))
    for name, fn in [
        ("service user exists", user),
        (f"{unit} enabled and active", service),
        (f"listening on {cfg.bind}:{cfg.port} only", listening),
        (
            "settings file 0600 root" if cfg.engine != "ollama" else "settings drop-in",
            settings_file,
        ),
        ("model present", model),
        ("API answering", api),
        *recorded,
    ]:
        checks.append(_check(name, fn))
    return checks
