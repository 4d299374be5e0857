"""Deploy timings against host count: a first deploy from the cached llama.cpp build and a re-run with
nothing to change, on N = 1, 4, 8, 16 sandbox hosts at once, with each figure's ratio to one host.

Each N gets fresh hosts (booted together, stopped after). Needs root and a cached llama.cpp build
(run the host tests, or one deploy, first; otherwise the first deploy builds it, for minutes).
`--profile FILE` writes cProfile stats of the largest N's no-op re-run (the controller's side:
fact gathering, SSH round trips, planning) and prints where its time went.

Each no-op figure comes with the commands each host ran (one SSH round trip each), the controller's
CPU time and the hosts' CPU time (every process in each host's PID namespace, reaped children
included: sshd, shells, the snapshot's commands), and how many of the machine's cores they kept busy
on average: where that nears the core count, the re-run is bound by the shared CPU.

    .venv/bin/python benchmarks/deploy_rerun.py [--hosts 1,4,8,16] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any
from unittest import mock

from pyinfra.api.deploy import add_deploy
from pyinfra.api.host import Host

from llmprov.cache import cache_root, demo_model
from llmprov.deploy import runner
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import DeployRun, run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost, default_cache_dir

SCHEMA_VERSION = 2


def inventory(path: Path, hosts: list[SandboxHost], model: Path) -> Path:
    entries = []
    for h in hosts:
        name, data = h.inventory_entry()
        data.update(
            engine="llamacpp",
            model=f"file://{model}",
            served_model_name="smollm2",
            llamacpp={"parallel": 2, "ctx_size": 2048, "threads": 2},
        )
        entries.append((name, data))
    path.write_text(f"hosts = {entries!r}\n")
    return path


def host_cpu_s(hosts: list[SandboxHost]) -> float:
    """CPU seconds used so far by the processes of these hosts (each host's PID namespace), their
    reaped children included; a process that exits between two readings loses its share, so this
    reads low rather than high."""
    namespaces = set()
    for h in hosts:
        with suppress(OSError):
            namespaces.add(os.readlink(f"/proc/{h.leader}/ns/pid"))
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            if os.readlink(f"/proc/{entry.name}/ns/pid") not in namespaces:
                continue
            text = Path(f"/proc/{entry.name}/stat").read_text()
            fields = text.rpartition(")")[2].split()
            # utime, stime, cutime, cstime: fields 14-17 of proc(5), 12-15 after "pid (comm)".
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class RoundTrips:
    """Counts the commands each host runs (facts and operations alike): one SSH round trip each."""

    def __init__(self) -> None:
        self.per_host: Counter[str] = Counter()
        self._real = Host.run_shell_command

    def __enter__(self) -> RoundTrips:
        real, counts = self._real, self.per_host

        def counted(host: Host, *args: Any, **kwargs: Any) -> Any:
            counts[host.name] += 1
            return real(host, *args, **kwargs)

        Host.run_shell_command = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Host.run_shell_command = self._real  # type: ignore[method-assign]


def timed(path: Path, profile: cProfile.Profile | None = None) -> tuple[float, DeployRun]:
    loaded = load_inventory(path)
    t0 = time.monotonic()
    if profile is not None:
        profile.enable()
    try:
        run = run_pyinfra(loaded, deploy_host)
    finally:
        if profile is not None:
            profile.disable()
    elapsed = time.monotonic() - t0
    bad = {h: r.error for h, r in run.results.items() if not r.ok}
    if bad:
        raise SystemExit(f"deploy failed: {bad}")
    return elapsed, run


def top(profile: cProfile.Profile, lines: int = 25) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hosts", default="1,4,8,16", help="host counts (default 1,4,8,16)")
    parser.add_argument("--rounds", type=int, default=2, help="no-op re-runs per count (2)")
    parser.add_argument("--quick", action="store_true", help="1 and 2 hosts, one re-run")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="cProfile the largest re-run")
    parser.add_argument("--json", action="store_true", help="also print one JSON record")
    parser.add_argument(
        "--compare-serial",
        action="store_true",
        help="also time one no-op re-run planned host after host (pyinfra's add_deploy), as before",
    )
    args = parser.parse_args()
    counts = [1, 2] if args.quick else [int(n) for n in args.hosts.split(",")]
    rounds = 1 if args.quick else args.rounds
    model = demo_model(cache_root())
    pid = f"{os.getpid():x}"
    figures: dict[int, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Harness(default_cache_dir(os.environ, Path.home())) as harness,
    ):
        for n in counts:
            t0 = time.monotonic()
            hosts = harness.boot_many([f"d{pid}-{n}-{i}" for i in range(n)])
            boot_s = time.monotonic() - t0
            inv = inventory(Path(tmp) / f"inv{n}.py", hosts, model)
            fresh, _ = timed(inv)
            reruns = []
            cpu: list[tuple[float, float] | None] = []  # (controller, hosts) per re-run
            changed = 0
            trips = RoundTrips()
            for r in range(rounds):
                profile = (
                    cProfile.Profile() if args.profile and n == max(counts) and r == 0 else None
                )
                c0, h0 = time.process_time(), host_cpu_s(hosts)
                with trips:
                    s, run = timed(inv, profile)
                used = (time.process_time() - c0, host_cpu_s(hosts) - h0)
                cpu.append(used if profile is None else None)
                reruns.append(s)
                changed += sum(len(res.changed) for res in run.results.values())
                if profile is not None:
                    profile.dump_stats(str(args.profile))
                    print(top(profile), flush=True)
            noop = min(reruns)
            # The CPU of the fastest re-run that was not profiled (a profile slows the controller).
            timed_cpu = [(s, c) for s, c in zip(reruns, cpu, strict=True) if c is not None]
            controller_cpu, hosts_cpu = min(timed_cpu)[1] if timed_cpu else (0.0, 0.0)
            per_host = max(trips.per_host.values(), default=0) // rounds
            serial = None
            if args.compare_serial:
                with mock.patch.object(runner, "prepare_hosts", add_deploy):
                    serial, _ = timed(inv)
            figures[n] = {
                "boot_s": boot_s,
                "fresh_s": fresh,
                "noop_s": noop,
                "noop_runs": reruns,
                "round_trips_per_host": per_host,
                "noop_serial_plan_s": serial,
                "noop_controller_cpu_s": controller_cpu,
                "noop_hosts_cpu_s": hosts_cpu,
            }
            one = figures[counts[0]]
            print(
                f"{n:>3} hosts: booted in {boot_s:.1f} s; fresh deploy {fresh:.1f} s "
                f"({fresh / one['fresh_s']:.2f}x one host); no-op re-run {noop:.1f} s "
                f"({noop / one['noop_s']:.2f}x one host; {changed} operations changed; "
                f"{per_host} commands per host; CPU: controller {controller_cpu:.2f} s, "
                f"hosts {hosts_cpu:.2f} s, {(controller_cpu + hosts_cpu) / noop:.2f} of "
                f"{os.cpu_count()} cores busy)"
                + (f"; planned host after host: {serial:.1f} s" if serial is not None else ""),
                flush=True,
            )
            for h in hosts:
                harness.stop(h)
    if args.json:
        record = {
            "schema_version": SCHEMA_VERSION,
            "benchmark": "deploy_rerun",
            "cpus": os.cpu_count(),
            "hosts": {str(n): f for n, f in figures.items()},
        }
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
