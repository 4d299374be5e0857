"""Deploy timings on real sandbox hosts: a first deploy from the cached llama.cpp build, a re-run with
nothing to change on one host, and the same on four hosts at once.

Needs root and a cached llama.cpp build (run the host tests, or one deploy, first; otherwise the first
deploy builds it, which takes minutes).

    .venv/bin/python benchmarks/deploy_rerun.py [--hosts 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from llmprov.cache import cache_root, demo_model
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import DeployRun, run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost, default_cache_dir


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


def timed(path: Path) -> tuple[float, DeployRun]:
    loaded = load_inventory(path)
    t0 = time.monotonic()
    run = run_pyinfra(loaded, deploy_host)
    elapsed = time.monotonic() - t0
    bad = [r for r in run.results.values() if not r.ok]
    if bad:
        raise SystemExit(f"deploy failed: {bad}")
    return elapsed, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4)
    args = parser.parse_args()
    model = demo_model(cache_root())
    pid = f"{os.getpid():x}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        Harness(default_cache_dir(os.environ, Path.home())) as harness,
    ):
        one = harness.boot_many([f"d{pid}-0"])
        inv1 = inventory(Path(tmp) / "one.py", one, model)
        first, _ = timed(inv1)
        print(f"first deploy, 1 host (cached build, model upload, start): {first:.1f} s")
        rerun1, run = timed(inv1)
        changed = sum(len(r.changed) for r in run.results.values())
        print(
            f"re-run with nothing to change, 1 host: {rerun1:.1f} s ({changed} operations changed)"
        )

        many = harness.boot_many([f"d{pid}-{i}" for i in range(1, args.hosts + 1)])
        inv_n = inventory(Path(tmp) / "many.py", many, model)
        first_n, _ = timed(inv_n)
        print(
            f"first deploy, {args.hosts} hosts in parallel: {first_n:.1f} s ({first_n / first:.2f}x one host)"
        )
        rerun_n, run = timed(inv_n)
        changed = sum(len(r.changed) for r in run.results.values())
        print(
            f"re-run, {args.hosts} hosts in parallel: {rerun_n:.1f} s "
            f"({rerun_n / rerun1:.2f}x one host; {changed} operations changed)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
