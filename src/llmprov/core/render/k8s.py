"""Kubernetes manifests for an inventory's fleet: Deployments, LeaderWorkerSets, Services, claims.

A Deployment serves each distinct serving setup (identical hosts fold into its replicas), a
LeaderWorkerSet each serving cluster; each comes with its Service and model PersistentVolumeClaim.

Kubernetes is a render output (`llmprov render --k8s`), not a `runtime:` value. A runtime says how
one host runs its engine, and every runtime has a deploy that connects to that host; a manifest
describes a fleet that a Kubernetes scheduler places, and llmprov never connects to a cluster. As a
flag, the same inventory renders host files and manifests alike, and a fleet of identical hosts
folds into one Deployment with that many replicas.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

import yaml

from llmprov.core.config import HostConfig
from llmprov.core.layout import safe_name
from llmprov.core.render.base import Resolved, render_template
from llmprov.core.render.compose import (
    CONTAINER_MODELS,
    CONTAINER_PORTS,
    LLAMACPP_IMAGE,
    OLLAMA_IMAGE,
    VLLM_CPU_IMAGE,
    VLLM_GPU_IMAGE,
)
from llmprov.core.render.engines import engine_env, llamacpp_argv, ollama_env, vllm_argv

GPU_RESOURCE = "nvidia.com/gpu"
LWS_API = "leaderworkerset.x-k8s.io/v1"
# Label the LeaderWorkerSet controller puts on every pod of a set; the Service selects the leader.
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
# Requested for each model volume; size it to the model before applying (or patch it).
MODELS_STORAGE = "50Gi"
# vLLM shares tensors between its processes through /dev/shm; a container's default is 64 MiB.
SHM_SIZE = "16Gi"
# How long a server may take to answer /health after start (vLLM compiles graphs: minutes).
STARTUP_SECONDS = {"vllm": 1200, "llamacpp": 300, "ollama": 120}
# Ollama has no /health; GET / answers 200 "Ollama is running" once it serves.
HEALTH_PATHS = {"vllm": "/health", "llamacpp": "/health", "ollama": "/"}
API_KEY_VARS = {"vllm": "VLLM_API_KEY", "llamacpp": "LLAMA_API_KEY"}

_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")


class _Dumper(yaml.SafeDumper):
    """YAML without anchors: pod templates share their volume lists, and kubectl users read these."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class K8sRenderError(ValueError):
    """Manifests cannot be rendered from what the inventory says; the message is `host: field: reason`."""


@dataclass(frozen=True)
class Workload:
    """One Deployment (or LeaderWorkerSet) and what goes with it, from one or more hosts."""

    name: str
    hosts: tuple[str, ...]
    cfg: HostConfig
    resolved: Resolved

    @property
    def is_cluster(self) -> bool:
        return self.cfg.cluster is not None


@dataclass(frozen=True)
class Manifest:
    """One file under DIR/_k8s/: a workload's objects as parsed documents and as YAML text."""

    filename: str
    documents: tuple[dict[str, Any], ...]
    text: str


def dns_name(text: str, limit: int = 52) -> str:
    """A DNS-1123 label with room left for suffixes (`-models`, and the controllers' own)."""
    name = _DNS_UNSAFE.sub("-", text.lower()).strip("-")[:limit].strip("-")
    return name or "llmprov"


def _identity(cfg: HostConfig, resolved: Resolved) -> str:
    """What makes two hosts the same workload: every setting but the host's own connection."""
    s = cfg.settings.model_dump(mode="json", exclude={"bind", "cluster", "smoke", "bench"})
    return repr((s, resolved, cfg.api_key is not None, cfg.hf_token is not None))


def workloads(hosts: Mapping[str, HostConfig], resolved: Mapping[str, Resolved]) -> list[Workload]:
    """Hosts folded into workloads: a cluster is one, identical hosts are one, in inventory order."""
    groups: dict[str, list[str]] = {}
    for name, cfg in hosts.items():
        key = f"cluster:{cfg.cluster.name}" if cfg.cluster else _identity(cfg, resolved[name])
        groups.setdefault(key, []).append(name)
    out: list[Workload] = []
    taken: set[str] = set()
    for names in groups.values():
        first = hosts[names[0]]
        head = hosts[first.cluster.head] if first.cluster else first
        base = (
            dns_name(f"{first.cluster.name}")
            if first.cluster
            else dns_name(f"{head.engine}-{safe_name(head.served_model_name)}")
        )
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        out.append(Workload(name, tuple(names), head, resolved[head.name]))
    return out


# ---------------------------------------------------------------- containers


def _labels(w: Workload) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": w.name,
        "app.kubernetes.io/component": w.cfg.engine,
        "app.kubernetes.io/managed-by": "llmprov",
    }


def _container_cfg(cfg: HostConfig) -> HostConfig:
    """In a pod the server listens on every interface, on its image's usual port."""
    settings = cfg.settings.model_copy(update={"bind": IPv4Address("0.0.0.0")})
    return cfg.model_copy(update={"settings": settings, "port": CONTAINER_PORTS[cfg.engine]})


def _model_in_pod(cfg: HostConfig) -> str:
    return f"{CONTAINER_MODELS}/{safe_name(cfg.served_model_name)}" + (
        ".gguf" if cfg.engine == "llamacpp" else ""
    )


def _secret_env(w: Workload) -> list[dict[str, Any]]:
    """Secrets come from a Secret named after the workload; llmprov writes no secret to a file."""
    env: list[dict[str, Any]] = []
    var = API_KEY_VARS.get(w.cfg.engine)
    if w.cfg.api_key is not None and var:
        env.append(
            {
                "name": var,
                "valueFrom": {"secretKeyRef": {"name": f"{w.name}-secrets", "key": "api-key"}},
            }
        )
    if w.cfg.hf_token is not None:
        env.append(
            {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": f"{w.name}-secrets", "key": "hf-token"}},
            }
        )
    return env


def _image(w: Workload) -> str:
    cfg, r = w.cfg, w.resolved
    if cfg.engine == "vllm":
        if r.vllm_version is None:
            raise K8sRenderError(f"{cfg.name}: vllm.version: a manifest needs a pinned version")
        return f"{VLLM_GPU_IMAGE if r.gpu_count else VLLM_CPU_IMAGE}:v{r.vllm_version}"
    if cfg.engine == "llamacpp":
        if r.llamacpp_image_tag is None:
            raise K8sRenderError(
                f"{cfg.name}: llamacpp.release: a manifest needs an upstream release tag (bNNNN)"
            )
        kind = "server-cuda" if r.gpu_count else "server"
        return f"{LLAMACPP_IMAGE}:{kind}-{r.llamacpp_image_tag}"
    return f"{OLLAMA_IMAGE}:{cfg.settings.ollama.version}"


def serve_args(w: Workload) -> list[str]:
    """The server's arguments after the image's entrypoint (`vllm serve`, `llama-server`)."""
    cfg = _container_cfg(w.cfg)
    if cfg.engine == "vllm":
        argv = vllm_argv(cfg, "python3", _model_in_pod(cfg), w.resolved.gpu_count)
        return [argv[4], *argv[5:]]  # drop `python3 -m MODULE --model`: the model is positional
    if cfg.engine == "llamacpp":
        return llamacpp_argv(cfg, "llama-server", _model_in_pod(cfg))[1:]
    return []


def _env(w: Workload) -> list[dict[str, Any]]:
    cfg = w.cfg
    if cfg.engine == "ollama":
        pairs = [(k, v) for k, v in ollama_env(cfg) if k not in ("OLLAMA_HOST", "OLLAMA_MODELS")]
        pairs.insert(0, ("OLLAMA_HOST", f"0.0.0.0:{CONTAINER_PORTS['ollama']}"))
    else:
        pairs = [
            (k, v) for k, v in engine_env(cfg, w.resolved, "/root/.cache") if k != "XDG_CACHE_HOME"
        ]
    return [{"name": k, "value": v} for k, v in pairs] + _secret_env(w)


def _probe(w: Workload, **timing: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": HEALTH_PATHS[w.cfg.engine], "port": "http"},
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        **timing,
    }


def _resources(w: Workload) -> dict[str, Any]:
    gpus = w.resolved.gpu_count
    if not gpus:
        return {}
    # Extended resources are not overcommitted: the request must equal the limit.
    return {"requests": {GPU_RESOURCE: gpus}, "limits": {GPU_RESOURCE: gpus}}


def _mounts(w: Workload) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumeMounts, volumes) of a serving pod: the models claim, and vLLM's cache and /dev/shm."""
    target = "/root/.ollama" if w.cfg.engine == "ollama" else CONTAINER_MODELS
    mounts: list[dict[str, Any]] = [{"name": "models", "mountPath": target}]
    volumes: list[dict[str, Any]] = [
        {"name": "models", "persistentVolumeClaim": {"claimName": f"{w.name}-models"}}
    ]
    if w.cfg.engine == "vllm":
        mounts += [
            {"name": "cache", "mountPath": "/root/.cache"},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ]
        volumes += [
            {"name": "cache", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
        ]
    return mounts, volumes


def _container(w: Workload, name: str, **fields: Any) -> dict[str, Any]:
    mounts, _ = _mounts(w)
    container: dict[str, Any] = {"name": name, "image": _image(w), **fields}
    env = _env(w)
    if env:
        container["env"] = env
    resources = _resources(w)
    if resources:
        container["resources"] = resources
    container["volumeMounts"] = mounts
    container["securityContext"] = {"allowPrivilegeEscalation": False}
    return container


def _serving_container(w: Workload, name: str, **fields: Any) -> dict[str, Any]:
    startup = STARTUP_SECONDS[w.cfg.engine]
    return _container(
        w,
        name,
        **fields,
        ports=[{"name": "http", "containerPort": CONTAINER_PORTS[w.cfg.engine]}],
        startupProbe=_probe(w, failureThreshold=startup // 10),
        readinessProbe=_probe(w, failureThreshold=3),
        livenessProbe=_probe(w, failureThreshold=6),
    )


# ---------------------------------------------------------------- objects


def _claim(w: Workload, shared: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"{w.name}-models", "labels": _labels(w)},
        "spec": {
            # Pods on several nodes read one model: that needs a volume many nodes can mount.
            "accessModes": ["ReadWriteMany" if shared else "ReadWriteOnce"],
            "resources": {"requests": {"storage": MODELS_STORAGE}},
        },
    }


def _service(w: Workload, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": w.name, "labels": _labels(w)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "http", "port": w.cfg.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def _deployment(w: Workload) -> dict[str, Any]:
    labels = _labels(w)
    _, volumes = _mounts(w)
    args = serve_args(w)
    container = _serving_container(w, w.cfg.engine, **({"args": args} if args else {}))
    replicas = len(w.hosts)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": w.name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": w.name}},
            # One pod holds a ReadWriteOnce claim: the old pod must go before the new one starts.
            "strategy": {"type": "Recreate" if replicas == 1 else "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], "volumes": volumes},
            },
        },
    }


def ray_head_argv(w: Workload) -> list[str]:
    member = w.cfg.cluster
    assert member is not None
    return [
        "ray", "start", "--head", "--port", str(member.ray_port),
        "--num-gpus", str(w.resolved.gpu_count), "--disable-usage-stats",
        "--include-dashboard", "false",
    ]  # fmt: skip


def ray_worker_argv(w: Workload) -> list[str]:
    member = w.cfg.cluster
    assert member is not None
    # $(VAR) is expanded by Kubernetes from the container's environment; LWS sets this one.
    return [
        "ray", "start", "--address", f"$(LWS_LEADER_ADDRESS):{member.ray_port}", "--block",
        "--num-gpus", str(w.resolved.gpu_count), "--disable-usage-stats",
    ]  # fmt: skip


def leader_command(w: Workload) -> list[str]:
    """Ray's head, then `vllm serve` in its place: vLLM places its workers on the group's pods."""
    member = w.cfg.cluster
    assert member is not None
    if not member.serve:
        return [*ray_head_argv(w), "--block"]
    cfg = w.cfg.model_copy(
        update={
            "settings": w.cfg.settings.model_copy(
                update={
                    "vllm": w.cfg.settings.vllm.model_copy(
                        update={
                            "tensor_parallel_size": member.tensor_parallel_size,
                            "pipeline_parallel_size": member.pipeline_parallel_size,
                            "extra_args": [
                                *w.cfg.settings.vllm.extra_args,
                                "--distributed-executor-backend",
                                "ray",
                            ],
                        }
                    )
                }
            )
        }
    )
    serve = ["vllm", "serve", *serve_args(Workload(w.name, w.hosts, cfg, w.resolved))]
    return ["/bin/sh", "-c", f"{shlex.join(ray_head_argv(w))} && exec {shlex.join(serve)}"]


def _leader_worker_set(w: Workload) -> dict[str, Any]:
    member = w.cfg.cluster
    assert member is not None
    labels = _labels(w)
    _, volumes = _mounts(w)
    if member.serve:
        leader = _serving_container(w, "leader", command=leader_command(w))
    else:
        leader = _container(
            w,
            "leader",
            command=leader_command(w),
            readinessProbe={"tcpSocket": {"port": member.ray_port}, "periodSeconds": 10},
        )
    worker = _container(w, "worker", command=ray_worker_argv(w))
    return {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": {"name": w.name, "labels": labels},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": member.nodes,
                # One lost pod loses its share of the model: the whole group restarts.
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {
                    "metadata": {"labels": {**labels, "role": "leader"}},
                    "spec": {"containers": [leader], "volumes": volumes},
                },
                "workerTemplate": {
                    "metadata": {"labels": {**labels, "role": "worker"}},
                    "spec": {"containers": [worker], "volumes": volumes},
                },
            },
        },
    }


def documents(w: Workload) -> list[dict[str, Any]]:
    if w.is_cluster:
        member = w.cfg.cluster
        assert member is not None
        docs = [_claim(w, shared=True), _leader_worker_set(w)]
        if member.serve:
            docs.append(_service(w, {LWS_NAME_LABEL: w.name, "role": "leader"}))
        return docs
    return [
        _claim(w, shared=len(w.hosts) > 1),
        _deployment(w),
        _service(w, {"app.kubernetes.io/name": w.name}),
    ]


def _describe(w: Workload) -> str:
    what = (
        f"LeaderWorkerSet of {len(w.hosts)} pods (Ray over the group)"
        if w.is_cluster
        else f"Deployment of {len(w.hosts)} replica(s)"
    )
    return f"{w.cfg.engine} serving {w.cfg.served_model_name}: {what}"


def render_manifests(
    hosts: Mapping[str, HostConfig], resolved: Mapping[str, Resolved]
) -> list[Manifest]:
    """One multi-document YAML file per workload, in inventory order."""
    out: list[Manifest] = []
    for w in workloads(hosts, resolved):
        docs = documents(w)
        text = render_template(
            "k8s-workload.yaml.j2",
            description=_describe(w),
            hosts=w.hosts,
            workload=w.name,
            model_dir=_model_in_pod(w.cfg) if w.cfg.engine != "ollama" else None,
            secrets=[e["valueFrom"]["secretKeyRef"]["key"] for e in _secret_env(w)],
            documents=[yaml.dump(d, Dumper=_Dumper, sort_keys=False, width=1000) for d in docs],
        )
        out.append(Manifest(f"{w.name}.yaml", tuple(docs), text))
    return out


def all_documents(manifests: Iterable[Manifest]) -> list[dict[str, Any]]:
    return [d for m in manifests for d in m.documents]


def resolved_for_k8s(cfg: HostConfig) -> Resolved:
    """What rendering needs, from the inventory alone: an image pins vLLM as a compose file does."""
    from llmprov.core.render.plan import PlanError, offline_resolved

    try:
        return offline_resolved(cfg.model_copy(update={"runtime": "compose"}))
    except PlanError as exc:
        raise K8sRenderError(str(exc).replace("a compose file", "a manifest")) from exc
