"""The harness: boots throwaway Debian hosts with systemd in nspawn and tears all of it down."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from llmprov.sandbox import base, network, plan, system
from llmprov.sandbox.errors import SandboxError
from llmprov.sandbox.state import SandboxHost, SandboxState

STOP_TIMEOUT = 20.0
POLL_INTERVAL = 0.05


class Harness:
    """Boots sandbox hosts and owns everything they need, until `close()` removes it all.

    Nothing happens on construction; `start()` (or entering the context, or the first `boot`)
    ensures the tools, the cached base and key, and the network. Thread-safe: hosts may boot in
    parallel. `close()` runs on leaving the context, however it is left, and at interpreter exit.
    """

    def __init__(
        self,
        cache_dir: Path,
        work_dir: Path | None = None,
        *,
        egress_hosts: Sequence[str] = plan.PYPI_HOSTS,
        boot_timeout: float = 90.0,
        suite: str = plan.DEFAULT_SUITE,
        apt_dir: Path = base.APT_DIR,
        ca_dir: Path = base.LOCAL_CA_DIR,
    ) -> None:
        self.cache_dir = cache_dir
        self.harness_id = secrets.token_hex(4)
        self._requested_work_dir = work_dir
        self._egress_hosts = tuple(egress_hosts)
        self._boot_timeout = boot_timeout
        self._suite = suite
        self._apt_dir = apt_dir
        self._ca_dir = ca_dir
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._started = False
        self._closed = False
        self._state: SandboxState | None = None
        self._lowers: list[Path] = []
        self._ssh_key = Path()
        self._cgroup_mounts: dict[str, Path] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._booting: set[str] = set()
        self._reserved: set[int] = set()
        self._servers: list[subprocess.Popen[str]] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Harness:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def work_dir(self) -> Path:
        return self._require_state().work_dir

    @property
    def hosts(self) -> list[SandboxHost]:
        with self._lock:
            return list(self._require_state().hosts)

    @property
    def rules(self) -> list[plan.FirewallRule]:
        return list(self._require_state().rules)

    def start(self) -> None:
        """Make ready to boot: tools, base, trust layer, SSH key, cgroups, work dir, network."""
        with self._lock:
            if self._closed:
                raise SandboxError("this harness is closed; create a new one")
            if self._started:
                return
            system.require_root()
            system.ensure_host_tools()
            base_dir = base.ensure_base(self.cache_dir, suite=self._suite, apt_dir=self._apt_dir)
            trust = base.ensure_trust_layer(self.cache_dir, base_dir, self._ca_dir)
            self._lowers = [trust, base_dir] if trust is not None else [base_dir]
            self._ssh_key = base.ensure_ssh_key(self.cache_dir)
            _layout, self._cgroup_mounts = plan.parse_cgroup_layout(system.read_mountinfo())
            owns = self._requested_work_dir is None
            if self._requested_work_dir is None:
                runs = self.cache_dir / "runs"
                runs.mkdir(parents=True, exist_ok=True)
                work_dir = Path(tempfile.mkdtemp(prefix=f"{self.harness_id}-", dir=runs))
            else:
                work_dir = self._requested_work_dir.absolute()
                work_dir.mkdir(parents=True, exist_ok=True)
            self._state = SandboxState(self.harness_id, work_dir, owns)
            atexit.register(self.close)
            self._started = True
            try:
                mirrors = plan.uri_hosts(
                    plan.sources_for_suite(base.read_apt_sources(self._apt_dir), self._suite)
                )
                allowed = network.allowed_destinations(mirrors, self._egress_hosts)
                self._state.rules = network.setup_network(self.harness_id, allowed)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        """Stop every host and file server, remove rules and the work dir, restore ip_forward.

        Idempotent. Raises SandboxError listing what could not be undone, after trying it all.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._closing.set()
            atexit.unregister(self.close)
        # Boots in flight see the closing flag, give up and clean up after themselves.
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._booting and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        with self._lock:
            state = self._state
            procs = dict(self._procs)
        failures: list[str] = []
        _stop_servers(self._servers)
        if state is not None:
            failures += _teardown_hosts(state.hosts, procs)
            state.hosts.clear()
            failures += _collect(lambda: network.teardown_network(state.rules))
            state.rules = []
            if state.owns_work_dir:
                failures += _collect(lambda: system.remove_tree(state.work_dir))
        if failures:
            raise SandboxError("sandbox teardown incomplete: " + "; ".join(failures))

    def detach(self) -> SandboxState:
        """Leave hosts and network up and hand over their record, for `teardown` to undo later."""
        with self._lock:
            state = self._require_state()
            if self._booting:
                raise SandboxError(f"hosts still booting: {', '.join(sorted(self._booting))}")
            self._closed = True
            atexit.unregister(self.close)
        _stop_servers(self._servers)
        return state

    # --- hosts -------------------------------------------------------------------------------

    def boot(self, name: str) -> SandboxHost:
        """Boot a fresh host and return once systemd is up and sshd answers."""
        return self._boot_named(name, self._closing)

    def _boot_named(self, name: str, abort: threading.Event) -> SandboxHost:
        plan.validate_machine_name(name)
        self.start()
        with self._lock:
            state = self._require_state()
            if self._closing.is_set():
                raise SandboxError("the harness is closing")
            taken = {h.name for h in state.hosts} | self._booting
            if name in taken or system.link_exists(plan.veth_name(name)):
                raise SandboxError(
                    f"a sandbox host named {name!r} is already running "
                    f"(interface {plan.veth_name(name)} exists or this harness booted it)"
                )
            addresses = system.run(["ip", "-o", "-4", "addr", "show"]).stdout
            index = _claim_subnet(plan.used_subnet_indexes(addresses) | self._reserved)
            self._reserved.add(index)
            self._booting.add(name)
        try:
            host, proc = self._boot(name, index, state.work_dir / name, abort)
        except BaseException:
            with self._lock:
                self._reserved.discard(index)
                self._booting.discard(name)
            raise
        finally:
            # Once booted, the host's address on its veth marks the subnet as taken.
            _release_subnet(index)
        with self._lock:
            state.hosts.append(host)
            self._procs[name] = proc
            self._booting.discard(name)
        return host

    def boot_many(self, names: Sequence[str]) -> list[SandboxHost]:
        """Boot hosts in parallel; if any fails, the ones that came up are stopped again."""
        self.start()
        # Set on failure or interrupt, so boots still waiting give up instead of finishing.
        abort = _AnyEvent(self._closing)
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            futures = [pool.submit(self._boot_named, name, abort) for name in names]
            try:
                hosts = [future.result() for future in futures]
            except BaseException as exc:
                abort.set()
                for future in futures:
                    future.cancel()
                pool.shutdown(wait=True)
                for future in futures:
                    if future.done() and not future.cancelled() and future.exception() is None:
                        try:
                            self.stop(future.result())
                        except SandboxError as cleanup:
                            exc.add_note(f"stopping a host booted meanwhile failed: {cleanup}")
                raise
        with self._lock:
            state = self._require_state()
            booted = {h.name for h in hosts}
            state.hosts[:] = [h for h in state.hosts if h.name not in booted] + hosts
        return hosts

    def run(
        self,
        host: SandboxHost,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float | None = 300.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host (all its namespaces) with nsenter; output as text."""
        command = plan.nsenter_argv(host.leader, argv)
        result = subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(system.COMMAND_ENV),
            check=False,
        )
        if check and result.returncode != 0:
            raise SandboxError(
                f"{host.name}: exit {result.returncode} from {argv!r}: {result.stderr.strip()}"
            )
        return result

    def stop(self, host: SandboxHost) -> None:
        """Stop one host and remove everything it had."""
        with self._lock:
            state = self._require_state()
            state.hosts[:] = [h for h in state.hosts if h.name != host.name]
            proc = self._procs.pop(host.name, None)
        try:
            teardown_host(host, proc)
        finally:
            with self._lock:
                self._reserved.discard(host.index)

    def serve_directory(self, path: Path) -> int:
        """Serve `path` over HTTP on 0.0.0.0 until `close()`; returns the port.

        Hosts reach it at `http://{host.gateway}:{port}/`. The server (stdlib http.server, one
        thread per request) runs in a child process, not a thread of this one: pyinfra's CLI
        modules monkey-patch threading with gevent on import, which breaks imports in a process
        that has other threads running.
        """
        if not path.is_dir():
            raise SandboxError(f"cannot serve {path}: not a directory")
        self.start()
        proc = subprocess.Popen(
            [sys.executable, "-c", _FILE_SERVER, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        proc.stdout.close()
        if not line.isdigit():
            proc.kill()
            proc.wait()
            raise SandboxError(f"the file server for {path} did not start (exit {proc.poll()})")
        with self._lock:
            self._servers.append(proc)
        return int(line)

    # --- internals ---------------------------------------------------------------------------

    def _require_state(self) -> SandboxState:
        if self._state is None:
            raise SandboxError("the harness has not started; call start() or use it as a context")
        return self._state

    def _boot(
        self, name: str, index: int, host_dir: Path, abort: threading.Event
    ) -> tuple[SandboxHost, subprocess.Popen[bytes]]:
        addresses = plan.host_addresses(index)
        if host_dir.exists():
            system.remove_tree(host_dir)
        upper, work, merged = host_dir / "upper", host_dir / "work", host_dir / "merged"
        for path in (upper, work, merged):
            path.mkdir(parents=True)
        base_dir = self._lowers[-1]
        _seed(upper, base_dir, "root/.ssh/authorized_keys", base.public_key(self._ssh_key), 0o600)
        _seed(upper, base_dir, "etc/hostname", f"{name}\n", 0o644)
        _seed(upper, base_dir, "etc/hosts", plan.hosts_file(name), 0o644)
        cgroups = tuple(plan.cgroup_dirs(self._cgroup_mounts, name))
        host = SandboxHost(
            name=name,
            address=addresses.address,
            gateway=addresses.gateway,
            ssh_key=self._ssh_key,
            leader=0,
            nspawn_pid=0,
            index=index,
            host_dir=host_dir,
            cgroups=cgroups,
        )
        proc: subprocess.Popen[bytes] | None = None
        try:
            system.run(plan.overlay_mount_argv(self._lowers, upper, work, merged))
            for cgroup in cgroups:
                if cgroup.exists():
                    system.remove_cgroup(cgroup, timeout=1.0)
                cgroup.mkdir()
            procs_files = [c / "cgroup.procs" for c in cgroups]
            argv = plan.launcher_argv(procs_files, plan.nspawn_argv(merged, name))
            with host.console_log.open("wb") as console:
                # A new session, like setsid: the host outlives this process if detached.
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    env=dict(system.COMMAND_ENV),
                    start_new_session=True,
                )
            host = replace(host, nspawn_pid=proc.pid)
            deadline = time.monotonic() + self._boot_timeout
            leader = self._wait(
                lambda: _find_leader(proc.pid), deadline, host, proc, abort, "a container"
            )
            host = replace(host, leader=leader)
            veth = plan.veth_name(name)
            self._wait(lambda: system.link_exists(veth) or None, deadline, host, proc, abort, veth)
            steps = plan.network_plan(name, addresses)
            for step in steps.controller:
                system.run(step)
            for step in steps.container:
                system.run(plan.nsenter_argv(leader, step, namespaces=("-n",)))
            self._wait(lambda: self._system_ready(host), deadline, host, proc, abort, "systemd")
            self._wait(lambda: _ssh_answers(host.address), deadline, host, proc, abort, "sshd")
        except BaseException as exc:
            try:
                teardown_host(host, proc, graceful=False)
            except SandboxError as cleanup:
                exc.add_note(f"cleaning up after the failed boot failed too: {cleanup}")
            raise
        return host, proc

    def _system_ready(self, host: SandboxHost) -> bool | None:
        try:
            result = self.run(host, ["systemctl", "is-system-running"], timeout=10)
        except subprocess.TimeoutExpired:
            return None
        return True if plan.is_ready_state(result.stdout) else None

    def _wait(
        self,
        probe: Callable[[], Any],
        deadline: float,
        host: SandboxHost,
        proc: subprocess.Popen[bytes],
        abort: threading.Event,
        what: str,
    ) -> Any:
        while True:
            if abort.is_set():
                raise SandboxError(f"{host.name}: boot abandoned (harness closing or boot failed)")
            if proc.poll() is not None:
                raise SandboxError(
                    f"{host.name}: systemd-nspawn exited with {proc.returncode} while waiting "
                    f"for {what}; console log {host.console_log}:\n{_tail(host.console_log)}"
                )
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{host.name}: no {what} after {self._boot_timeout:.0f} s; "
                    f"console log {host.console_log}:\n{_tail(host.console_log)}"
                )
            time.sleep(POLL_INTERVAL)


class _AnyEvent(threading.Event):
    """An event that also counts as set while its parent is set."""

    def __init__(self, parent: threading.Event) -> None:
        super().__init__()
        self._parent = parent

    def is_set(self) -> bool:
        return super().is_set() or self._parent.is_set()


# Other processes (another test run, `llmprov sandbox up`) allocate subnets too. Between picking a
# free subnet and putting its address on the veth, a claim file here keeps them from picking it.
SUBNET_CLAIMS = Path("/run/llmprov-sandbox/subnet-claims")
CLAIM_STALE_S = 300.0


def _claim_subnet(used: set[int]) -> int:
    SUBNET_CLAIMS.mkdir(parents=True, exist_ok=True)
    taken = set(used)
    while True:
        index = plan.allocate_index(taken)
        path = SUBNET_CLAIMS / str(index)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            if _claim_is_stale(path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            taken.add(index)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return index


def _claim_is_stale(path: Path) -> bool:
    try:
        pid = int(path.read_text() or "0")
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return True
    alive = pid > 0 and Path(f"/proc/{pid}").exists()
    return not alive or age > CLAIM_STALE_S


def _release_subnet(index: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        (SUBNET_CLAIMS / str(index)).unlink()


def teardown(state: SandboxState) -> None:
    """Undo what a detached harness left: its hosts, rules, and work dir if it made it."""
    failures = _teardown_hosts(state.hosts, {})
    failures += _collect(lambda: network.teardown_network(state.rules))
    if state.owns_work_dir:
        failures += _collect(lambda: system.remove_tree(state.work_dir))
    if failures:
        raise SandboxError("sandbox teardown incomplete: " + "; ".join(failures))


def teardown_host(
    host: SandboxHost, proc: subprocess.Popen[bytes] | None = None, *, graceful: bool = True
) -> None:
    """Stop a host, then remove its link, mounts, dirs and cgroups.

    Graceful: a clean shutdown of the host's systemd first (about 0.3 s once booted; a host still
    booting may take long to honour it). Otherwise its processes are killed outright.
    """
    failures: list[str] = []
    if host.nspawn_pid and _is_our_nspawn(host):
        failures += _collect(lambda: _stop_nspawn(host, proc, graceful))
    elif proc is not None:
        proc.poll()
    # nspawn removes this itself when it exits normally; not when it had to be killed.
    propagate = plan.NSPAWN_PROPAGATE_DIR / host.name
    if propagate.exists() and not _is_our_nspawn(host):
        failures += _collect(lambda: system.remove_tree(propagate))
    veth = plan.veth_name(host.name)
    if system.link_exists(veth):
        failures += _collect(lambda: system.run(["ip", "link", "del", veth]))
    failures += _collect(lambda: system.remove_tree(host.host_dir))
    for cgroup in reversed(host.cgroups):
        failures += _collect(functools.partial(system.remove_cgroup, cgroup))
    if failures:
        raise SandboxError(f"{host.name}: " + "; ".join(failures))


def _teardown_hosts(
    hosts: Sequence[SandboxHost], procs: dict[str, subprocess.Popen[bytes]]
) -> list[str]:
    """Tear hosts down in parallel (each stop waits for systemd's shutdown inside)."""
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        results = pool.map(
            lambda h: _collect(lambda: teardown_host(h, procs.get(h.name))), list(hosts)
        )
        return [failure for result in results for failure in result]


def _stop_nspawn(host: SandboxHost, proc: subprocess.Popen[bytes] | None, graceful: bool) -> None:
    """Stop a host's nspawn without leaving its container behind.

    Graceful: SIGTERM, which nspawn turns into a clean shutdown of the host's systemd. Failing
    that, or when not graceful: SIGKILL the container's init, which ends its PID namespace, and
    nspawn cleans up (veth, locks) and exits. SIGKILL to nspawn itself comes last, as it would
    orphan a running container; so the init is looked up, and killed, again right then.
    """
    pid = host.nspawn_pid
    if graceful:
        os.kill(pid, signal.SIGTERM)
        if _wait_exit(pid, proc, STOP_TIMEOUT):
            return
    deadline = time.monotonic() + 10.0
    while not _wait_exit(pid, proc, 0):
        init = _namespace_init(pid)
        if init is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, signal.SIGKILL)
            if _wait_exit(pid, proc, 10.0):
                return
            break
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_INTERVAL)
    else:
        return
    init = _namespace_init(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
        if init is not None:
            os.kill(init, signal.SIGKILL)
    if not _wait_exit(pid, proc, 5.0):
        raise SandboxError(f"systemd-nspawn {pid} did not exit after SIGKILL")


def _namespace_init(nspawn_pid: int) -> int | None:
    """nspawn's child in a PID namespace of its own: the container's init, exec'd or not yet."""
    try:
        own_ns = os.readlink(f"/proc/{nspawn_pid}/ns/pid")
    except FileNotFoundError:
        return None
    for pid, _comm in system.children_of(nspawn_pid):
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != own_ns:
                return pid
        except FileNotFoundError:
            continue
    return None


def _wait_exit(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while system.is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def host_is_running(host: SandboxHost) -> bool:
    """Whether this host's nspawn still runs (and its PID was not reused by something else)."""
    return _is_our_nspawn(host)


def ssh_answers(address: str) -> bool:
    """Whether an SSH server greets on `address` port 22."""
    return bool(_ssh_answers(address))


def _is_our_nspawn(host: SandboxHost) -> bool:
    """Guard against PID reuse: the process must be the nspawn that runs this host's tree."""
    if not system.is_alive(host.nspawn_pid):
        return False
    cmdline = system.process_cmdline(host.nspawn_pid)
    return bool(cmdline) and "systemd-nspawn" in cmdline[0] and str(host.merged) in cmdline


def _find_leader(nspawn_pid: int) -> int | None:
    """The container's PID 1 as the controller sees it, once it has exec'd (its comm is no
    longer nspawn's), so that nsenter finds the container's own root."""
    init = _namespace_init(nspawn_pid)
    if init is None:
        return None
    stat = system.proc_stat(init)
    return init if stat is not None and stat[0] != "systemd-nspawn" else None


def _ssh_answers(address: str) -> bool | None:
    """True once something on port 22 greets like an SSH server."""
    try:
        with socket.create_connection((address, plan.SSH_PORT), timeout=1.0) as conn:
            conn.settimeout(2.0)
            return True if conn.recv(8).startswith(b"SSH-") else None
    except OSError:
        return None


def _seed(upper: Path, lower: Path, relative: str, text: str, mode: int) -> None:
    """Write a file into an overlay's upper dir, giving new parent dirs the lower layer's modes,
    since a directory in the upper layer replaces the lower one's attributes."""
    target = upper / relative
    parents = list(Path(relative).parents)[:-1]
    for parent in reversed(parents):
        made = upper / parent
        if not made.exists():
            made.mkdir()
            below = lower / parent
            if below.is_dir():
                st = below.stat()
                os.chmod(made, st.st_mode & 0o7777)
                os.chown(made, st.st_uid, st.st_gid)
    target.write_text(text)
    os.chmod(target, mode)


def _collect(action: Callable[[], object]) -> list[str]:
    try:
        action()
    except (SandboxError, OSError) as exc:
        return [str(exc)]
    return []


def _tail(path: Path, lines: int = 20) -> str:
    text = system.read_text(path)
    return "\n".join(text.splitlines()[-lines:])


def _stop_servers(servers: list[subprocess.Popen[str]]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    servers.clear()


# A threaded static file server that prints its port once listening.
_FILE_SERVER = """
import functools, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("0.0.0.0", 0), functools.partial(Quiet, directory=sys.argv[1]))
print(server.server_address[1], flush=True)
server.serve_forever()
"""
