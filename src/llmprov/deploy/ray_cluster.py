"""Deploy of a serving-cluster node: Ray in vLLM's environment, its units and firewall, the serve."""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.context import host
from pyinfra.facts.files import File, FileContents
from pyinfra.facts.server import Which
from pyinfra.operations import apt, files, server, systemd

from llmprov.core.cluster import (
    FIREWALL_UNIT,
    RAY_MARKER,
    RAY_UNIT,
    RayPorts,
    nodes_probe_argv,
    render_member,
)
from llmprov.core.config import ClusterMember, HostConfig, MirrorSettings
from llmprov.core.layout import EngineLayout
from llmprov.core.vllm_env import UV, VllmEnv, shell, uv_env_vars, uv_pypi_args
from llmprov.deploy.common import any_change, engine_dirs, service_user, upload, wait_http
from llmprov.deploy.models import place_model

# The single-host vLLM deploy's steps, shared so that a node's environment is built the same way.
from llmprov.deploy.vllm import (
    READY_TIMEOUT_EAGER_S,
    READY_TIMEOUT_S,
    VllmDeployError,
    build_env,
    ensure_uv,
    install_system_packages,
    resolve_for_host,
    resolved_for_render,
)

# A worker may start before the head's GCS answers; Ray's unit restarts it every 5 s until then.
RAY_READY_TIMEOUT_S = 180


def install_ray_argv(env: VllmEnv, version: str, mirror: MirrorSettings) -> list[str]:
    return [
        "env", *uv_env_vars(), UV, "pip", "install", "--python", env.python,
        *uv_pypi_args(mirror), f"ray=={version}",
    ]  # fmt: skip


def check_ray_argv(env: VllmEnv, version: str) -> list[str]:
    script = (
        "import sys, ray; v = ray.__version__; "
        f"sys.exit(0 if v == {version!r} else 'ray is ' + v + ', wanted {version}')"
    )
    return [env.python, "-c", script]


def _install_ray(env: VllmEnv, version: str, mirror: MirrorSettings, rebuilt: bool) -> list[Any]:
    """Ray of the cluster's version inside the node's vLLM environment, marked once it imports."""
    marker = f"{env.path}/{RAY_MARKER}"
    # A rebuilt environment loses its marker with it, whatever the fact read before the rebuild.
    if not rebuilt and host.get_fact(FileContents, path=marker) == [version]:
        host.noop(f"ray {version} is installed in environment {env.key}")
        return []
    return [
        server.shell(
            name=f"Install ray {version} into environment {env.key}",
            commands=[
                shell(install_ray_argv(env, version, mirror)),
                shell(check_ray_argv(env, version)),
                f"printf '%s\\n' {shlex.quote(version)} > {shlex.quote(marker)}",
            ],
        )
    ]


def _wait_tcp(what: str, address: str, port: int, changed: bool, timeout_s: int) -> Any:
    """Wait on the host until `address:port` accepts a connection (only after a change)."""
    probe = f"exec 3<>/dev/tcp/{address}/{port}"
    script = (
        f"for i in $(seq {timeout_s}); do "
        f"timeout 5 bash -c {shlex.quote(probe)} 2>/dev/null && exit 0; sleep 1; done; "
        f"echo 'nothing listens on {address}:{port} after {timeout_s}s' >&2; exit 1"
    )
    return server.shell(
        name=f"Wait for {what} on {address}:{port}",
        commands=[f"bash -c {shlex.quote(script)}"],
        _if=lambda: changed,
    )


def _wait_nodes(cfg: HostConfig, member: ClusterMember, changed: bool, timeout_s: int) -> Any:
    """On the head: wait until every node of the cluster is alive in Ray (only after a change).

    The probe is a Ray driver; it runs as the service user, whose files Ray's session holds.
    """
    layout = EngineLayout("vllm")
    probe = shlex.join(
        [
            "runuser", "-u", cfg.service_user, "--", "env", f"HOME={layout.state_dir}",
            *nodes_probe_argv(member, f"{layout.current}/bin/python"),
        ]
    )  # fmt: skip
    script = (
        f"cd {shlex.quote(layout.state_dir)} && end=$((SECONDS + {timeout_s})); "
        f"while [ $SECONDS -lt $end ]; do {probe} && exit 0; sleep 3; done; "
        f"echo 'cluster {member.name}: fewer than {member.nodes} nodes alive "
        f"after {timeout_s}s' >&2; exit 1"
    )
    return server.shell(
        name=f"Wait for the {member.nodes} nodes of cluster {member.name}",
        commands=[f"bash -c {shlex.quote(script)}"],
        _if=lambda: changed,
    )


def _firewall(member: ClusterMember, changed: bool) -> list[Any]:
    # Fail closed: Ray's unit requires the firewall unit, so without nft Ray would not start;
    # install nftables where apt can, and stop the deploy with a reason where it cannot.
    ops: list[Any] = []
    if not host.get_fact(Which, command="nft"):
        if not host.get_fact(Which, command="apt-get"):
            raise VllmDeployError(
                f"{host.name}: cluster: nft is not installed and there is no apt-get to install "
                "nftables; Ray's ports stay closed until it is (install nftables, then deploy again)"
            )
        ops.append(apt.packages(name="Install nftables (Ray's firewall)", packages=["nftables"]))
    return [
        *ops,
        systemd.service(
            name=f"Load Ray firewall rules (peers: {', '.join(member.peers)})",
            service=FIREWALL_UNIT,
            running=True,
            enabled=True,
            restarted=changed,
        ),
    ]


def deploy_cluster_node(cfg: HostConfig) -> None:
    member = cfg.cluster
    if member is None:
        raise VllmDeployError(f"{cfg.name}: cluster: not a node of a serving cluster")
    layout = EngineLayout("vllm")
    env = resolve_for_host(cfg)
    if env.resolution.vllm != cfg.settings.vllm.version:
        raise VllmDeployError(
            f"{cfg.name}: vllm.version: resolved {env.resolution.vllm}, but cluster "
            f"{member.name} pins {cfg.settings.vllm.version}"
        )
    mirror = cfg.settings.mirror
    packages = install_system_packages(cfg)
    service_user(cfg, home=layout.state_dir)
    dirs = engine_dirs(cfg)
    ensure_uv(mirror)
    built = build_env(env, mirror)
    ray = _install_ray(env, member.ray_version, mirror, rebuilt=bool(built))
    link = files.link(name=f"Switch to environment {env.key}", path=layout.current, target=env.path)
    serves = member.is_head and member.serve
    # With Ray, every node loads its share of the model from the same path.
    # The environment file (HF_TOKEN) goes up first: a hf:// pull on the host reads it.
    rendered = upload(render_member(cfg, resolved_for_render(env)))
    model = place_model(cfg) if member.serve else []
    changed = any_change([*packages, *dirs, *built, *ray, link, *model, *rendered])
    systemd.daemon_reload(name="Reload systemd", _if=lambda: changed)
    _firewall(member, changed)
    systemd.service(
        name=f"Run Ray {member.role} ({RAY_UNIT})",
        service=RAY_UNIT,
        running=True,
        enabled=True,
        restarted=changed,
    )
    ports = RayPorts(member.ray_port)
    if member.is_head:
        _wait_tcp("Ray's GCS", member.address, ports.gcs, changed, RAY_READY_TIMEOUT_S)
    else:
        _wait_tcp("Ray's raylet", member.address, ports.node_manager, changed, RAY_READY_TIMEOUT_S)
    if member.is_head:
        # Ops run stage by stage on every host: the workers' units started in the stage before.
        _wait_nodes(cfg, member, changed, RAY_READY_TIMEOUT_S)
    if serves:
        systemd.service(
            name=f"Run {layout.unit_name} on Ray",
            service=layout.unit_name,
            running=True,
            enabled=True,
            restarted=changed,
        )
        eager = cfg.settings.vllm.enforce_eager
        wait_http(
            cfg,
            "/health",
            "HTTP/1",
            changed,
            timeout_s=READY_TIMEOUT_EAGER_S if eager else READY_TIMEOUT_S,
        )
    elif host.get_fact(File, path=layout.unit_path):
        # A node that served on its own before: only the head serves now.
        systemd.service(
            name=f"Stop the single-host {layout.unit_name}",
            service=layout.unit_name,
            running=False,
            enabled=False,
        )
