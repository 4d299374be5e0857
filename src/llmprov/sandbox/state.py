"""Records of booted sandbox hosts and what the harness changed, and their JSON state file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmprov.sandbox import plan
from llmprov.sandbox.errors import SandboxError

STATE_VERSION = 1


@dataclass(frozen=True)
class SandboxHost:
    """A booted host: how to reach it over SSH, and what the harness holds for it."""

    name: str
    address: str
    gateway: str  # the controller's address on this host's link: where it reaches our servers
    ssh_key: Path
    leader: int  # PID of the host's systemd (PID 1 inside), for nsenter
    nspawn_pid: int
    index: int  # N in 10.231.N.0/24
    host_dir: Path  # upper/, work/, merged/ and console.log
    cgroups: tuple[Path, ...] = ()

    @property
    def merged(self) -> Path:
        return self.host_dir / "merged"

    @property
    def console_log(self) -> Path:
        return self.host_dir / "console.log"

    def inventory_entry(self) -> tuple[str, dict[str, Any]]:
        """This host as a pyinfra `@ssh` inventory entry: (name, host data)."""
        return (
            self.name,
            {
                "ssh_hostname": self.address,
                "ssh_user": "root",
                "ssh_key": str(self.ssh_key),
                "ssh_known_hosts_file": "/dev/null",
                "ssh_strict_host_key_checking": "no",
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "gateway": self.gateway,
            "ssh_key": str(self.ssh_key),
            "leader": self.leader,
            "nspawn_pid": self.nspawn_pid,
            "index": self.index,
            "host_dir": str(self.host_dir),
            "cgroups": [str(c) for c in self.cgroups],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxHost:
        return cls(
            name=str(data["name"]),
            address=str(data["address"]),
            gateway=str(data["gateway"]),
            ssh_key=Path(data["ssh_key"]),
            leader=int(data["leader"]),
            nspawn_pid=int(data["nspawn_pid"]),
            index=int(data["index"]),
            host_dir=Path(data["host_dir"]),
            cgroups=tuple(Path(c) for c in data.get("cgroups", [])),
        )


@dataclass
class SandboxState:
    """Everything a teardown needs, for hosts that outlive the process that booted them."""

    harness_id: str
    work_dir: Path
    owns_work_dir: bool
    hosts: list[SandboxHost] = field(default_factory=list)
    rules: list[plan.FirewallRule] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "harness_id": self.harness_id,
            "work_dir": str(self.work_dir),
            "owns_work_dir": self.owns_work_dir,
            "hosts": [h.to_dict() for h in self.hosts],
            "rules": [
                {"table": r.table, "chain": r.chain, "spec": list(r.spec)} for r in self.rules
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxState:
        if data.get("version") != STATE_VERSION:
            raise SandboxError(
                f"sandbox state version {data.get('version')!r} is not {STATE_VERSION}"
            )
        return cls(
            harness_id=str(data["harness_id"]),
            work_dir=Path(data["work_dir"]),
            owns_work_dir=bool(data["owns_work_dir"]),
            hosts=[SandboxHost.from_dict(h) for h in data["hosts"]],
            rules=[
                plan.FirewallRule(str(r["table"]), str(r["chain"]), tuple(r["spec"]))
                for r in data["rules"]
            ],
        )


def save_state(state: SandboxState, path: Path) -> None:
    """Write the state file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(state.to_dict(), indent=2) + "\n")
    os.replace(temp, path)


def load_state(path: Path) -> SandboxState:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SandboxError(
            f"no sandbox state at {path}: no sandbox is up (start one with `llmprov sandbox up`)"
        ) from None
    try:
        return SandboxState.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise SandboxError(f"unreadable sandbox state {path}: {exc}") from exc
