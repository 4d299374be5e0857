"""Throwaway Debian 12 hosts with systemd as PID 1 (systemd-nspawn), reachable over SSH, for tests."""

from llmprov.sandbox.base import ensure_base, ensure_ssh_key, ensure_trust_layer
from llmprov.sandbox.errors import SandboxError
from llmprov.sandbox.harness import Harness, teardown, teardown_host
from llmprov.sandbox.plan import BASE_PACKAGES, default_cache_dir, default_state_path
from llmprov.sandbox.state import SandboxHost, SandboxState, load_state, save_state

__all__ = [
    "BASE_PACKAGES",
    "Harness",
    "SandboxError",
    "SandboxHost",
    "SandboxState",
    "default_cache_dir",
    "default_state_path",
    "ensure_base",
    "ensure_ssh_key",
    "ensure_trust_layer",
    "load_state",
    "save_state",
    "teardown",
    "teardown_host",
]
