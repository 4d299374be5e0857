"""Deploy of vLLM under systemd: a CUDA-matched (or CPU) environment built with uv, switched by a link."""

from __future__ import annotations

from io import StringIO
from typing import Any

from packaging.version import Version
from pyinfra.api.command import StringCommand
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import File, FileContents
from pyinfra.facts.server import Arch
from pyinfra.operations import apt, files, python, server

from llmprov.core.config import HostConfig, MirrorSettings
from llmprov.core.gpu import (
    ComputeCapability,
    detect_driver_version,
    lowest_compute_capability,
    parse_compute_capability,
)
from llmprov.core.layout import EngineLayout
from llmprov.core.matrix_data import MatrixDataError
from llmprov.core.render import Resolved
from llmprov.core.render.plan import plan_host
from llmprov.core.resolve import NoCompatibleBuild, resolve
from llmprov.core.vllm_env import (
    HOST_WHEELS_DIR,
    STANDALONE_UV,
    SYSTEM_PYTHON,
    UV,
    UV_MARKER,
    UV_VERSION,
    EnvCheckFailed,
    VllmEnv,
    background_apt_argv,
    bootstrap_uv_argv,
    check_probe,
    create_env_argv,
    install_locked_argv,
    install_torch_argv,
    install_vllm_argv,
    lock_file,
    lock_sources,
    locked_exclude,
    locked_requirements,
    marker_matches,
    marker_text,
    parse_probe,
    probe_argv,
    remove_cpu_extras_argv,
    shell,
    system_packages,
    unpack_uv_argv,
    uv_sources,
    wait_apt_argv,
)
from llmprov.core.wheel_lock import (
    Target,
    WheelLockError,
    listing_argv,
    missing_on_host,
    parse_listing,
    parse_python_version,
    tar_members,
    tar_stream,
)
from llmprov.deploy.common import engine_dirs, service_user, upload
from llmprov.deploy.models import place_model
from llmprov.deploy.runner import DeployFailed
from llmprov.deploy.upgrade import (
    Readiness,
    deployed,
    installed_versions,
    record_and_prune,
    switch_and_prove,
)
from llmprov.deploy.wheel_transfer import send_tar
from llmprov.facts.gpu import GlibcVersion, NvidiaDriverVersion, NvidiaGpus
from llmprov.matrix_cache import current_matrix

# Without --enforce-eager vLLM compiles its graphs on every start (110-170 s on two cores).
READY_TIMEOUT_S = 900
# Eager start-up took up to 289 s to answer on a loaded two-core host (2026-12-02): twice that.
READY_TIMEOUT_EAGER_S = 600


class VllmDeployError(DeployFailed):
    """No vLLM environment can be planned for a host; the message says what to change."""


def _gpu_inputs(cfg: HostConfig) -> tuple[Version | None, ComputeCapability | None, int]:
    """Driver, lowest compute capability and GPU count: host data first, then facts."""
    gpu = cfg.gpu
    if not cfg.has_nvidia:
        return None, None, 0
    if gpu.driver_version is not None:
        detection = detect_driver_version(override=gpu.driver_version)
    else:
        detection = host.get_fact(NvidiaDriverVersion)
    capability = (
        parse_compute_capability(gpu.compute_capability)
        if gpu.compute_capability is not None
        else lowest_compute_capability(host.get_fact(NvidiaGpus))  # type: ignore[arg-type]
    )
    return (detection.version if detection else None), capability, gpu.count


def resolve_for_host(cfg: HostConfig) -> VllmEnv:
    """The environment `llmprov matrix` answers for this host's driver, GPU, arch and glibc."""
    driver, capability, count = _gpu_inputs(cfg)
    try:
        resolution = resolve(
            driver=driver,
            compute_capability=capability,
            os=cfg.os,
            arch=host.get_fact(Arch),
            requested_vllm=cfg.settings.vllm.version,
            cpu=not cfg.has_nvidia,
            # A compose deploy runs vLLM's image, whose own glibc is what its wheels need.
            glibc=None if cfg.runtime == "compose" else host.get_fact(GlibcVersion),
            matrix=current_matrix(),
        )
    except (NoCompatibleBuild, MatrixDataError) as exc:
        raise VllmDeployError(f"{cfg.name}: vllm: {exc}") from exc
    return VllmEnv(resolution, count, tuple(cfg.settings.vllm.extra_packages))


def install_system_packages(cfg: HostConfig, from_controller: bool = False) -> list[Any]:
    wanted = system_packages(cfg.settings.vllm.enforce_eager, from_controller)
    installed = host.get_fact(DebPackages)
    missing = [p for p in wanted if p not in installed]
    if not missing:
        host.noop(f"system packages {', '.join(wanted)} are installed")
        return []
    return [
        apt.packages(name="vLLM system packages", packages=wanted, update=True, cache_time=3600)
    ]


def start_system_packages(cfg: HostConfig) -> list[Any]:
    """The missing packages, installed in the background (see APT_JOB_DIR); wait_system_packages
    joins them before the environment's check."""
    wanted = system_packages(cfg.settings.vllm.enforce_eager, from_controller=True)
    installed = host.get_fact(DebPackages)
    missing = [p for p in wanted if p not in installed]
    if not missing:
        host.noop(f"system packages {', '.join(wanted)} are installed")
        return []
    return [
        server.shell(
            name=f"Start installing {', '.join(missing)} in the background",
            commands=[shell(background_apt_argv(missing))],
        )
    ]


def wait_system_packages() -> Any:
    return server.shell(name="Wait for the vLLM system packages", commands=[shell(wait_apt_argv())])


def ensure_uv(mirror: MirrorSettings) -> list[Any]:
    if host.get_fact(File, path=UV_MARKER) and host.get_fact(File, path=UV):
        host.noop(f"uv {UV_VERSION} is installed")
        return []
    return [
        server.shell(
            name=f"Install uv {UV_VERSION} into the tools venv",
            commands=[shell(argv) for argv in bootstrap_uv_argv(mirror)],
        )
    ]


def _sudo_args() -> dict[str, Any]:
    """The privilege settings of host data, for commands a callback runs itself."""
    return {k: host.data.get(k) for k in ("_sudo", "_sudo_user") if host.data.get(k)}


def check_env(env: VllmEnv) -> None:
    """Run inside a deploy (python.call): probe the new environment, raise on any fault."""
    ok, output = host.run_shell_command(StringCommand(shell(probe_argv(env))), **_sudo_args())
    if not ok:
        tail = "\n".join(output.output_lines[-10:])
        raise EnvCheckFailed(f"the probe of {env.path} failed:\n{tail}")
    faults = check_probe(parse_probe(output.stdout), env)
    if faults:
        raise EnvCheckFailed(f"{env.path} is not usable: " + "; ".join(faults))


def _run(argv: list[str], what: str) -> str:
    """Run one command on the current host from a python.call; its stdout, or DeployFailed."""
    ok, output = host.run_shell_command(StringCommand(shell(argv)), **_sudo_args())
    if not ok:
        tail = "\n".join(output.output_lines[-10:])
        raise DeployFailed(f"{host.name}: {what} failed:\n{tail}")
    return str(output.stdout)


def send_wheels(env: VllmEnv, mirror: MirrorSettings, machine: str, glibc: tuple[int, int]) -> None:
    """Run inside a deploy (python.call): the environment's wheels and uv's, resolved and fetched
    once on the controller for every host, and what this host lacks sent in one tar stream."""
    from llmprov.cache import cache_root
    from llmprov.wheel_cache import WheelCacheError, read_chunks, resolve_and_fetch

    version = _run(
        [SYSTEM_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], "python3"
    )
    root = cache_root()
    try:
        target = Target(parse_python_version(version), machine, glibc)
        fetched = [
            resolve_and_fetch(
                locked_requirements(env),
                target,
                lock_sources(env, mirror),
                root,
                locked_exclude(env),
            ),
            resolve_and_fetch([f"uv=={UV_VERSION}"], target, uv_sources(mirror), root),
        ]
    except (WheelCacheError, WheelLockError) as exc:
        raise DeployFailed(f"{host.name}: vllm.wheels_from_controller: {exc}") from exc
    locks = [lock for lock, _ in fetched]
    paths = {name: path for _, found in fetched for name, path in found.items()}
    listing = _run(listing_argv(HOST_WHEELS_DIR), f"listing {HOST_WHEELS_DIR}")
    sizes = {name: path.stat().st_size for name, path in paths.items()}
    present = parse_listing(listing.splitlines())
    missing = [w for lock in locks for w in missing_on_host(lock, present, sizes)]
    if missing:
        send_tar(
            lambda: tar_stream(tar_members(missing, sizes, lambda n: read_chunks(paths[n]))),
            HOST_WHEELS_DIR,
        )
    if not host.put_file(StringIO(locks[0].requirements_txt()), lock_file(env), **_sudo_args()):
        raise DeployFailed(f"{host.name}: writing {lock_file(env)} failed")


def _from_controller_ops(env: VllmEnv, mirror: MirrorSettings) -> list[Any]:
    machine = host.get_fact(Arch)
    glibc = host.get_fact(GlibcVersion)
    if glibc is None:
        raise VllmDeployError(
            f"{host.name}: vllm.wheels_from_controller: the host has no glibc to resolve "
            "manylinux wheels for; set it to false"
        )
    return [
        python.call(
            name=f"Send the wheels of {env.key} from the controller",
            function=send_wheels,
            env=env,
            mirror=mirror,
            machine=machine,
            glibc=glibc,
        ),
        server.shell(
            name=f"Create environment {env.key}",
            commands=[
                shell(unpack_uv_argv()),
                *(shell(a) for a in create_env_argv(env, STANDALONE_UV)),
            ],
        ),
        server.shell(
            name=f"Install {env.torch_requirement} and {env.vllm_requirement} from the sent wheels",
            commands=[shell(install_locked_argv(env))],
        ),
    ]


def build_env(
    env: VllmEnv,
    mirror: MirrorSettings,
    from_controller: bool = False,
    packages_started: bool = False,
) -> list[Any]:
    """Make env.path hold a checked environment; the marker is written last, after the check.

    `packages_started`: start_system_packages began an install that is joined before the check.
    """
    marker = host.get_fact(FileContents, path=env.marker)
    if marker_matches("\n".join(marker) if marker else None, env):
        host.noop(f"vLLM environment {env.key} is built and checked")
        return [wait_system_packages()] if packages_started else []
    if from_controller:
        sent = _from_controller_ops(env, mirror)
        joined = [wait_system_packages()] if packages_started else []
        return [*sent, *joined, *_check_and_mark(env)]
    ops: list[Any] = [
        server.shell(
            name=f"Create environment {env.key}",
            commands=[shell(argv) for argv in create_env_argv(env)],
        ),
        server.shell(
            name=f"Install {env.torch_requirement} (minutes)",
            commands=[shell(install_torch_argv(env, mirror))],
        ),
        server.shell(
            name=f"Install {env.vllm_requirement} (minutes)",
            commands=[shell(install_vllm_argv(env, mirror))],
        ),
    ]
    if env.cpu:
        ops.append(
            server.shell(
                name="Remove the CUDA builds of torchvision, torchaudio, torchcodec",
                commands=[shell(remove_cpu_extras_argv(env))],
            )
        )
    return [*ops, *_check_and_mark(env)]


def _check_and_mark(env: VllmEnv) -> list[Any]:
    res = env.resolution
    return [
        python.call(
            name=f"Check environment {env.key} (torch {res.torch}, CUDA {res.cuda or 'none'})",
            function=check_env,
            env=env,
        ),
        files.put(
            name=f"Mark environment {env.key} checked",
            src=StringIO(marker_text(env)),
            dest=env.marker,
            mode="644",
        ),
    ]


def resolved_for_render(env: VllmEnv) -> Resolved:
    return Resolved(vllm_version=env.resolution.vllm, vllm_cpu=env.cpu, gpu_count=env.gpu_count)


def readiness(cfg: HostConfig, key: str) -> Readiness:
    timeout = READY_TIMEOUT_EAGER_S if cfg.settings.vllm.enforce_eager else READY_TIMEOUT_S
    # vLLM listens only once its engine is up; /health then answers 200 with an empty body.
    return Readiness("/health", " 200 ", "HTTP/1", timeout, f"vLLM environment {key}")


def deploy_vllm(cfg: HostConfig) -> None:
    layout = EngineLayout("vllm")
    env = resolve_for_host(cfg)
    mirror = cfg.settings.mirror
    installed = installed_versions("vllm")
    from_controller = cfg.settings.vllm.wheels_from_controller
    packages = start_system_packages(cfg) if from_controller else install_system_packages(cfg)
    service_user(cfg, home=layout.state_dir)
    dirs = engine_dirs(cfg)
    if not from_controller:
        ensure_uv(mirror)
    # Staged and checked beside the running environment: a failed check stops this host here.
    built = build_env(
        env, mirror, from_controller, packages_started=bool(from_controller and packages)
    )
    # The environment file first: a Hugging Face pull reads HF_TOKEN from it.
    rendered = upload(plan_host(cfg, resolved_for_render(env)))
    model = place_model(cfg)
    changes = [*packages, *built, *model, *rendered, *dirs]
    switch_and_prove(cfg, layout, env.key, installed, changes, readiness(cfg, env.key))
    record_and_prune(cfg, layout, deployed(cfg, env.resolution.vllm, env.key), installed)
