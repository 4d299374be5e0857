"""Deploy of Ollama on Linux: a verified release per folder, switched in by a link, as a systemd unit.

The order is what makes upgrades safe: the new release is downloaded (or uploaded from the
controller), checked against the release's published sha256 and unpacked beside the running one;
only then does `current` move and the service restart. A failed download or checksum stops the
deploy before anything the running server uses has changed. If the new version does not answer on
/api/version after the restart, the link goes back to the version before and the service restarts
on it, and the deploy fails saying so. The previous version is kept for a one-link rollback.

Also home to what the macOS and Windows deploys share: where a release comes from and its checksums.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import httpx
from pyinfra.context import host
from pyinfra.facts.server import Arch, Groups, Which
from pyinfra.operations import apt, dnf, files, server

from llmprov.core.config import HostConfig
from llmprov.core.layout import OLLAMA_HOME, EngineLayout, model_path
from llmprov.core.model_ref import OllamaRef
from llmprov.core.ollama_release import (
    CHECKSUMS_FILE,
    Flavour,
    InstallState,
    ReleaseError,
    ReleaseSource,
    change_kind,
    digest_for,
    gpu_flavour,
    install_key,
    linux_archives,
    model_present,
    parse_checksums,
    release_source,
    unpack_argv,
)
from llmprov.core.render.plan import plan_host
from llmprov.deploy.common import service_user, upload
from llmprov.deploy.models import import_into_ollama
from llmprov.deploy.upgrade import (
    Readiness,
    deployed,
    record_and_prune,
    switch_and_prove,
    wait_command,
)
from llmprov.deploy.upgrade import (
    probe_address as probe_address,
)
from llmprov.facts.ollama import NvTegraRelease, OllamaInstallState, OllamaModels

# The marker written into a version's folder once it is fully unpacked: the digests it came from.
RELEASE_MARKER = ".llmprov-release"
# Where downloads land before they are verified (never inside a version folder).
DOWNLOAD_DIR = f"{EngineLayout('ollama').cache_dir}/downloads"
# The CLI on the PATH, as Ollama's own install puts it.
CLI_LINK = "/usr/local/bin/ollama"
READY_TIMEOUT_S = 120


class OllamaDeployError(Exception):
    """An Ollama deploy cannot be planned for a host; the message says which setting to change."""


# ---------------------------------------------------------------- release source (shared)


def fetch_text(url: str) -> str:
    """GET a small text file on the controller (the release's checksums). A seam for tests."""
    with httpx.Client(follow_redirects=True, timeout=30.0) as client:
        response = client.get(url)
        response.raise_for_status()
        return response.text


def source_for(cfg: HostConfig) -> ReleaseSource:
    mirror = cfg.settings.mirror
    local = mirror.ollama_dir
    if local:
        path = Path(local.removeprefix("file://")).expanduser()
        if not path.is_absolute() and cfg.base_dir is not None:
            path = Path(cfg.base_dir) / path
        local = str(path)
    return release_source(cfg.settings.ollama.version, mirror.ollama_base_url, local)


def release_checksums(cfg: HostConfig, source: ReleaseSource) -> dict[str, str]:
    """The release's published checksums, read on the controller from the same source as the files."""
    where = source.checksums_location
    try:
        text = fetch_text(where) if source.is_remote else Path(where).read_text(encoding="utf-8")
    except (httpx.HTTPError, OSError) as exc:
        raise OllamaDeployError(
            f"{cfg.name}: ollama.version: cannot read {CHECKSUMS_FILE} of "
            f"{cfg.settings.ollama.version} at {where}: {exc}"
        ) from exc
    try:
        return parse_checksums(text)
    except ReleaseError as exc:
        raise OllamaDeployError(f"{cfg.name}: {where}: {exc}") from exc


def local_file(cfg: HostConfig, source: ReleaseSource, name: str) -> str:
    path = Path(source.location(name))
    if not path.is_file():
        raise OllamaDeployError(
            f"{cfg.name}: mirror.ollama_dir: {path} is missing "
            f"(the folder holds v<version>/<file> as the release does)"
        )
    return str(path)


# ---------------------------------------------------------------- commands (built as argv)


def _sh(lines: list[str]) -> str:
    return "set -eu\n" + "\n".join(lines)


SHA256_LINUX: tuple[str, ...] = ("sha256sum",)


def verify_lines(
    partial: str, final: str, digest: str, label: str, hasher: tuple[str, ...] = SHA256_LINUX
) -> list[str]:
    """Check a downloaded file against its published digest; move it into place only if it matches."""
    q = shlex.quote
    msg = q(f"{label}: sha256 does not match the release's {digest}; got ")
    return [
        f"got=$({shlex.join([*hasher, partial])} | cut -d' ' -f1)",
        f'if [ "$got" != {q(digest)} ]; then rm -f {q(partial)}; echo {msg}"$got" >&2; exit 1; fi',
        shlex.join(["mv", "-f", partial, final]),
    ]


def download_command(
    url: str,
    partial: str,
    final: str,
    digest: str,
    fetcher: str,
    hasher: tuple[str, ...] = SHA256_LINUX,
) -> str:
    if fetcher == "wget":
        get = ["wget", "-q", "-O", partial, url]
    else:
        get = ["curl", "-fsSL", "--connect-timeout", "30", "-o", partial, url]
    return _sh(
        [
            shlex.join(["rm", "-f", partial]),
            # An interrupted download leaves nothing behind to be mistaken for a good one.
            f"trap {shlex.quote(shlex.join(['rm', '-f', partial]))} EXIT",
            shlex.join(get),
            *verify_lines(partial, final, digest, url.rsplit("/", 1)[-1], hasher),
        ]
    )


def fetch_archive(
    cfg: HostConfig,
    source: ReleaseSource,
    archive: str,
    digest: str,
    download_dir: str,
    note: str,
    fetcher: str = "curl",
    hasher: tuple[str, ...] = SHA256_LINUX,
    **op_args: Any,
) -> list[Any]:
    """Bring one release file to `download_dir/archive`, verified against `digest`: downloaded on
    the host from a remote source, else uploaded from the controller's folder. The Linux and macOS
    deploys both take their archives this way; only the sha256 tool differs."""
    partial = f"{download_dir}/{archive}.partial"
    final = f"{download_dir}/{archive}"
    if source.is_remote:
        url = source.location(archive)
        return [
            server.shell(
                name=f"Download and verify {archive} ({note})",
                commands=[download_command(url, partial, final, digest, fetcher, hasher)],
                **op_args,
            )
        ]
    return [
        files.put(
            name=f"Upload {archive} ({note})",
            src=local_file(cfg, source, archive),
            dest=partial,
            mode="600",
            **op_args,
        ),
        server.shell(
            name=f"Verify {archive}",
            commands=[_sh(verify_lines(partial, final, digest, archive, hasher))],
            **op_args,
        ),
    ]


def unpack_command(
    archives: list[str], digests: dict[str, str], version_dir: str, download_dir: str
) -> str:
    q = shlex.quote
    partial = f"{version_dir}.partial"
    marker = "\n".join(f"{digests[a]}  {a}" for a in archives)
    lines = [shlex.join(["rm", "-rf", partial]), shlex.join(["mkdir", "-p", partial])]
    lines += [shlex.join(unpack_argv(f"{download_dir}/{a}", partial)) for a in archives]
    lines += [
        f"if [ ! -x {q(partial + '/bin/ollama')} ]; then "
        f"echo {q(archives[0] + ' holds no bin/ollama')} >&2; exit 1; fi",
        f"printf '%s\\n' {q(marker)} > {q(partial + '/' + RELEASE_MARKER)}",
        shlex.join(["chown", "-R", "root:root", partial]),
        shlex.join(["chmod", "755", partial]),
        shlex.join(["rm", "-rf", version_dir]),
        shlex.join(["mv", partial, version_dir]),
        shlex.join(["rm", "-f", *(f"{download_dir}/{a}" for a in archives)]),
    ]
    return _sh(lines)


def wait_version_command(
    cfg: HostConfig, version: str, timeout_s: int, rollback: tuple[str, str, str] | None
) -> str:
    """Poll /api/version until it names `version`; on timeout, roll back when told how."""
    return wait_command(cfg, ollama_readiness(version, timeout_s), rollback)


def ollama_readiness(version: str, timeout_s: int) -> Readiness:
    return Readiness(
        "/api/version", f'"version":"{version}"', '"version":', timeout_s, f"Ollama {version}"
    )


# ---------------------------------------------------------------- operations


def _tools(source: ReleaseSource, archives: list[str]) -> tuple[str, list[Any]]:
    """Make sure the host can fetch and unpack; returns the fetcher to use and the operations."""
    need: list[str] = []
    fetcher = "curl"
    if source.is_remote and not host.get_fact(Which, command="curl"):
        if host.get_fact(Which, command="wget"):
            fetcher = "wget"
        else:
            need += ["curl", "ca-certificates"]
    if any(a.endswith(".tar.zst") for a in archives) and not host.get_fact(Which, command="zstd"):
        need.append("zstd")
    if not need:
        return fetcher, []
    if host.get_fact(Which, command="apt-get"):
        return fetcher, [
            apt.packages(
                name=f"Install {', '.join(need)}", packages=need, update=True, cache_time=3600
            )
        ]
    if host.get_fact(Which, command="dnf"):
        return fetcher, [dnf.packages(name=f"Install {', '.join(need)}", packages=need)]
    raise OllamaDeployError(
        f"{host.name}: the host lacks {', '.join(need)} and has neither apt-get nor dnf to install them"
    )


def install_release(
    cfg: HostConfig, key: str, flavour: Flavour | None, state: InstallState
) -> list[Any]:
    """Download, verify and unpack release `key` into its own folder, unless it is there already."""
    layout = EngineLayout("ollama")
    version = cfg.settings.ollama.version
    if state.has(key):
        host.noop(f"Ollama {key} is already installed in {layout.version_dir(key)}")
        return []
    source = source_for(cfg)
    checksums = release_checksums(cfg, source)
    try:
        archives = linux_archives(host.get_fact(Arch), flavour, checksums)
    except ReleaseError as exc:
        raise OllamaDeployError(f"{cfg.name}: ollama.version {version}: {exc}") from exc
    digests = {a: digest_for(checksums, a, source) for a in archives}
    fetcher, ops = _tools(source, archives)
    kind = change_kind(state.current, version)
    ops.append(
        files.directory(
            name="Download folder", path=DOWNLOAD_DIR, user="root", group="root", mode="700"
        )
    )
    for archive in archives:
        note = f"{version}, {kind}"
        ops += fetch_archive(cfg, source, archive, digests[archive], DOWNLOAD_DIR, note, fetcher)
    ops.append(
        server.shell(
            name=f"Unpack Ollama {key} beside the running version",
            commands=[unpack_command(archives, digests, layout.version_dir(key), DOWNLOAD_DIR)],
        )
    )
    return ops


def _user_and_folders(cfg: HostConfig) -> list[Any]:
    layout = EngineLayout("ollama")
    user = cfg.service_user
    present: list[str] = host.get_fact(Groups)
    groups: list[str] = [g for g in ("render", "video") if g in present]
    ops = service_user(cfg, home=OLLAMA_HOME, groups=groups)
    ops.append(
        files.directory(
            name="Install root", path=layout.root, user="root", group="root", mode="755"
        )
    )
    ops.append(
        files.directory(name="Ollama home", path=OLLAMA_HOME, user=user, group=user, mode="755")
    )
    models = model_path(cfg)
    if models.startswith(f"{OLLAMA_HOME}/"):
        ops.append(
            files.directory(
                name="Ollama state",
                path=f"{OLLAMA_HOME}/.ollama",
                user=user,
                group=user,
                mode="755",
            )
        )
    ops.append(
        files.directory(name="Models folder", path=models, user=user, group=user, mode="755")
    )
    return ops


def pull_model(cfg: HostConfig, binary: str) -> list[Any]:
    ref = cfg.model_ref
    if not isinstance(ref, OllamaRef):
        # A GGUF (or a Hugging Face model, converted to one) goes in through Ollama's API.
        return import_into_ollama(cfg, binary, probe_address(cfg), cfg.port)
    name = f"{ref.name}:{ref.tag}"
    address = f"{probe_address(cfg)}:{cfg.port}"
    present = host.get_fact(OllamaModels, binary=binary, address=address)
    if present is not None and model_present(present, name):
        host.noop(f"model {name} is already pulled")
        return []
    return [
        server.shell(
            name=f"Pull model {name}",
            commands=[f"OLLAMA_HOST={shlex.quote(address)} {shlex.join([binary, 'pull', name])}"],
        )
    ]


def deploy_ollama(cfg: HostConfig) -> None:
    """Install or upgrade Ollama on a Linux host and run it as ollama.service."""
    method = cfg.settings.ollama.install_method or "archive"
    if method != "archive":
        raise OllamaDeployError(
            f"{cfg.name}: ollama.install_method: {method!r} is not a Linux method; use 'archive'"
        )
    layout = EngineLayout("ollama")
    version = cfg.settings.ollama.version
    try:
        flavour = gpu_flavour(
            cfg.gpu.vendor,
            host.get_fact(NvTegraRelease) if cfg.gpu.vendor == "jetson" else None,
        )
    except ReleaseError as exc:
        raise OllamaDeployError(f"{cfg.name}: gpu.vendor: {exc}") from exc
    key = install_key(version, flavour)
    state = host.get_fact(OllamaInstallState, root=layout.root)

    setup = _user_and_folders(cfg)
    installed = install_release(cfg, key, flavour, state)
    rendered = upload(plan_host(cfg))
    files.link(name="ollama on the PATH", path=CLI_LINK, target=f"{layout.current}/bin/ollama")
    changes = [*setup[:2], *installed, *rendered]
    switch_and_prove(cfg, layout, key, state, changes, ollama_readiness(version, READY_TIMEOUT_S))
    pull_model(cfg, f"{layout.current}/bin/ollama")
    record_and_prune(cfg, layout, deployed(cfg, version, key), state)
