"""Prometheus scrape jobs for every deployed engine's metrics endpoint, rendered from the inventory."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from llmprov.core.config import HostConfig
from llmprov.core.render.base import render_template

# Where each engine serves Prometheus metrics. vLLM serves /metrics always and leaves it open
# (its API key guards /v1 only); llama-server serves it with --metrics, which llmprov always
# passes, and guards it with the API key. Ollama has no metrics endpoint of its own.
METRICS_PATHS: dict[str, str] = {"vllm": "/metrics", "llamacpp": "/metrics"}
# Where the Prometheus server is expected to hold a host's API key, one file per host.
CREDENTIALS_DIR = "/etc/prometheus/llmprov"

_JOB_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Target:
    host: str
    engine: str
    address: str
    port: int
    model: str
    cluster: str | None
    # The server listens on loopback only: Prometheus must run on the host to reach it.
    local_only: bool
    credentials_file: str | None

    @property
    def target(self) -> str:
        return (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else f"{self.address}:{self.port}"
        )


@dataclass(frozen=True)
class Job:
    name: str
    metrics_path: str
    targets: tuple[Target, ...]
    credentials_file: str | None = None


@dataclass(frozen=True)
class ScrapePlan:
    jobs: tuple[Job, ...]
    # Hosts with no endpoint to scrape, and why.
    unscraped: tuple[tuple[str, str], ...]


def scrape_address(cfg: HostConfig, data: Mapping[str, Any]) -> str:
    """Where Prometheus reaches the server: its bind address when specific, else how SSH reaches it."""
    bind = ip_address(cfg.bind)
    if not (bind.is_unspecified or bind.is_loopback):
        return cfg.bind
    if cfg.cluster is not None:
        return cfg.cluster.address
    return str(data.get("ssh_hostname") or cfg.name)


def plan_scrape(
    hosts: Mapping[str, HostConfig], host_data: Mapping[str, Mapping[str, Any]]
) -> ScrapePlan:
    by_engine: dict[str, list[Target]] = {}
    unscraped: list[tuple[str, str]] = []
    for name, cfg in hosts.items():
        if cfg.cluster is not None and not cfg.cluster.is_head:
            unscraped.append((name, f"a worker of cluster {cfg.cluster.name}; its head serves"))
            continue
        if cfg.cluster is not None and not cfg.cluster.serve:
            unscraped.append((name, f"head of cluster {cfg.cluster.name}, which serves nothing"))
            continue
        if cfg.engine not in METRICS_PATHS:
            unscraped.append((name, f"{cfg.engine} has no metrics endpoint of its own"))
            continue
        guarded = cfg.engine == "llamacpp" and cfg.api_key is not None
        by_engine.setdefault(cfg.engine, []).append(
            Target(
                host=name,
                engine=cfg.engine,
                address=scrape_address(cfg, host_data.get(name, {})),
                port=cfg.port,
                model=cfg.served_model_name,
                cluster=cfg.cluster.name if cfg.cluster else None,
                local_only=ip_address(cfg.bind).is_loopback,
                credentials_file=f"{CREDENTIALS_DIR}/{name}.key" if guarded else None,
            )
        )
    jobs: list[Job] = []
    for engine in sorted(by_engine):
        targets = by_engine[engine]
        open_targets = tuple(t for t in targets if t.credentials_file is None)
        if open_targets:
            jobs.append(Job(f"llmprov-{engine}", METRICS_PATHS[engine], open_targets))
        # A bearer token is per job in Prometheus, and every host has its own key.
        for t in targets:
            if t.credentials_file is not None:
                job = f"llmprov-{engine}-{_JOB_SAFE.sub('_', t.host)}"
                jobs.append(Job(job, METRICS_PATHS[engine], (t,), t.credentials_file))
    return ScrapePlan(tuple(jobs), tuple(unscraped))


def render_prometheus(
    hosts: Mapping[str, HostConfig], host_data: Mapping[str, Mapping[str, Any]], source: str
) -> str:
    """prometheus.yml with one scrape job per engine (and per API-key-guarded host)."""
    plan = plan_scrape(hosts, host_data)
    return render_template(
        "prometheus.yml.j2",
        source=source,
        jobs=plan.jobs,
        unscraped=plan.unscraped,
        credentials_dir=CREDENTIALS_DIR,
    )
