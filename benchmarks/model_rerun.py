"""Re-run cost against model size: placing a 100 MB and a 4 GB model file on a sandbox host, again.

Each size is one sparse file on the controller and the same bytes on the host (made there with
`truncate`, so that no 4 GB upload is timed). Three kinds of run with nothing to change:
  unrecorded  the host's file has no digest record yet (what every re-run cost before records):
              the host hashes the whole file, then the record is written;
  recorded    the record beside the file vouches for it: one stat, no hashing;
  verify      `--verify-models`: hashed again on the host, whatever the record says.
Only the model step runs (service user, model folder, model), so that nothing else is timed.
Needs root and the sandbox harness.

    .venv/bin/python benchmarks/model_rerun.py [--rounds 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pyinfra.operations import files, server

from llmprov.core.config import HostConfig
from llmprov.core.layout import model_path
from llmprov.deploy import controller_digest
from llmprov.deploy.models import place_model, verifying
from llmprov.deploy.runner import DeployRun, run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost, default_cache_dir

SCHEMA_VERSION = 1
SIZES = {"100 MB": 100 * 10**6, "4 GB": 4 * 2**30}
QUICK_SIZES = {"1 MB": 10**6, "64 MB": 64 * 2**20}


def model_only(cfg: HostConfig) -> None:
    """The model step of a deploy, and what it needs on a fresh host; nothing else."""
    server.user(name="Service user", user=cfg.service_user, system=True, ensure_home=False)
    files.directory(
        name="Model folder",
        path=str(Path(model_path(cfg)).parent),
        user=cfg.service_user,
        group=cfg.service_user,
    )
    place_model(cfg)


def inventory(path: Path, host: SandboxHost, model: Path, name: str) -> Path:
    entry, data = host.inventory_entry()
    data.update(engine="llamacpp", model=f"file://{model}", served_model_name=name)
    path.write_text(f"hosts = {[(entry, data)]!r}\n")
    return path


def timed(path: Path, verify: bool = False) -> tuple[float, int]:
    # Each run as a new process would start: only the digest cache on disk is remembered.
    controller_digest._memo.clear()
    loaded = load_inventory(path)
    if verify:
        loaded.hosts.update({n: verifying(c) for n, c in loaded.hosts.items()})
    t0 = time.monotonic()
    run: DeployRun = run_pyinfra(loaded, model_only)
    elapsed = time.monotonic() - t0
    bad = {h: r.error for h, r in run.results.items() if not r.ok}
    if bad:
        raise SystemExit(f"deploy failed: {bad}")
    return elapsed, sum(len(r.changed) for r in run.results.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="recorded re-runs per size")
    parser.add_argument("--quick", action="store_true", help="small files, one round")
    parser.add_argument("--json", action="store_true", help="also print one JSON record")
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else SIZES
    rounds = 1 if args.quick else args.rounds
    pid = f"{os.getpid():x}"
    figures: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Harness(default_cache_dir(os.environ, Path.home())) as harness,
    ):
        (host,) = harness.boot_many([f"m{pid}"])
        for i, (label, size) in enumerate(sizes.items()):
            local = Path(tmp) / f"model-{i}.gguf"
            with local.open("wb") as f:
                f.truncate(size)
            inv = inventory(Path(tmp) / f"inv{i}.py", host, local, f"m{i}")
            dest = f"/var/lib/llmprov/llamacpp/models/m{i}.gguf"
            # The same bytes on the host, made there: a 4 GB upload is not what is measured.
            harness.run(host, ["mkdir", "-p", str(Path(dest).parent)], check=True)
            harness.run(host, ["truncate", "-s", str(size), dest], check=True)
            t0 = time.monotonic()
            controller_digest.sha256(local)  # once per file version, timed apart
            hash_s = time.monotonic() - t0
            unrecorded_s, _ = timed(inv)
            recorded = []
            for _ in range(rounds):
                s, changes = timed(inv)
                assert changes == 0, f"{label}: a recorded re-run changes nothing"
                recorded.append(s)
            verify_s, changes = timed(inv, verify=True)
            assert changes == 0
            figures[label] = {
                "bytes": size,
                "controller_first_hash_s": hash_s,
                "unrecorded_rerun_s": unrecorded_s,
                "recorded_rerun_s": statistics.median(recorded),
                "verify_rerun_s": verify_s,
            }
            print(
                f"{label}: controller's first hash {hash_s:.2f} s; re-run without a record (hashes on the host) {unrecorded_s:.2f} s; "
                f"recorded {statistics.median(recorded):.2f} s median of {rounds}; "
                f"--verify-models {verify_s:.2f} s",
                flush=True,
            )
    small, large = (figures[label]["recorded_rerun_s"] for label in sizes)
    names = list(sizes)
    print(f"recorded re-run, {names[1]} / {names[0]}: {large / small:.2f}x")
    if args.json:
        record = {
            "schema_version": SCHEMA_VERSION,
            "benchmark": "model_rerun",
            "cpus": os.cpu_count(),
            "rounds": rounds,
            "sizes": figures,
            "recorded_ratio": large / small,
        }
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
