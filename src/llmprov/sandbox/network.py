"""The controller's side of the sandbox network: forwarding, NAT and the egress allowlist."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from llmprov.sandbox import plan, system
from llmprov.sandbox.errors import SandboxError

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
# The ip_forward value from before the first of possibly several concurrent harnesses set it;
# the last harness out restores it, so overlapping harnesses cannot leave it on or cut each off.
SAVED_IP_FORWARD = Path("/run/llmprov-sandbox/ip_forward.orig")


def resolve_ipv4(names: Sequence[str]) -> list[str]:
    """IPv4 addresses of the names that resolve; the others are left out."""
    found: list[str] = []
    for name in names:
        try:
            infos = socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue
        for info in infos:
            address = str(info[4][0])
            if address not in found:
                found.append(address)
    return found


def allowed_destinations(mirror_hosts: Sequence[str], extra_hosts: Sequence[str]) -> list[str]:
    """Where hosts may connect beyond the sandbox: the mirrors, extra hosts and the nameservers."""
    nameservers = plan.parse_nameservers(system.read_text(Path("/etc/resolv.conf")))
    return [*resolve_ipv4([*mirror_hosts, *extra_hosts]), *nameservers]


def setup_network(harness_id: str, destinations: Sequence[str]) -> list[plan.FirewallRule]:
    """Turn on forwarding and add the tagged rules; returns the rules added, to remove later."""
    route = system.run(["ip", "-o", "-4", "route", "show", "default"]).stdout
    interface = plan.parse_default_route_interface(route)
    rules = plan.firewall_rules(interface, destinations, plan.rule_tag(harness_id))
    added: list[plan.FirewallRule] = []
    try:
        for rule in plan.iptables_insert_order(rules):
            system.run(plan.iptables_argv("insert", rule))
            added.append(rule)
        _enable_ip_forward()
    except BaseException:
        teardown_network(added)
        raise
    return added


def _enable_ip_forward() -> None:
    current = IP_FORWARD.read_text().strip()
    SAVED_IP_FORWARD.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(SAVED_IP_FORWARD, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(current + "\n")
    if current != "1":
        IP_FORWARD.write_text("1\n")


def teardown_network(rules: Sequence[plan.FirewallRule]) -> None:
    """Remove exactly these rules; restore ip_forward when no other harness's rules remain."""
    failures: list[str] = []
    for rule in rules:
        result = system.run(plan.iptables_argv("delete", rule), check=False)
        if result.returncode != 0 and _rule_present(rule):
            failures.append(f"{rule}: {result.stderr.strip()}")
    remaining = plan.tags_in_ruleset(system.run(["iptables-save"], check=False).stdout)
    if not remaining and SAVED_IP_FORWARD.exists():
        IP_FORWARD.write_text(SAVED_IP_FORWARD.read_text().strip() + "\n")
        SAVED_IP_FORWARD.unlink()
    if failures:
        raise SandboxError("could not remove iptables rules: " + "; ".join(failures))


def _rule_present(rule: plan.FirewallRule) -> bool:
    return system.run(plan.iptables_argv("check", rule), check=False).returncode == 0
