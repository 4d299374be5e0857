"""The one upgrade protocol every Linux engine deploy follows: stage, check, switch, prove, record, prune.

1. Stage: the engine's deploy installs the new version into its own folder beside the running one
   (/opt/llmprov/<engine>/<key>); nothing the running server uses changes.
2. Check the binary: before `current` moves, the new version's own program runs (`--version`, or
   vLLM's import probe); a failure stops the host with the old version still serving.
3. Where two instances fit (llama.cpp on the CPU: both map the same model file), the new version
   serves on a spare port first and must answer there (`spare_port_command`).
4. Switch `current` to the new folder in one rename, restart the unit, and wait until the new
   version answers on the real port. Where two instances do not fit (vLLM preallocates its memory,
   a GPU build holds the model in GPU memory), this is the check of the answer: if it does not
   come, the link goes back to the version before, the unit restarts on it, and the deploy fails
   once the old version answers again (or says that it does not).
5. Record what now serves in /etc/llmprov/state.json, only when it changed, so a re-run is a no-op.
6. Prune: remove installed versions the record no longer needs (all but `keep_versions` earlier).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from io import StringIO
from typing import Any

from pyinfra.context import host
from pyinfra.operations import files, server

from llmprov.core import values
from llmprov.core.config import HostConfig
from llmprov.core.layout import EngineLayout
from llmprov.core.snapshot import Snapshot
from llmprov.core.upgrade import (
    STATE_PATH,
    Deployed,
    EngineState,
    InstallState,
    StateError,
    parse_install_state,
    parse_state,
    prune_plan,
    record_deploy,
    render_state,
    state_path,
)
from llmprov.deploy.common import NO_SNAPSHOT, any_change, run_unit
from llmprov.deploy.models import model_digest
from llmprov.facts.versions import InstalledVersions, StateRecord

# What marks a version folder complete, per engine: (program inside it, marker written last).
VERSION_FILES: dict[str, tuple[str, str | None]] = {
    "llamacpp": ("bin/llama-server", None),
    "vllm": ("bin/python", ".llmprov-ok"),
    "ollama": ("bin/ollama", ".llmprov-release"),
}


class UpgradeError(Exception):
    """The host's state record cannot be read; the message names the host and the file."""


@dataclass(frozen=True)
class Readiness:
    """How a deploy knows the new version serves: GET `path` until its answer holds `expect`.

    `serving` is what any version's answer holds, waited for after a switch back.
    """

    path: str
    expect: str
    serving: str
    timeout_s: int
    label: str


def probe_address(cfg: HostConfig) -> str:
    """Where a check on the host reaches the server: the typed bind address (a wildcard: loopback)."""
    return values.probe_address(cfg.bind_address)


def switch_command(current: str, target: str) -> str:
    """Point `current` at `target` in one rename, so the link is never missing or half-made."""
    tmp = f"{current}.new"
    return "set -eu\n" + "\n".join(
        [shlex.join(["ln", "-sfn", target, tmp]), shlex.join(["mv", "-Tf", tmp, current])]
    )


def wait_command(
    cfg: HostConfig,
    ready: Readiness,
    rollback: tuple[str, str, str] | None,
    discard: str | None = None,
) -> str:
    """Poll `ready.path` until the answer holds `ready.expect`; on failure, roll back when told how.

    `rollback` is (current link, previous target, unit): the link goes back and the unit restarts
    on the version that served before, and the command still fails so the deploy reports it. With
    a unit to watch, the wait also ends as soon as the new version exits (systemd restarted the
    unit, or gave up on it): a server that dies on its first start does not come up on its second,
    and waiting out the timeout (minutes for vLLM) would only keep the old version down longer.
    `discard` is the failed version's folder, removed after the switch back: the host is left as
    it was before the upgrade, so a re-run of what serves changes nothing.
    """
    addr = probe_address(cfg)
    request = f"GET {ready.path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n"
    # bash's /dev/tcp, so that hosts without curl can be checked; `timeout` bounds a stuck read.
    # Quoted although the address is a typed IP: no value reaches a shell unquoted.
    tcp = shlex.quote(f"/dev/tcp/{addr}/{cfg.port}")
    probe = f"(exec 3<>{tcp} && printf {shlex.quote(request)} >&3 && timeout 5 cat <&3)"
    expect = shlex.quote(ready.expect)
    timeout_s = ready.timeout_s
    failed = f"{ready.label} did not answer on {addr}:{cfg.port}{ready.path} after {timeout_s}s"
    lines = ['exited=""']
    watch: list[str] = []
    if rollback is not None:
        unit = rollback[2]
        restarts = shlex.join(["systemctl", "show", "-p", "NRestarts", "--value", unit])
        sub = shlex.join(["systemctl", "show", "-p", "SubState", "--value", unit])
        # The server's own output (not systemd's lines about it): where its error is.
        journal = shlex.join(
            ["journalctl", f"_SYSTEMD_UNIT={unit}", "-n", "10", "--no-pager", "-o", "cat"]
        )
        died = f"{ready.label} exited before it answered ({unit}); its last lines:"
        lines.append(f"n0=$({restarts} 2>/dev/null)")
        # SubState auto-restart: it exited and systemd waits RestartSec; NRestarts catches a
        # restart between two polls; failed or dead: systemd gave up, or it exited cleanly.
        watch = [
            f"  n=$({restarts} 2>/dev/null); state=$({sub} 2>/dev/null)",
            '  case "$state" in auto-restart|failed|dead) exited=1;; esac',
            '  [ "${n:-0}" -gt "${n0:-0}" ] 2>/dev/null && exited=1',
            '  if [ -n "$exited" ]; then',
            f"    echo {shlex.quote(died)} >&2; {journal} >&2 || true; break",
            "  fi",
        ]
    lines += [
        f"for i in $(seq {timeout_s}); do",
        f"  out=$( {probe} 2>/dev/null || true)",
        f'  case "$out" in *{expect}*) exit 0;; esac',
        *watch,
        "  sleep 1",
        "done",
        f'[ -n "$exited" ] || echo {shlex.quote(failed)} >&2',
    ]
    if rollback is not None:
        link, previous, unit = rollback
        back = f"rolled back: {link} -> {previous} again, {unit} restarted"
        # The deploy still fails, but only once the version that served before answers again.
        lines += [
            switch_command(link, previous).removeprefix("set -eu\n"),
            # A new version that kept failing may have hit systemd's start limit; clear it first.
            shlex.join(["systemctl", "reset-failed", unit]) + " || true",
            shlex.join(["systemctl", "restart", unit]),
            *(
                [
                    shlex.join(["rm", "-rf", discard]),
                    f"echo {shlex.quote('removed ' + discard)} >&2",
                ]
                if discard
                else []
            ),
            f"for i in $(seq {timeout_s}); do",
            f"  out=$( {probe} 2>/dev/null || true)",
            f'  case "$out" in *{shlex.quote(ready.serving)}*) '
            f"echo {shlex.quote(back + ', serving again')} >&2; exit 1;; esac",
            "  sleep 1",
            "done",
            f"echo {shlex.quote(back + ', but it does not answer either')} >&2",
        ]
    lines.append("exit 1")
    return "bash -c " + shlex.quote("\n".join(lines))


def previous_key(installed: InstallState, key: str) -> str | None:
    """The version `current` points at now, when it is not the one being deployed."""
    return installed.current if installed.current and installed.current != key else None


def check_binary(installed: InstallState, key: str, label: str, argv: list[str]) -> list[Any]:
    """Run the staged version's program before any switch to it; nothing when no switch is due."""
    if installed.current == key:
        return []
    return [server.shell(name=f"Check {label} runs", commands=[shlex.join(argv)])]


def spare_port_command(
    label: str, argv: list[str], user: str, ready: Readiness, first_port: int
) -> str:
    """Start `argv` (a server without its address) as `user` on a free loopback port from
    `first_port`, wait until `ready.path` answers with `ready.expect`, then stop it."""
    q = shlex.quote
    last = first_port + 50
    request = f"GET {ready.path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n"
    probe = f"(exec 3<>/dev/tcp/127.0.0.1/$port && printf '{request}' >&3 && timeout 5 cat <&3)"
    server = shlex.join(["runuser", "-u", user, "--", *argv, "--host", "127.0.0.1", "--port"])
    lines = [
        'log=$(mktemp) port=""',
        f"for p in $(seq {first_port} {last}); do",
        '  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { port=$p; break; }',
        "done",
        f'[ -n "$port" ] || {{ echo {q(f"no free port in {first_port}-{last} to check {label}")} >&2; exit 1; }}',
        f'{server} "$port" >"$log" 2>&1 &',
        "pid=$!",
        "trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f \"$log\"' EXIT",
        f"for i in $(seq {ready.timeout_s}); do",
        f'  kill -0 $pid 2>/dev/null || {{ echo {q(label + " exited before it answered:")} >&2; tail -n 20 "$log" >&2; exit 1; }}',
        f"  out=$( {probe} 2>/dev/null || true)",
        f'  case "$out" in *{q(ready.expect)}*) exit 0;; esac',
        "  sleep 1",
        "done",
        f"echo {q(f'{label} did not answer on a spare port after {ready.timeout_s}s:')} >&2",
        'tail -n 20 "$log" >&2',
        "exit 1",
    ]
    return "bash -c " + q("\n".join(lines))


def switch_and_prove(
    cfg: HostConfig,
    layout: EngineLayout,
    key: str,
    installed: InstallState,
    changes: list[Any],
    ready: Readiness,
    snap: Snapshot = NO_SNAPSHOT,
    discard_failed: bool = True,
) -> bool:
    """Switch `current` to `key` (when it points elsewhere), restart on any change, and wait for
    the answer, switching back on failure. Returns whether the unit restarts.

    A deploy discards a new version that failed (`discard_failed`); a rollback keeps the earlier
    version it could not start, which the record still names."""
    previous = previous_key(installed, key)
    switch: list[Any] = []
    if installed.current != key:
        switch.append(
            server.shell(
                name=f"Switch {layout.current} to {key}"
                + (f" (from {previous})" if previous else ""),
                commands=[switch_command(layout.current, layout.version_dir(key))],
            )
        )
    else:
        host.noop(f"{layout.current} already points at {key}")
    changed = any_change([*changes, *switch])
    run_unit(layout.unit_name, changed, snap)
    rollback = (
        (layout.current, layout.version_dir(previous), layout.unit_name)
        if previous and switch
        else None
    )
    if changed or not snap.taken:  # as run_unit's reload: not added where it would skip itself
        server.shell(
            name=f"Wait for {ready.label} on {ready.path}",
            commands=[
                wait_command(
                    cfg,
                    ready,
                    rollback,
                    layout.version_dir(key) if rollback and discard_failed else None,
                )
            ],
            _if=lambda: changed,
        )
    return changed


def installed_section(engine: str) -> tuple[str, str]:
    """The snapshot section that reads what InstalledVersions reads: (name, command)."""
    binary, marker = VERSION_FILES[engine]
    root = EngineLayout(engine).root
    return f"installed {root}", InstalledVersions().command(root, binary, marker)


def state_section() -> tuple[str, str]:
    """The snapshot section that reads what StateRecord reads: (name, command)."""
    return f"state {STATE_PATH}", StateRecord().command()


def installed_versions(engine: str, snap: Snapshot = NO_SNAPSHOT) -> InstallState:
    lines = snap.section(installed_section(engine)[0])
    if lines is not None:
        return parse_install_state(lines)
    binary, marker = VERSION_FILES[engine]
    root = EngineLayout(engine).root
    return host.get_fact(InstalledVersions, root=root, binary=binary, marker=marker)


def read_state(cfg: HostConfig, snap: Snapshot = NO_SNAPSHOT) -> dict[str, EngineState]:
    lines = snap.section(state_section()[0])
    try:
        if lines is not None:
            return parse_state("\n".join(lines) if lines else None)
        return parse_state(host.get_fact(StateRecord))
    except StateError as exc:
        raise UpgradeError(f"{cfg.name}: {exc}") from exc


def now() -> str:
    """When a deploy happened, as the record writes it. A seam for tests."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def deployed(cfg: HostConfig, version: str, key: str) -> Deployed:
    return Deployed(
        engine=cfg.engine,
        version=version,
        key=key,
        model=cfg.model_ref.raw,
        model_digest=model_digest(cfg),
        time=now(),
    )


def write_state(new: dict[str, EngineState], note: str, path: str = STATE_PATH, **how: Any) -> Any:
    """Upload the record to `path` (a POSIX host; `how` adds pyinfra arguments, like sudo)."""
    return files.put(
        name=f"Record {note} in {path}",
        src=StringIO(render_state(new)),
        dest=path,
        user="root",
        group=how.pop("group", "root"),
        mode="644",
        **how,
    )


def record_serving(
    cfg: HostConfig,
    now_serving: Deployed,
    text: str | None,
    write: Callable[[dict[str, EngineState], str], Any],
) -> None:
    """Record what serves for a runtime without version folders to switch or prune (compose,
    launchd, a Windows service): `text` is the record read from the host, `write` uploads the new
    one, called only when it changed so a re-run is a no-op."""
    path = state_path(cfg.os)
    try:
        state = parse_state(text, path)
    except StateError as exc:
        raise UpgradeError(f"{cfg.name}: {exc}") from exc
    new = record_deploy(state, now_serving, cfg.settings.keep_versions)
    if new is None:
        host.noop(f"{path} already records {cfg.engine} {now_serving.key}")
    else:
        write(new, f"{cfg.engine} {now_serving.key}")


def record_and_prune(
    cfg: HostConfig,
    layout: EngineLayout,
    now_serving: Deployed,
    installed: InstallState,
    snap: Snapshot = NO_SNAPSHOT,
) -> None:
    """Write the record (only when it changed) and remove versions it no longer keeps."""
    state = read_state(cfg, snap)
    new = record_deploy(
        state,
        now_serving,
        cfg.settings.keep_versions,
        running=previous_key(installed, now_serving.key),
    )
    if new is None:
        host.noop(f"{STATE_PATH} already records {cfg.engine} {now_serving.key}")
        keep = state[cfg.engine].keys()
    else:
        write_state(new, f"{cfg.engine} {now_serving.key}")
        keep = new[cfg.engine].keys()
    stale = prune_plan(installed.installed, keep)
    if stale:
        server.shell(
            name=f"Remove older {cfg.engine} versions: {', '.join(stale)}",
            commands=[shlex.join(["rm", "-rf", *(layout.version_dir(k) for k in stale)])],
        )
