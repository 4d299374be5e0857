"""Deploy of Ollama on macOS: the app archive (pinned, verified, one folder per version) or the
Homebrew cask, run by launchd as a LaunchDaemon under the `_ollama` role account.

With the app archive, upgrades are as safe as on Linux: the new `Ollama-darwin.zip` is checked
against the release's sha256sum.txt and unpacked beside the running version, then `current` moves,
the job restarts, and if /api/version does not name the new version the link goes back. The cask
installs whatever version Homebrew has (no pin is possible): the deploy installs it, upgrades it
when it is older than `ollama.version`, and waits for any version to answer.

Commands that change the system run with sudo (`_sudo=True`), Homebrew's without (it refuses root).
"""

from __future__ import annotations

import shlex
from io import StringIO
from typing import Any

from pyinfra.context import host
from pyinfra.operations import files, server

from llmprov.core.config import HostConfig
from llmprov.core.ollama_release import (
    MAC_APP_ARCHIVE,
    change_kind,
    compare_versions,
    digest_for,
    prune_candidates,
)
from llmprov.core.render.launchd import (
    BREW_BIN,
    BREW_CASK,
    MAC_APP_BINARY,
    MAC_OLLAMA_BIN,
    MAC_OLLAMA_HOME,
    MAC_OLLAMA_ROOT,
    MAC_OLLAMA_USER,
    free_role_id,
    label,
    ollama_log_dir,
    ollama_method,
)
from llmprov.core.render.plan import plan_host
from llmprov.core.upgrade import MAC_STATE_PATH
from llmprov.core.values import host_port
from llmprov.deploy.ollama import (
    READY_TIMEOUT_S,
    RELEASE_MARKER,
    OllamaDeployError,
    fetch_archive,
    probe_address,
    pull_model,
    release_checksums,
    source_for,
)
from llmprov.deploy.upgrade import deployed, record_serving, write_state
from llmprov.facts.ollama import (
    BrewCaskVersion,
    LaunchdLoaded,
    MacAccount,
    MacUsedIds,
    OllamaInstallState,
)
from llmprov.facts.versions import StateRecord

DOWNLOAD_DIR = f"{MAC_OLLAMA_ROOT}/.downloads"
CLI_LINK = "/usr/local/bin/ollama"
SUDO: dict[str, Any] = {"_sudo": True}
# macOS has no sha256sum; shasum prints the same `<digest>  <file>` line.
SHA256_MACOS = ("shasum", "-a", "256")


def _sh(lines: list[str]) -> str:
    return "set -eu\n" + "\n".join(lines)


def role_account_command(uid: int) -> str:
    """Create the `_ollama` group and hidden user with Directory Services, one ID for both."""
    user, home = MAC_OLLAMA_USER, MAC_OLLAMA_HOME
    group_path, user_path = f"/Groups/{user}", f"/Users/{user}"
    lines = [
        shlex.join(["dscl", ".", "-create", group_path]),
        shlex.join(["dscl", ".", "-create", group_path, "PrimaryGroupID", str(uid)]),
        shlex.join(["dscl", ".", "-create", group_path, "RealName", "Ollama"]),
        shlex.join(["dscl", ".", "-create", user_path]),
        shlex.join(["dscl", ".", "-create", user_path, "UniqueID", str(uid)]),
        shlex.join(["dscl", ".", "-create", user_path, "PrimaryGroupID", str(uid)]),
        shlex.join(["dscl", ".", "-create", user_path, "UserShell", "/usr/bin/false"]),
        shlex.join(["dscl", ".", "-create", user_path, "NFSHomeDirectory", home]),
        shlex.join(["dscl", ".", "-create", user_path, "RealName", "Ollama"]),
        shlex.join(["dscl", ".", "-create", user_path, "IsHidden", "1"]),
        shlex.join(["dscl", ".", "-create", user_path, "Password", "*"]),
    ]
    return _sh(lines)


def _account_and_folders(cfg: HostConfig) -> list[Any]:
    ops: list[Any] = []
    if host.get_fact(MacAccount, account=MAC_OLLAMA_USER) is None:
        used: set[int] = host.get_fact(MacUsedIds)
        uid = free_role_id(used)
        ops.append(
            server.shell(
                name=f"Role account {MAC_OLLAMA_USER} (ID {uid})",
                commands=[role_account_command(uid)],
                **SUDO,
            )
        )
    else:
        host.noop(f"role account {MAC_OLLAMA_USER} exists")
    folders = [MAC_OLLAMA_HOME, ollama_log_dir()]
    if cfg.settings.ollama.models_dir:
        folders.append(cfg.settings.ollama.models_dir)
    for path in folders:
        ops.append(
            files.directory(
                name=f"Folder {path}",
                path=path,
                user=MAC_OLLAMA_USER,
                group=MAC_OLLAMA_USER,
                mode="750",
                _sudo=True,
            )
        )
    return ops


def switch_command(current: str, target: str) -> str:
    """Replace the link in one rename; BSD mv's -h keeps it from following the old link."""
    tmp = f"{current}.new"
    return _sh([shlex.join(["ln", "-sfn", target, tmp]), shlex.join(["mv", "-fh", tmp, current])])


def _install_app(cfg: HostConfig, version: str, current: str | None) -> list[Any]:
    source = source_for(cfg)
    checksums = release_checksums(cfg, source)
    digest = digest_for(checksums, MAC_APP_ARCHIVE, source)
    final = f"{DOWNLOAD_DIR}/{MAC_APP_ARCHIVE}"
    kind = change_kind(current, version)
    ops: list[Any] = [
        files.directory(name="Install root", path=MAC_OLLAMA_ROOT, mode="755", **SUDO),
        files.directory(name="Download folder", path=DOWNLOAD_DIR, mode="700", **SUDO),
    ]
    ops += fetch_archive(
        cfg,
        source,
        MAC_APP_ARCHIVE,
        digest,
        DOWNLOAD_DIR,
        f"{version}, {kind}",
        hasher=SHA256_MACOS,
        **SUDO,
    )
    dest = f"{MAC_OLLAMA_ROOT}/{version}"
    tmp = f"{dest}.partial"
    q = shlex.quote
    ops.append(
        server.shell(
            name=f"Unpack Ollama {version} beside the running version",
            commands=[
                _sh(
                    [
                        shlex.join(["rm", "-rf", tmp]),
                        shlex.join(["mkdir", "-p", tmp]),
                        # ditto keeps the app bundle's symlinks, modes and signature intact.
                        shlex.join(["ditto", "-x", "-k", final, tmp]),
                        f"if [ ! -x {q(tmp + '/' + MAC_APP_BINARY)} ]; then "
                        f"echo {q(MAC_APP_ARCHIVE + ' holds no ' + MAC_APP_BINARY)} >&2; exit 1; fi",
                        f"printf '%s\\n' {q(f'{digest}  {MAC_APP_ARCHIVE}')} > "
                        f"{q(tmp + '/' + RELEASE_MARKER)}",
                        shlex.join(["chown", "-R", "root:wheel", tmp]),
                        shlex.join(["rm", "-rf", dest]),
                        shlex.join(["mv", tmp, dest]),
                        shlex.join(["rm", "-f", final]),
                    ]
                )
            ],
            **SUDO,
        )
    )
    return ops


def _brew(cfg: HostConfig, version: str) -> list[Any]:
    brew = BREW_BIN[cfg.settings.arch]
    installed = host.get_fact(BrewCaskVersion, brew=brew, cask=BREW_CASK)
    if installed is None:
        action = "install"
    elif compare_versions(installed, version) < 0:
        action = "upgrade"
    else:
        host.noop(f"cask {BREW_CASK} {installed} is installed (ollama.version {version})")
        return []
    return [
        server.shell(
            name=f"brew {action} --cask {BREW_CASK}"
            + (f" ({installed} is older than {version})" if installed else ""),
            commands=[shlex.join([brew, action, "--cask", BREW_CASK])],
            _sudo=False,
        )
    ]


def wait_command(cfg: HostConfig, version: str | None, rollback: tuple[str, str] | None) -> str:
    url = f"http://{host_port(probe_address(cfg), cfg.port)}/api/version"
    expect = f'"version":"{version}"' if version else '"version":'
    what = f"Ollama {version}" if version else "Ollama"
    lines = [
        f"for i in $(seq {READY_TIMEOUT_S}); do",
        f"  if curl -fsS --max-time 5 {shlex.quote(url)} 2>/dev/null | grep -qF {shlex.quote(expect)}; "
        "then exit 0; fi",
        "  sleep 1",
        "done",
        f"echo {shlex.quote(f'{what} did not answer on {url} after {READY_TIMEOUT_S}s')} >&2",
    ]
    if rollback is not None:
        link, previous = rollback
        lines += [
            switch_command(link, previous).removeprefix("set -eu\n"),
            shlex.join(["launchctl", "kickstart", "-k", f"system/{label(cfg)}"]),
            f"echo {shlex.quote(f'rolled back: {link} -> {previous} again, job restarted')} >&2",
        ]
    lines.append("exit 1")
    return "/bin/bash -c " + shlex.quote("\n".join(lines))


def deploy_ollama_macos(cfg: HostConfig) -> None:
    """Install or upgrade Ollama on a Mac and run it as the LaunchDaemon com.llmprov.ollama."""
    method = ollama_method(cfg)
    version = cfg.settings.ollama.version
    setup = _account_and_folders(cfg)
    binary_changes: list[Any] = []
    previous: str | None = None
    state = None
    if method == "app":
        state = host.get_fact(OllamaInstallState, root=MAC_OLLAMA_ROOT, binary=MAC_APP_BINARY)
        if state.has(version):
            host.noop(f"Ollama {version} is already installed in {MAC_OLLAMA_ROOT}/{version}")
        else:
            binary_changes += _install_app(cfg, version, state.current)
        if state.current != version:
            previous = state.current
            binary_changes.append(
                server.shell(
                    name=f"Switch {MAC_OLLAMA_ROOT}/current to {version}"
                    + (f" (from {previous})" if previous else ""),
                    commands=[
                        switch_command(f"{MAC_OLLAMA_ROOT}/current", f"{MAC_OLLAMA_ROOT}/{version}")
                    ],
                    **SUDO,
                )
            )
        else:
            host.noop(f"{MAC_OLLAMA_ROOT}/current already points at {version}")
        files.link(name="ollama on the PATH", path=CLI_LINK, target=MAC_OLLAMA_BIN["app"], **SUDO)
    else:
        binary_changes += _brew(cfg, version)

    plist = plan_host(cfg)[0]
    uploaded = files.put(
        name=f"Upload {plist.path}",
        src=StringIO(plist.content),
        dest=plist.path,
        user="root",
        group="wheel",
        mode="644",
        **SUDO,
    )
    job = f"system/{label(cfg)}"
    plist_changed = uploaded.will_change or any(op.will_change for op in setup)
    restart = any(op.will_change for op in binary_changes)
    if not host.get_fact(LaunchdLoaded, label=label(cfg)):
        server.shell(
            name=f"Load {label(cfg)} at boot",
            commands=[
                shlex.join(["launchctl", "enable", job]),
                shlex.join(["launchctl", "bootstrap", "system", plist.path]),
            ],
            **SUDO,
        )
        changed = True
    else:
        server.shell(
            name=f"Reload {label(cfg)} with its new settings",
            commands=[
                shlex.join(["launchctl", "bootout", job]),
                shlex.join(["launchctl", "bootstrap", "system", plist.path]),
            ],
            _if=lambda: plist_changed,
            **SUDO,
        )
        server.shell(
            name=f"Restart {label(cfg)} on the new binary",
            commands=[shlex.join(["launchctl", "kickstart", "-k", job])],
            _if=lambda: restart and not plist_changed,
            **SUDO,
        )
        changed = plist_changed or restart
    rollback = (f"{MAC_OLLAMA_ROOT}/current", f"{MAC_OLLAMA_ROOT}/{previous}") if previous else None
    server.shell(
        name=f"Wait for Ollama {version} on /api/version" if method == "app" else "Wait for Ollama",
        commands=[wait_command(cfg, version if method == "app" else None, rollback)],
        _if=lambda: changed,
        _sudo=rollback is not None,
    )
    pull_model(cfg, MAC_OLLAMA_BIN[method])
    if state is not None:
        stale = prune_candidates(state, keep=[version, *([previous] if previous else [])])
        if stale:
            server.shell(
                name=f"Remove older Ollama installs: {', '.join(stale)}",
                commands=[shlex.join(["rm", "-rf", *(f"{MAC_OLLAMA_ROOT}/{k}" for k in stale)])],
                **SUDO,
            )
    # The app archive's version folder is the key; Homebrew picks the cask's version itself, so
    # its record names the cask (a version read before `brew upgrade` would be stale after it).
    now_serving = (
        deployed(cfg, version, version) if method == "app" else deployed(cfg, BREW_CASK, "brew")
    )
    record_serving(
        cfg,
        now_serving,
        host.get_fact(StateRecord, path=MAC_STATE_PATH),
        lambda new, note: write_state(new, note, MAC_STATE_PATH, group="wheel", **SUDO),
    )


__all__ = ["OllamaDeployError", "deploy_ollama_macos"]
