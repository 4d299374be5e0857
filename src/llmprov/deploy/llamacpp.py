"""Deploy of llama.cpp's llama-server: a cached build from a pinned source, upgraded as deploy/upgrade.py says."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra.context import host
from pyinfra.facts.server import Arch
from pyinfra.operations import apt, files, server

from llmprov.cache import binary_cache_dir_name, cache_root, fetch_pypi_sdist, sha256_file
from llmprov.core.config import HostConfig
from llmprov.core.layout import EngineLayout, model_path
from llmprov.core.llamacpp_build import (
    BUILD_PACKAGES,
    UPSTREAM_ARCHIVE,
    BuildTarget,
    build_key,
    build_script,
    cmake_flags,
    source_for,
    unpack_cached_command,
)
from llmprov.core.parsers import distro_id, parse_os_release
from llmprov.core.render import RenderedFile, llamacpp_argv
from llmprov.core.render.plan import plan_host
from llmprov.core.snapshot import Snapshot, SnapshotRequest
from llmprov.core.upgrade import InstallState
from llmprov.deploy.common import (
    NO_SNAPSHOT,
    engine_dir_paths,
    engine_dirs,
    service_user,
    upload,
    upload_paths,
)
from llmprov.deploy.models import model_section, place_model
from llmprov.deploy.upgrade import (
    VERSION_FILES,
    Readiness,
    check_binary,
    deployed,
    installed_section,
    installed_versions,
    record_and_prune,
    spare_port_command,
    state_section,
    switch_and_prove,
)
from llmprov.facts.host import CpuFlagsDigest, OsRelease
from llmprov.facts.snapshot import HostSnapshot

SERVER = VERSION_FILES["llamacpp"][0]
# llama-server answers /health with 503 while the model loads, then 200 and this body.
HEALTHY = '{"status":"ok"}'
READY_TIMEOUT_S = 120


def binary_cache_dir() -> Path:
    return cache_root() / binary_cache_dir_name()


def _install_build(cfg: HostConfig, key: str, installed: InstallState) -> list[Any]:
    """Make /opt/llmprov/llamacpp/<key> exist: from the controller's cache, else by building here."""
    layout = EngineLayout("llamacpp")
    dest = layout.version_dir(key)
    if installed.has(key):
        host.noop(f"llama.cpp build {key} is already installed")
        return []
    cached = binary_cache_dir() / f"{key}.tar.gz"
    recorded = cached.with_name(f"{key}.tar.gz.sha256")
    ops: list[Any] = [
        apt.packages(name="Runtime libraries", packages=["libgomp1"], update=True, cache_time=3600),
    ]
    digest = _recorded_digest(cached, recorded)
    if digest is not None:
        cached.touch()  # most recently used
        remote = f"{layout.root}/cache/{key}.tar.gz"
        ops += [
            files.directory(name="Build cache folder", path=f"{layout.root}/cache"),
            files.put(name=f"Upload cached build {key}", src=str(cached), dest=remote),
            server.shell(
                name=f"Unpack cached build {key}",
                commands=[unpack_cached_command(remote, digest, dest)],
            ),
        ]
        return ops
    s = cfg.settings.llamacpp
    source = source_for(s)
    flags = cmake_flags(s, cuda=cfg.has_nvidia)
    src_remote = f"{layout.root}/src/{source.archive_name}"
    ops.append(
        apt.packages(
            name="Build tools", packages=list(BUILD_PACKAGES), update=True, cache_time=3600
        )
    )
    ops.append(files.directory(name="Source folder", path=f"{layout.root}/src"))
    mirror = cfg.settings.mirror.llamacpp_source_url
    if source.kind == "upstream" and not mirror:
        ops.append(
            files.download(
                name=f"Download llama.cpp {source.version}",
                src=UPSTREAM_ARCHIVE.format(release=source.version),
                dest=src_remote,
                sha256sum=source.sha256,
            )
        )
    elif mirror and not mirror.startswith("file://"):
        ops.append(
            files.download(
                name=f"Download {source.archive_name} from the mirror",
                src=f"{mirror.rstrip('/')}/{source.archive_name}",
                dest=src_remote,
                sha256sum=source.sha256,
            )
        )
    else:
        archive = (
            Path(mirror.removeprefix("file://")) / source.archive_name
            if mirror
            else fetch_pypi_sdist(
                "llama-cpp-python", source.version, source.archive_name, source.sha256, cache_root()
            )
        )
        ops.append(
            files.put(name=f"Upload {source.archive_name}", src=str(archive), dest=src_remote)
        )
    script = f"{layout.root}/src/build-{key}.sh"
    ops.append(
        files.put(
            name=f"Build script {key}",
            src=StringIO(build_script(source, flags, key)),
            dest=script,
            mode="755",
        )
    )
    ops.append(server.shell(name=f"Build llama.cpp {key} (minutes)", commands=[script]))
    binary_cache_dir().mkdir(parents=True, exist_ok=True)
    ops.append(
        files.get(
            name=f"Keep build {key} in the controller cache",
            src=f"{layout.root}/cache/{key}.tar.gz",
            dest=str(cached),
            add_deploy_dir=False,
        )
    )
    ops.append(
        files.get(
            name=f"Keep the digest of build {key}",
            src=f"{layout.root}/cache/{key}.tar.gz.sha256",
            dest=str(recorded),
            add_deploy_dir=False,
        )
    )
    return ops


def _recorded_digest(cached: Path, recorded: Path) -> str | None:
    """The digest a cached build was recorded with, if the cached file still matches it.

    A cached build without a record, or one that no longer matches, is not used: it is built again.
    """
    if not (cached.is_file() and recorded.is_file()):
        return None
    digest = recorded.read_text(encoding="utf-8").split(" ", 1)[0].strip()
    if not re.fullmatch(r"[0-9a-f]{64}", digest) or sha256_file(cached) != digest:
        host.noop(f"the cached build {cached.name} does not match its recorded digest; rebuilding")
        return None
    return digest


# What the build key needs from the host, as snapshot sections: (name, the fact's own command).
PLATFORM_SECTIONS = (
    ("arch", Arch().command()),
    ("os-release", OsRelease().command()),
    ("cpu-flags", CpuFlagsDigest().command()),
)


def build_key_for_host(cfg: HostConfig, snap: Snapshot = NO_SNAPSHOT) -> str:
    s = cfg.settings.llamacpp
    arch = snap.section("arch")
    os_release = snap.section("os-release")
    cpu = snap.section("cpu-flags")
    native = s.native
    target = BuildTarget(
        arch="\n".join(arch).strip() if arch is not None else host.get_fact(Arch),
        distro=distro_id(
            parse_os_release(os_release) if os_release is not None else host.get_fact(OsRelease)
        ),
        cpu_flags_digest=(
            None
            if not native
            else CpuFlagsDigest().process(cpu)
            if cpu is not None
            else host.get_fact(CpuFlagsDigest)
        ),
    )
    return build_key(source_for(s), cmake_flags(s, cuda=cfg.has_nvidia), target)


def rerun_request(cfg: HostConfig, rendered: list[RenderedFile]) -> SnapshotRequest:
    """Everything a llama.cpp re-run decides on, read in one command (see core/snapshot.py)."""
    layout = EngineLayout("llamacpp")
    paths = [*engine_dir_paths(cfg), *upload_paths(rendered)]
    return SnapshotRequest(
        paths=tuple(dict.fromkeys(paths)),
        hashed=tuple(f.path for f in rendered),
        users=(cfg.service_user,),
        groups=(cfg.service_user,),
        units=(layout.unit_name,),
        sections=(
            *PLATFORM_SECTIONS,
            installed_section("llamacpp"),
            state_section(),
            model_section(model_path(cfg)),
        ),
    )


# Replaced for the check on a spare port: its own address, one slot, a small context.
_CHECK_DROPS = ("--host", "--port", "--parallel", "--ctx-size")


def spare_port_check(cfg: HostConfig, key: str, installed: InstallState) -> list[Any]:
    """Before the switch, the new build serves the model on a spare port and must answer.

    Two instances fit where the build runs on the CPU: llama-server maps the model file, so both
    share its pages, and the check's context is small. A GPU build would need the model in GPU
    memory twice; there the switch-and-prove step alone decides.
    """
    if installed.current in (None, key) or cfg.has_nvidia:
        # Nothing serves yet (the switch-and-prove step checks a first install), or no room.
        return []
    layout = EngineLayout("llamacpp")
    full = llamacpp_argv(cfg, f"{layout.version_dir(key)}/{SERVER}", model_path(cfg))
    argv: list[str] = []
    skip = False
    for arg in full:
        if skip:
            skip = False
        elif arg in _CHECK_DROPS:
            skip = True
        else:
            argv.append(arg)
    argv += ["--parallel", "1", "--ctx-size", "512"]
    label = f"llama.cpp build {key}"
    command = spare_port_command(label, argv, cfg.service_user, readiness(key), cfg.port + 1)
    return [server.shell(name=f"Check {label} answers on a spare port", commands=[command])]


def readiness(key: str) -> Readiness:
    return Readiness("/health", HEALTHY, HEALTHY, READY_TIMEOUT_S, f"llama.cpp build {key}")


def deploy_llamacpp(cfg: HostConfig) -> None:
    layout = EngineLayout("llamacpp")
    files_to_place = plan_host(cfg)
    # One round trip for every fact below; an operation the snapshot cannot vouch for is added
    # as before and reads its own facts.
    snap = host.get_fact(HostSnapshot, request=rerun_request(cfg, files_to_place))
    key = build_key_for_host(cfg, snap)
    service_user(cfg, home=layout.state_dir, snap=snap)
    dirs = engine_dirs(cfg, snap)
    installed = installed_versions("llamacpp", snap)
    staged = _install_build(cfg, key, installed)
    label = f"llama.cpp build {key}"
    check_binary(installed, key, label, [f"{layout.version_dir(key)}/{SERVER}", "--version"])
    # The environment file first: a Hugging Face pull reads HF_TOKEN from it.
    rendered = upload(files_to_place, snap)
    model = place_model(cfg, snap)
    spare_port_check(cfg, key, installed)
    changes = [*staged, *model, *rendered, *dirs]
    switch_and_prove(cfg, layout, key, installed, changes, readiness(key), snap)
    version = source_for(cfg.settings.llamacpp).version
    record_and_prune(cfg, layout, deployed(cfg, version, key), installed, snap)
