"""Running the deploys of a validated inventory through pyinfra's API: connect, plan, then execute."""

from __future__ import annotations

import errno
import importlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.api.operations import run_ops
from pyinfra.api.state import BaseStateCallback, State
from pyinfra.context import ctx_host, ctx_state

from llmprov.core.config import HostConfig
from llmprov.core.unreachable import connect_address, unreachable_line, unreachable_reason
from llmprov.deploy.prepare import prepare_hosts
from llmprov.inventory import LoadedInventory, load_pyinfra_inventory


class DeployFailed(Exception):
    """The deploy could not run at all (no host reachable, for example)."""


@dataclass(frozen=True)
class OpResult:
    """One operation on one host after the run: pyinfra's own outcome, not log text."""

    name: str
    changed: bool
    success: bool
    planned_change: bool


@dataclass
class HostResult:
    host: str
    connected: bool
    ops: list[OpResult] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    # `h1: unreachable: connection refused on 10.0.0.5:22` when the host could not be reached.
    unreachable: str | None = None

    @property
    def ok(self) -> bool:
        return self.connected and self.error is None and all(op.success for op in self.ops)

    @property
    def changed(self) -> list[OpResult]:
        return [op for op in self.ops if op.changed]

    @property
    def planned(self) -> list[OpResult]:
        return [op for op in self.ops if op.planned_change]


@dataclass
class DeployRun:
    results: dict[str, HostResult]
    dry: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())

    @property
    def unreachable(self) -> list[str]:
        return [r.unreachable for r in self.results.values() if r.unreachable]


DeployFunc = Callable[[HostConfig], None]


class Progress(Protocol):
    """Told when each host starts and ends each operation, and each line its commands print, for
    a live view of a long deploy (a build's current step, a download's bytes)."""

    def start(self, host: str, operation: str) -> None: ...

    def end(self, host: str, operation: str, ok: bool) -> None: ...

    def output(self, host: str, line: str) -> None: ...


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# pyinfra prints a command's output line as `[host] line` (host.print_prefix, padded).
_PREFIXED = re.compile(r"^\[(?P<host>[^\]]+)\]\s?(?:nested\s+)?(?P<line>.*)$", re.DOTALL)


def split_prefixed(text: str) -> tuple[str, str] | None:
    """(host, line) from a line pyinfra prints with a host prefix, or None for any other text."""
    m = _PREFIXED.match(_ANSI.sub("", text))
    return (m["host"], m["line"].strip()) if m else None


def set_verbosity(verbose: int) -> None:
    """0: pyinfra's errors only (no host-key notices); 1: its info log; 2: its debug log."""
    from pyinfra import logger

    # paramiko logs a failed handshake as well as raising it; the raise becomes our one line.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1 if verbose <= 0 else logging.NOTSET)
    if verbose <= 0:
        # Python's last-resort handler prints pyinfra's warnings, such as "No host key for X found
        # in known_hosts" on every first connection; its errors (a failed fact) still show.
        logger.setLevel(logging.ERROR)
        return
    from pyinfra_cli.log import setup_logging

    if not any(type(h).__name__ == "LogHandler" for h in logger.handlers):
        setup_logging(logging.DEBUG if verbose >= 2 else logging.INFO)
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)


def _op_name(state: State, op_hash: str) -> str:
    names = state.get_op_meta(op_hash).names
    return ", ".join(sorted(names)) if names else op_hash


def _op_results(state: State, host: Any, executed: bool) -> list[OpResult]:
    out: list[OpResult] = []
    for op_hash in state.get_op_order():
        op_data = state.ops[host].get(op_hash)
        if op_data is None:
            continue
        meta = op_data.operation_meta
        name = _op_name(state, op_hash)
        if executed and meta.is_complete():
            out.append(OpResult(name, meta.did_change(), meta.did_succeed(), meta.will_change))
        elif executed:
            # Not run because an earlier operation failed on this host.
            out.append(OpResult(name, False, False, meta.will_change))
        else:
            out.append(OpResult(name, False, True, meta.will_change))
    return out


def _errnos(error: BaseException) -> list[int | None]:
    """Socket errnos behind a connector's error: paramiko keeps one per address it tried."""
    found: list[int | None] = []
    seen: BaseException | None = error
    while seen is not None and len(found) < 8:
        per_address = getattr(seen, "errors", None)
        if isinstance(per_address, dict):
            found += [getattr(e, "errno", None) for e in per_address.values()]
        found.append(getattr(seen, "errno", None))
        if isinstance(seen, TimeoutError):
            found.append(errno.ETIMEDOUT)
        seen = seen.__cause__ or seen.__context__
    return found


def _callbacks(session: PyinfraSession) -> BaseStateCallback:
    """pyinfra's state callbacks: why a host failed to connect, and per-operation progress.

    pyinfra calls them as static methods, so the session is reached through this closure.
    """

    def progress() -> Progress | None:
        return session.progress

    class Callbacks(BaseStateCallback):
        @staticmethod
        def host_connect_error(state: State, host: Host, error: Any) -> None:
            text = str(error.args[0]) if error.args else str(error)
            session.connect_errors[host.name] = unreachable_reason(text, _errnos(error))

        @staticmethod
        def operation_host_start(state: State, host: Host, op_hash: Any) -> None:
            if (p := progress()) is not None:
                p.start(host.name, _op_name(state, op_hash))

        @staticmethod
        def operation_host_success(
            state: State, host: Host, op_hash: Any, retry_count: int = 0
        ) -> None:
            if (p := progress()) is not None:
                p.end(host.name, _op_name(state, op_hash), True)

        @staticmethod
        def operation_host_error(
            state: State, host: Host, op_hash: Any, retry_count: int = 0, max_retries: int = 0
        ) -> None:
            if (p := progress()) is not None:
                p.end(host.name, _op_name(state, op_hash), False)

    return Callbacks()


class PyinfraSession:
    """One deploy through pyinfra: connect every selected host, plan each host's operations
    (facts gathered, nothing changed), then, once the caller has shown the plan, execute it."""

    def __init__(
        self,
        loaded: LoadedInventory,
        deploy: DeployFunc,
        parallel: int | None = None,
        progress: Progress | None = None,
        verbose: int = 0,
    ) -> None:
        set_verbosity(verbose)
        self.loaded = loaded
        self.deploy = deploy
        self.progress = progress
        self.connect_errors: dict[str, str] = {}
        self.started = time.monotonic()
        # pyinfra hosts keep per-run state (operation order, facts): each run gets a fresh inventory.
        inventory = load_pyinfra_inventory(loaded.path)
        self.hosts = [h for h in inventory if h.name in loaded.hosts]
        config = Config(PARALLEL=parallel or max(len(self.hosts), 1))
        self.state = State(check_for_changes=True)
        self.state.init(inventory, config, initial_limit=self.hosts)
        if verbose >= 2:
            self.state.print_input = self.state.print_output = True
        self.state.add_callback_handler(_callbacks(self))
        self.verbose = verbose
        self.results = {h.name: HostResult(h.name, connected=False) for h in self.hosts}
        self.connected: list[Any] = []
        self.executed = False

    # ------------------------------------------------------------------ phases

    def connect(self) -> list[str]:
        """Connect to every host; return one `unreachable` line per host that failed."""
        from pyinfra import logger

        level = logger.level
        if level >= logging.ERROR:
            # Each failure becomes one `unreachable` line below, not pyinfra's log line as well.
            logger.setLevel(logging.CRITICAL + 1)
        try:
            # pyinfra raises when every host failed: each one's reason is recorded below.
            with ctx_state.use(self.state), suppress(PyinfraError):
                connect_all(self.state)
        finally:
            logger.setLevel(level)
        self.connected = [h for h in self.hosts if h in self.state.active_hosts]
        lines: list[str] = []
        for h in self.hosts:
            r = self.results[h.name]
            r.connected = h in self.connected
            if not r.connected:
                reason = self.connect_errors.get(h.name, "could not connect")
                address = connect_address(h.name, self.loaded.host_data.get(h.name, {}))
                r.unreachable = unreachable_line(h.name, reason, address)
                r.error = f"unreachable: {reason}"
                lines.append(r.unreachable)
        return lines

    def plan(self) -> DeployRun:
        """Add each connected host's deploy; pyinfra gathers facts and plans, changing nothing."""

        def per_host() -> None:
            from pyinfra.context import host

            try:
                self.deploy(self.loaded.hosts[host.name])
            except Exception as exc:
                # A host whose operations cannot be planned runs none of them; the others go on.
                why = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, PyinfraError) and "No hosts remaining" in str(exc):
                    # pyinfra failed the host on a fact and logged which one, above.
                    why = "a fact could not be read (pyinfra's error above)"
                self.results[host.name].error = why
                self.state.failed_hosts.add(host)
                self.state.active_hosts.discard(host)

        if self.connected:
            prepare_hosts(self.state, per_host)
        return self._collect(executed=False)

    def execute(self) -> DeployRun:
        """Run the planned operations on the hosts still active."""
        self.executed = True
        if self.state.active_hosts:
            try:
                with self._streaming_output():
                    run_ops(self.state)
            except PyinfraError as exc:
                # pyinfra stops once no host is left; each failed host's results are collected below.
                if "No hosts remaining" not in str(exc):
                    raise
        return self._collect(executed=True)

    def _streaming_output(self) -> AbstractContextManager[None]:
        """Each line an operation's commands print goes to progress.output, not the terminal.

        pyinfra prints command output through `echo` in pyinfra.connectors.util when the state
        asks for it; that one name is swapped for the run. With -vv pyinfra prints it itself.
        """
        progress = self.progress
        if progress is None or self.verbose >= 2:
            return nullcontext()
        return _routed_output(self.state, progress)

    def close(self) -> None:
        with ctx_state.use(self.state):
            disconnect_all(self.state)

    @contextmanager
    def on_host(self, name: str) -> Iterator[Any]:
        """pyinfra's context for reading a connected host's facts outside an operation."""
        host = next(h for h in self.connected if h.name == name)
        with ctx_state.use(self.state), ctx_host.use(host):
            yield host

    def file_contents(self, name: str, path: str) -> list[str] | None:
        """A file's current lines on a connected host, or None when it does not exist."""
        from pyinfra.facts.files import FileContents

        with self.on_host(name) as host:
            lines: list[str] | None = host.get_fact(FileContents, path=path)
        return lines

    def _collect(self, executed: bool) -> DeployRun:
        for h in self.connected:
            r = self.results[h.name]
            r.ops = _op_results(self.state, h, executed=executed)
            if executed and h in self.state.failed_hosts and r.error is None:
                failed = [op.name for op in r.ops if not op.success]
                r.error = f"failed at: {failed[0]}" if failed else "failed"
            r.seconds = time.monotonic() - self.started
        return DeployRun(
            results=self.results, dry=not executed, seconds=time.monotonic() - self.started
        )


@contextmanager
def _routed_output(state: State, progress: Progress) -> Iterator[None]:
    # The module pyinfra prints command output from; its `echo` is not part of its typed API.
    connector_util: Any = importlib.import_module("pyinfra.connectors.util")
    original = connector_util.echo

    def echo(message: Any = None, **kwargs: Any) -> None:
        found = split_prefixed(str(message))
        if found is None:
            original(message, **kwargs)
        else:
            progress.output(*found)

    state.print_output = True
    connector_util.echo = echo
    try:
        yield
    finally:
        connector_util.echo = original
        state.print_output = False


def run_pyinfra(
    loaded: LoadedInventory,
    deploy: DeployFunc,
    dry: bool = False,
    parallel: int | None = None,
) -> DeployRun:
    """Connect, plan and (unless dry) execute in one go; raise DeployFailed when no host answers."""
    session = PyinfraSession(loaded, deploy, parallel=parallel)
    try:
        unreachable = session.connect()
        if not session.connected:
            raise DeployFailed("no host could be reached:\n" + "\n".join(unreachable))
        run = session.plan()
        return run if dry else session.execute()
    finally:
        session.close()
