"""Deploy of Ollama on Windows over WinRM: the zip as a WinSW service (default), or the installer.

Every command is PowerShell, run by llmprov's `@winrm` connector (llmprov.connectors.winrm).

`zip-service`: `ollama-windows-<arch>.zip` (plus the `-rocm` add-on for AMD GPUs) is checked against
the release's sha256sum.txt, unpacked into its own folder beside the running version, and switched
in by moving the `current` junction; WinSW (pinned, checksum verified) runs `current\\ollama.exe
serve` as the service `Ollama`, started at boot. If the new version does not answer on
/api/version, the junction goes back and the service restarts on the old one.

`installer`: `OllamaSetup.exe /VERYSILENT /NORESTART /SUPPRESSMSGBOXES /DIR=...` installs Ollama as
its own tray app, which starts at a user's login; there is no service to wait for and no rollback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra.api.command import FileUploadCommand
from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.operations import server

from llmprov.core.config import HostConfig
from llmprov.core.ollama_release import (
    WINDOWS_INSTALLER,
    ReleaseError,
    ReleaseSource,
    change_kind,
    digest_for,
    gpu_flavour,
    install_key,
    model_present,
    prune_candidates,
    windows_archives,
)
from llmprov.core.render.plan import plan_host
from llmprov.core.render.windows import (
    CONFIGURE_SCRIPT,
    SERVICE_EXE,
    SERVICE_NAME,
    SERVICE_XML,
    WINDOWS_INSTALL,
    WINDOWS_INSTALLER_DIR,
    WINDOWS_ROOT,
    install_method,
)
from llmprov.core.upgrade import WINDOWS_STATE_PATH, Deployed, render_state
from llmprov.core.values import host_port
from llmprov.deploy.ollama import (
    READY_TIMEOUT_S,
    RELEASE_MARKER,
    OllamaDeployError,
    local_file,
    probe_address,
    release_checksums,
    source_for,
)
from llmprov.deploy.upgrade import deployed, record_serving
from llmprov.facts.ollama import (
    WinFileSha256,
    WinInstalledMarker,
    WinMissingFolders,
    WinOllamaInstallState,
    WinOllamaModels,
    WinService,
    ps_quote,
)
from llmprov.facts.versions import WinStateRecord

# WinSW 2.12.0, the service wrapper (https://github.com/winsw/winsw/releases/tag/v2.12.0). Its
# release publishes no checksum file; this digest of WinSW-x64.exe is the one that several
# independent public deploy scripts pin. It also runs on Arm64 Windows under emulation.
WINSW_VERSION = "2.12.0"
WINSW_FILE = "WinSW-x64.exe"
WINSW_SHA256 = "05b82d46ad331cc16bdc00de5c6332c1ef818df8ceefcd49c726553209b3a0da"
WINSW_URL = f"https://github.com/winsw/winsw/releases/download/v{WINSW_VERSION}/{WINSW_FILE}"
DOWNLOAD_DIR = f"{WINDOWS_ROOT}/downloads"
INSTALLER_MARKER = f"{WINDOWS_INSTALLER_DIR}/.llmprov-version"


def _ps(lines: list[str]) -> str:
    return (
        "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'\n"
        + "\n".join(lines)
    )


@operation()
def put_text(content: str, dest: str) -> Generator[Any, None, None]:
    """Upload text unless the file there already has the same sha256 (Windows has no `stat`)."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    if host.get_fact(WinFileSha256, path=dest) == digest:
        host.noop(f"{dest} is up to date")
        return
    yield FileUploadCommand(StringIO(content), dest)


@operation()
def upload_file(src: str, dest: str) -> Generator[Any, None, None]:
    """Upload a controller file (the caller knows it is needed: it is verified right after)."""
    yield FileUploadCommand(src, dest)


@operation()
def folders(paths: list[str]) -> Generator[Any, None, None]:
    """Create the folders that do not exist yet."""
    missing = host.get_fact(WinMissingFolders, paths=paths)
    if not missing:
        host.noop("folders exist")
        return
    quoted = ", ".join(ps_quote(p) for p in missing)
    yield _ps(
        [
            f"foreach ($p in @({quoted})) {{ New-Item -ItemType Directory -Path $p -Force | Out-Null }}"
        ]
    )


def winsw_source(cfg: HostConfig) -> tuple[str, bool]:
    """WinSW's location: the mirror's `winsw/v<version>/` when one is set, else GitHub."""
    mirror = cfg.settings.mirror
    if mirror.ollama_dir:
        folder = Path(mirror.ollama_dir.removeprefix("file://")).expanduser()
        if not folder.is_absolute() and cfg.base_dir is not None:
            folder = Path(cfg.base_dir) / folder
        return str(folder / "winsw" / f"v{WINSW_VERSION}" / WINSW_FILE), False
    if mirror.ollama_base_url:
        base = mirror.ollama_base_url.rstrip("/")
        return f"{base}/winsw/v{WINSW_VERSION}/{WINSW_FILE}", True
    return WINSW_URL, True


def verify_lines(partial: str, final: str, digest: str, label: str) -> list[str]:
    return [
        f"$got = (Get-FileHash -Algorithm SHA256 -LiteralPath {ps_quote(partial)}).Hash.ToLower()",
        f"if ($got -ne {ps_quote(digest)}) {{ Remove-Item -LiteralPath {ps_quote(partial)} -Force; "
        f"throw ({ps_quote(f'{label}: sha256 does not match the published {digest}; got ')} + $got) }}",
        f"Move-Item -LiteralPath {ps_quote(partial)} -Destination {ps_quote(final)} -Force",
    ]


def fetch_and_verify(what: str, location: str, remote: bool, final: str, digest: str) -> list[Any]:
    """Download (or upload from the controller) to a partial file, verify, move into place.

    `what` names the file in operation names, as `FILE (VERSION, KIND)`.
    """
    partial = f"{final}.partial"
    label = location.replace("\\", "/").rsplit("/", 1)[-1]
    if remote:
        return [
            server.shell(
                name=f"Download and verify {what}",
                commands=[
                    _ps(
                        [
                            f"Remove-Item -LiteralPath {ps_quote(partial)} -Force "
                            "-ErrorAction SilentlyContinue",
                            f"try {{ Invoke-WebRequest -UseBasicParsing -Uri {ps_quote(location)} "
                            f"-OutFile {ps_quote(partial)} }} catch {{ Remove-Item -LiteralPath "
                            f"{ps_quote(partial)} -Force -ErrorAction SilentlyContinue; throw }}",
                            *verify_lines(partial, final, digest, label),
                        ]
                    )
                ],
            )
        ]
    return [
        upload_file(name=f"Upload {what}", src=location, dest=partial),
        server.shell(
            name=f"Verify {label}",
            commands=[_ps(verify_lines(partial, final, digest, label))],
        ),
    ]


def switch_command(current: str, target: str) -> str:
    """Point the `current` junction at `target` (deleting a junction leaves its target alone)."""
    return _ps(
        [
            f"$link = {ps_quote(current)}",
            "if (Test-Path -LiteralPath $link) { (Get-Item -LiteralPath $link).Delete() }",
            f"New-Item -ItemType Junction -Path $link -Target {ps_quote(target)} | Out-Null",
        ]
    )


def wait_command(cfg: HostConfig, version: str, rollback: tuple[str, str] | None) -> str:
    url = f"http://{host_port(probe_address(cfg), cfg.port)}/api/version"
    get = f"Invoke-RestMethod -UseBasicParsing -TimeoutSec 5 -Uri {ps_quote(url)}"
    lines = [
        f"$deadline = (Get-Date).AddSeconds({READY_TIMEOUT_S}); $ok = $false",
        "while (-not $ok -and (Get-Date) -lt $deadline) {",
        f"  try {{ $ok = (({get}).version -eq {ps_quote(version)}) }} catch {{ }}",
        "  if (-not $ok) { Start-Sleep -Seconds 1 }",
        "}",
    ]
    message = f"Ollama {version} did not answer on {url} after {READY_TIMEOUT_S}s"
    if rollback is not None:
        link, previous = rollback
        undo = switch_command(link, previous).split("\n", 1)[1].replace("\n", "; ")
        lines.append(
            f"if (-not $ok) {{ {undo}; Restart-Service -Name {ps_quote(SERVICE_NAME)}; "
            f"throw {ps_quote(f'{message}; rolled back: {link} -> {previous} again, service restarted')} }}"
        )
    else:
        lines.append(f"if (-not $ok) {{ throw {ps_quote(message)} }}")
    return _ps(lines)


def run_script_command(path: str) -> str:
    """Run a rendered .ps1 in its own PowerShell (execution policy aside) and fail if it fails."""
    return _ps(
        [
            "& powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File "
            + ps_quote(path),
            f"if ($LASTEXITCODE -ne 0) {{ throw ({ps_quote(path + ' exited with ')} + $LASTEXITCODE) }}",
        ]
    )


def _install_zip(
    cfg: HostConfig, key: str, archives_for: Any, current: str | None, source: ReleaseSource
) -> list[Any]:
    version = cfg.settings.ollama.version
    checksums = release_checksums(cfg, source)
    try:
        archives: list[str] = archives_for(checksums)
    except ReleaseError as exc:
        raise OllamaDeployError(f"{cfg.name}: ollama.version {version}: {exc}") from exc
    kind = change_kind(current, version)
    ops: list[Any] = []
    digests = {a: digest_for(checksums, a, source) for a in archives}
    for archive in archives:
        location = (
            source.location(archive) if source.is_remote else local_file(cfg, source, archive)
        )
        ops += fetch_and_verify(
            f"{archive} ({version}, {kind})",
            location,
            source.is_remote,
            f"{DOWNLOAD_DIR}/{archive}",
            digests[archive],
        )
    dest = f"{WINDOWS_INSTALL}/{key}"
    tmp = f"{dest}.partial"
    marker = "\n".join(f"{digests[a]}  {a}" for a in archives)
    lines = [
        f"if (Test-Path -LiteralPath {ps_quote(tmp)}) {{ Remove-Item -LiteralPath {ps_quote(tmp)} -Recurse -Force }}",
        *(
            f"Expand-Archive -LiteralPath {ps_quote(f'{DOWNLOAD_DIR}/{a}')} -DestinationPath {ps_quote(tmp)} -Force"
            for a in archives
        ),
        f"if (-not (Test-Path -LiteralPath {ps_quote(tmp + '/ollama.exe')})) "
        f"{{ throw {ps_quote(archives[0] + ' holds no ollama.exe')} }}",
        f"Set-Content -LiteralPath {ps_quote(tmp + '/' + RELEASE_MARKER)} -Value {ps_quote(marker)}",
        f"if (Test-Path -LiteralPath {ps_quote(dest)}) {{ Remove-Item -LiteralPath {ps_quote(dest)} -Recurse -Force }}",
        f"Rename-Item -LiteralPath {ps_quote(tmp)} -NewName {ps_quote(key)}",
        *(f"Remove-Item -LiteralPath {ps_quote(f'{DOWNLOAD_DIR}/{a}')} -Force" for a in archives),
    ]
    ops.append(
        server.shell(name=f"Unpack Ollama {key} beside the running version", commands=[_ps(lines)])
    )
    return ops


def _winsw(cfg: HostConfig) -> list[Any]:
    if host.get_fact(WinFileSha256, path=SERVICE_EXE) == WINSW_SHA256:
        host.noop(f"WinSW {WINSW_VERSION} is in place")
        return []
    location, remote = winsw_source(cfg)
    return fetch_and_verify(f"WinSW {WINSW_VERSION}", location, remote, SERVICE_EXE, WINSW_SHA256)


def pull_model(cfg: HostConfig, binary: str) -> None:
    from llmprov.core.model_ref import OllamaRef

    ref = cfg.model_ref
    if not isinstance(ref, OllamaRef):
        raise OllamaDeployError(
            f"{cfg.name}: model: the ollama deploy pulls ollama:// models; {ref.raw} is not one"
        )
    name = f"{ref.name}:{ref.tag}"
    address = host_port(probe_address(cfg), cfg.port)
    present = host.get_fact(WinOllamaModels, binary=binary, address=address)
    if present is not None and model_present(present, name):
        host.noop(f"model {name} is already pulled")
        return
    server.shell(
        name=f"Pull model {name}",
        commands=[
            _ps(
                [
                    f"$env:OLLAMA_HOST = {ps_quote(address)}",
                    f"& {ps_quote(binary)} pull {ps_quote(name)}",
                    f"if ($LASTEXITCODE -ne 0) {{ throw {ps_quote(f'ollama pull {name} failed')} }}",
                ]
            )
        ],
    )


def _deploy_zip_service(cfg: HostConfig) -> None:
    version = cfg.settings.ollama.version
    try:
        flavour = gpu_flavour(cfg.gpu.vendor)
    except ReleaseError as exc:
        raise OllamaDeployError(f"{cfg.name}: gpu.vendor: {exc}") from exc
    key = install_key(version, flavour)
    arch = cfg.settings.arch
    state = host.get_fact(WinOllamaInstallState, root=WINDOWS_INSTALL)
    models = cfg.settings.ollama.models_dir or f"{WINDOWS_ROOT}/models"
    folders(
        name="Folders",
        paths=[WINDOWS_ROOT, DOWNLOAD_DIR, f"{WINDOWS_ROOT}/logs", WINDOWS_INSTALL, models],
    )
    source = source_for(cfg)
    binary_ops: list[Any] = []
    if state.has(key):
        host.noop(f"Ollama {key} is already installed in {WINDOWS_INSTALL}/{key}")
    else:
        binary_ops += _install_zip(
            cfg, key, lambda sums: windows_archives(arch, flavour, sums), state.current, source
        )
    wrapper = _winsw(cfg)
    rendered = {f.path: f.content for f in plan_host(cfg)}
    xml = put_text(name=f"Upload {SERVICE_XML}", content=rendered[SERVICE_XML], dest=SERVICE_XML)
    script = put_text(
        name=f"Upload {CONFIGURE_SCRIPT}", content=rendered[CONFIGURE_SCRIPT], dest=CONFIGURE_SCRIPT
    )
    service = host.get_fact(WinService, service=SERVICE_NAME)
    previous = state.current if state.current and state.current != key else None
    if state.current != key:
        binary_ops.append(
            server.shell(
                name=f"Switch {WINDOWS_INSTALL}/current to {key}"
                + (f" (from {previous})" if previous else ""),
                commands=[switch_command(f"{WINDOWS_INSTALL}/current", f"{WINDOWS_INSTALL}/{key}")],
            )
        )
    else:
        host.noop(f"{WINDOWS_INSTALL}/current already points at {key}")
    exe = ps_quote(SERVICE_EXE)
    if service is None:
        server.shell(
            name=f"Install the {SERVICE_NAME} service (WinSW, starts at boot)",
            commands=[
                _ps(
                    [
                        f"& {exe} install",
                        "if ($LASTEXITCODE -ne 0) { throw 'WinSW install failed' }",
                    ]
                )
            ],
        )
    else:
        server.shell(
            name=f"Refresh the {SERVICE_NAME} service definition",
            commands=[
                _ps(
                    [
                        f"& {exe} refresh",
                        "if ($LASTEXITCODE -ne 0) { throw 'WinSW refresh failed' }",
                    ]
                )
            ],
            _if=lambda: xml.will_change or any(op.will_change for op in wrapper),
        )
    server.shell(
        name="Machine-level settings and firewall",
        commands=[run_script_command(CONFIGURE_SCRIPT)],
        _if=lambda: script.will_change,
    )
    changed_ops = [*binary_ops, *wrapper, xml]
    running = service is not None and service.get("Status") == "Running"
    server.shell(
        name=f"Run the {SERVICE_NAME} service",
        commands=[
            _ps(
                [
                    f"$s = Get-Service -Name {ps_quote(SERVICE_NAME)}",
                    f"if ($s.Status -eq 'Running') {{ Restart-Service -Name {ps_quote(SERVICE_NAME)} }} "
                    f"else {{ Start-Service -Name {ps_quote(SERVICE_NAME)} }}",
                ]
            )
        ],
        _if=lambda: not running or any(op.will_change for op in changed_ops),
    )
    rollback = (f"{WINDOWS_INSTALL}/current", f"{WINDOWS_INSTALL}/{previous}") if previous else None
    server.shell(
        name=f"Wait for Ollama {version} on /api/version",
        commands=[wait_command(cfg, version, rollback)],
        _if=lambda: not running or any(op.will_change for op in [*changed_ops, script]),
    )
    pull_model(cfg, f"{WINDOWS_INSTALL}/current/ollama.exe")
    stale = prune_candidates(state, keep=[key, *([previous] if previous else [])])
    if stale:
        paths = ", ".join(ps_quote(f"{WINDOWS_INSTALL}/{k}") for k in stale)
        server.shell(
            name=f"Remove older Ollama installs: {', '.join(stale)}",
            commands=[_ps([f"Remove-Item -LiteralPath @({paths}) -Recurse -Force"])],
        )
    record(cfg, deployed(cfg, version, key))


def record(cfg: HostConfig, now_serving: Deployed) -> None:
    """The state record in ProgramData, uploaded only when it changes."""
    record_serving(
        cfg,
        now_serving,
        host.get_fact(WinStateRecord, path=WINDOWS_STATE_PATH),
        lambda new, note: put_text(
            name=f"Record {note} in {WINDOWS_STATE_PATH}",
            content=render_state(new),
            dest=WINDOWS_STATE_PATH,
        ),
    )


def _deploy_installer(cfg: HostConfig) -> None:
    version = cfg.settings.ollama.version
    folders(name="Folders", paths=[WINDOWS_ROOT, DOWNLOAD_DIR])
    installed = host.get_fact(WinInstalledMarker, path=INSTALLER_MARKER)
    if installed == version:
        host.noop(f"Ollama {version} was installed by llmprov in {WINDOWS_INSTALLER_DIR}")
    else:
        source = source_for(cfg)
        checksums = release_checksums(cfg, source)
        digest = digest_for(checksums, WINDOWS_INSTALLER, source)
        location = (
            source.location(WINDOWS_INSTALLER)
            if source.is_remote
            else local_file(cfg, source, WINDOWS_INSTALLER)
        )
        setup = f"{DOWNLOAD_DIR}/{WINDOWS_INSTALLER}"
        fetch_and_verify(
            f"{WINDOWS_INSTALLER} ({version}, {change_kind(installed, version)})",
            location,
            source.is_remote,
            setup,
            digest,
        )
        target = WINDOWS_INSTALLER_DIR.replace("/", "\\")
        server.shell(
            name=f"Run {WINDOWS_INSTALLER} silently into {WINDOWS_INSTALLER_DIR}",
            commands=[
                _ps(
                    [
                        f"$p = Start-Process -FilePath {ps_quote(setup)} -Wait -PassThru -ArgumentList "
                        f"@('/VERYSILENT', '/NORESTART', '/SUPPRESSMSGBOXES', {ps_quote(f'/DIR={target}')})",
                        f"if ($p.ExitCode -ne 0) {{ throw ({ps_quote(WINDOWS_INSTALLER + ' exited with ')} + $p.ExitCode) }}",
                        f"Set-Content -LiteralPath {ps_quote(INSTALLER_MARKER)} -Value {ps_quote(version)}",
                        f"Remove-Item -LiteralPath {ps_quote(setup)} -Force",
                    ]
                )
            ],
        )
    rendered = {f.path: f.content for f in plan_host(cfg)}
    script = put_text(
        name=f"Upload {CONFIGURE_SCRIPT}", content=rendered[CONFIGURE_SCRIPT], dest=CONFIGURE_SCRIPT
    )
    server.shell(
        name="Machine-level settings and firewall",
        commands=[run_script_command(CONFIGURE_SCRIPT)],
        _if=lambda: script.will_change,
    )
    host.noop(
        "the installer's Ollama is a tray app that starts at a user's login: "
        "no service to wait for, and the model is pulled on first use"
    )
    # One install in one folder: the key names the method, so a later zip-service key differs.
    record(cfg, deployed(cfg, version, f"installer-{version}"))


def deploy_ollama_windows(cfg: HostConfig) -> None:
    """Install or upgrade Ollama on a Windows host reached through the `@winrm` connector."""
    if install_method(cfg) == "installer":
        _deploy_installer(cfg)
    else:
        _deploy_zip_service(cfg)
