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
    UV,
    UV_MARKER,
    UV_VERSION,
    EnvCheckFailed,
    VllmEnv,
    bootstrap_uv_argv,
    check_probe,
    create_env_argv,
    install_torch_argv,
    install_vllm_argv,
    marker_matches,
    marker_text,
    parse_probe,
    probe_argv,
    remove_cpu_extras_argv,
    shell,
    system_packages,
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
from llmprov.facts.gpu import GlibcVersion, NvidiaDriverVersion, NvidiaGpus
from llmprov.matrix_cache import current_matrix

# Without --enforce-eager vLLM compiles its graphs on every start (110-170 s on two cores).
READY_TIMEOUT_S = 900
READY_TIMEOUT_EAGER_S = 300


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


def install_system_packages(cfg: HostConfig) -> list[Any]:
    wanted = system_packages(cfg.settings.vllm.enforce_eager)
    installed = host.get_fact(DebPackages)
    missing = [p for p in wanted if p not in installed]
    if not missing:
        host.noop(f"system packages {', '.join(wanted)} are installed")
        return []
    return [
        apt.packages(name="vLLM system packages", packages=wanted, update=True, cache_time=3600)
    ]


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


def build_env(env: VllmEnv, mirror: MirrorSettings) -> list[Any]:
    """Make env.path hold a checked environment; the marker is written last, after the check."""
    marker = host.get_fact(FileContents, path=env.marker)
    if marker_matches("\n".join(marker) if marker else None, env):
        host.noop(f"vLLM environment {env.key} is built and checked")
        return []
    res = env.resolution
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
    ops += [
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
    return ops


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
    packages = install_system_packages(cfg)
    service_user(cfg, home=layout.state_dir)
    dirs = engine_dirs(cfg)
    ensure_uv(mirror)
    # Staged and checked beside the running environment: a failed check stops this host here.
    built = build_env(env, mirror)
    # The environment file first: a Hugging Face pull reads HF_TOKEN from it.
    rendered = upload(plan_host(cfg, resolved_for_render(env)))
    model = place_model(cfg)
    changes = [*packages, *built, *model, *rendered, *dirs]
    switch_and_prove(cfg, layout, env.key, installed, changes, readiness(cfg, env.key))
    record_and_prune(cfg, layout, deployed(cfg, env.resolution.vllm, env.key), installed)
