"""How fast the sandbox harness gives hosts: one fresh host to SSH, and several booted in parallel.

Needs root. The first run also builds the Debian base (about 1-2 min), reported apart.

    .venv/bin/python benchmarks/hosts.py [--repeat 3] [--parallel 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from llmprov.sandbox import Harness, default_cache_dir

SCHEMA_VERSION = 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh single-host boots to time")
    parser.add_argument("--parallel", type=int, default=4, help="hosts booted at once")
    parser.add_argument("--json", action="store_true", help="also print one JSON record")
    parser.add_argument("--quick", action="store_true", help="one boot, two in parallel")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.parallel = 1, 2

    cache_dir = default_cache_dir(os.environ, Path.home())
    pid = f"{os.getpid():x}"
    started = time.monotonic()
    with Harness(cache_dir) as harness:
        setup_s = time.monotonic() - started
        print(f"harness ready (base, key, network): {setup_s:.2f} s")

        single: list[float] = []
        stops: list[float] = []
        for i in range(args.repeat):
            t0 = time.monotonic()
            host = harness.boot(f"b{pid}-{i}")
            single.append(time.monotonic() - t0)
            t0 = time.monotonic()
            harness.stop(host)
            stops.append(time.monotonic() - t0)
        runs = ", ".join(f"{s:.2f}" for s in single)
        print(f"fresh host ready (boot to SSH): {statistics.median(single):.2f} s median ({runs})")
        print(f"host stop and cleanup: {statistics.median(stops):.2f} s median")

        names = [f"p{pid}-{i}" for i in range(args.parallel)]
        t0 = time.monotonic()
        hosts = harness.boot_many(names)
        parallel_s = time.monotonic() - t0
        print(f"{args.parallel} hosts booted in parallel: {parallel_s:.2f} s")
        t0 = time.monotonic()
    close_s = time.monotonic() - t0
    print(f"teardown of {len(hosts)} hosts and the network: {close_s:.2f} s")

    if args.json:
        record = {
            "schema_version": SCHEMA_VERSION,
            "benchmark": "sandbox_hosts",
            "cpus": os.cpu_count(),
            "harness_setup_s": round(setup_s, 3),
            "single_boot_s": [round(s, 3) for s in single],
            "stop_s": [round(s, 3) for s in stops],
            "parallel_hosts": args.parallel,
            "parallel_boot_s": round(parallel_s, 3),
            "teardown_s": round(close_s, 3),
        }
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
