"""llama.cpp's whole life on one real host, through the commands a user runs.

`llmprov deploy -y` (the console entry point, smoke and short throughput check on) then `llmprov
verify`; the API key refusing a request without it; a new build whose server cannot start, stopped
by the check on a spare port before any switch, the old one serving; an upgrade to a second build key (CMake flags GGML_NATIVE=OFF); a
rollback; an uninstall that keeps the model; a re-run after each that changes nothing. One host for
all of it, and one extra build at most (CI time).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmprov.cache import binary_cache_dir_name, cache_root, demo_model
from llmprov.checks.endpoint import endpoint
from llmprov.cli.main import main
from llmprov.core.config import LlamacppSettings
from llmprov.core.llamacpp_build import BuildTarget, build_key, cmake_flags, source_for
from llmprov.core.parsers import distro_id, parse_os_release
from llmprov.core.upgrade import STATE_PATH, parse_state
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.lifecycle import uninstall_host
from llmprov.deploy.runner import DeployRun, run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host, pytest.mark.engine]

ROOT = "/opt/llmprov/llamacpp"
UNIT = "llmprov-llamacpp.service"
MODEL = "/var/lib/llmprov/llamacpp/models/smollm2.gguf"
# A release tag no real build uses: its cached "build" is the stand-in below, never compiled.
BROKEN_RELEASE = "b999999"
# A release tag needs its archive's sha256 (validation); this archive is never fetched.
BROKEN_RELEASE_SHA256 = hashlib.sha256(b"no such archive").hexdigest()
BROKEN_SERVER = "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'version: 0 (broken stand-in)'; exit 0; }\nexit 1\n"


def write_inventory(path: Path, host: SandboxHost, key_file: Path, **llamacpp: Any) -> Path:
    name, data = host.inventory_entry()
    data = {
        **data,
        "engine": "llamacpp",
        "model": f"file://{demo_model(cache_root())}",
        "served_model_name": "smollm2",
        "api_key_file": str(key_file),
        "llamacpp": {"parallel": 2, "ctx_size": 2048, "threads": 2, **llamacpp},
    }
    path.write_text(f"hosts = [({name!r}, {data!r})]\n")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The `llmprov` console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "llmprov"
    assert script.exists(), f"no console script at {script}: install the package"
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=3600, env=os.environ.copy()
    )


def state(harness: Harness, host: SandboxHost) -> dict[str, Any]:
    text = harness.run(host, ["cat", STATE_PATH]).stdout
    es = parse_state(text)["llamacpp"]
    assert es.current is not None
    return {"current": es.current.key, "previous": [d.key for d in es.previous]}


def current(harness: Harness, host: SandboxHost) -> str:
    return harness.run(host, ["readlink", f"{ROOT}/current"]).stdout.strip().rsplit("/", 1)[-1]


def exists(harness: Harness, host: SandboxHost, path: str) -> bool:
    return harness.run(host, ["test", "-e", path]).returncode == 0


def quiet_rerun(run: DeployRun, name: str) -> None:
    result = run.results[name]
    assert result.ok, result
    assert [op.name for op in result.changed] == [], "a re-run must change nothing"


@pytest.fixture
def broken_build(harness: Harness, sandbox_host: SandboxHost) -> Iterator[str]:
    """A cached "build" whose llama-server runs `--version` but never serves; removed afterwards."""
    os_release = parse_os_release(
        harness.run(sandbox_host, ["cat", "/etc/os-release"]).stdout.splitlines()
    )
    settings = LlamacppSettings(
        release=BROKEN_RELEASE, release_sha256=BROKEN_RELEASE_SHA256, native=False
    )
    target = BuildTarget("x86_64", distro_id(os_release), None)
    key = build_key(source_for(settings), cmake_flags(settings, cuda=False), target)
    tarball = cache_root() / binary_cache_dir_name() / f"{key}.tar.gz"
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as tar:
        data = BROKEN_SERVER.encode()
        info = tarfile.TarInfo("./bin/llama-server")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    # The digest recorded at build time: a cached build without it is not trusted (rebuilt).
    recorded = tarball.with_name(f"{key}.tar.gz.sha256")
    recorded.write_text(f"{hashlib.sha256(tarball.read_bytes()).hexdigest()}  {tarball.name}\n")
    try:
        yield key
    finally:
        tarball.unlink(missing_ok=True)
        recorded.unlink(missing_ok=True)


def test_llamacpp_upgrade_failed_upgrade_rollback_and_uninstall(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path, broken_build: str
) -> None:
    name = sandbox_host.name
    key_file = tmp_path / "api-key"
    key_file.write_text("sk-lifecycle-test\n")
    inv_a = write_inventory(tmp_path / "a.py", sandbox_host, key_file)
    inv_b = write_inventory(tmp_path / "b.py", sandbox_host, key_file, native=False)
    inv_broken = write_inventory(
        tmp_path / "broken.py",
        sandbox_host,
        key_file,
        native=False,
        release=BROKEN_RELEASE,
        release_sha256=BROKEN_RELEASE_SHA256,
    )
    loaded_a = load_inventory(inv_a)

    # What a user runs: deploy with the smoke and short throughput check, then verify.
    results = tmp_path / "results"
    deployed = cli("deploy", str(inv_a), "-y", "--results", str(results))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "smoke check" in deployed.stdout and "throughput" in deployed.stdout
    (records,) = results.glob("*.jsonl")
    assert [json.loads(line) for line in records.read_text().splitlines()]
    verified = cli("verify", str(inv_a))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    key_a = current(harness, sandbox_host)
    assert state(harness, sandbox_host) == {"current": key_a, "previous": []}

    # The API key: refused without it, served with it.
    cfg = loaded_a.hosts[name]
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    with endpoint(cfg, loaded_a.host_data[name]) as url:
        without = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
        with_key = httpx.post(
            f"{url}/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer sk-lifecycle-test"},
            timeout=60,
        )
    assert without.status_code == 401, without.text
    assert with_key.status_code == 200, with_key.text

    # A new build whose server never starts: the spare-port check stops it, the old one serving.
    failed = run_pyinfra(load_inventory(inv_broken), deploy_host).results[name]
    assert not failed.ok
    assert "answers on a spare port" in (failed.error or ""), failed.error
    assert current(harness, sandbox_host) == key_a
    assert state(harness, sandbox_host) == {"current": key_a, "previous": []}
    assert main(["check", str(inv_a)]) == 0

    # An upgrade to a second build key: the broken stand-in is pruned, the first build kept.
    loaded_b = load_inventory(inv_b)
    upgraded = run_pyinfra(loaded_b, deploy_host).results[name]
    assert upgraded.ok, upgraded
    key_b = current(harness, sandbox_host)
    assert key_b != key_a
    assert state(harness, sandbox_host) == {"current": key_b, "previous": [key_a]}
    assert not exists(harness, sandbox_host, f"{ROOT}/{broken_build}")
    assert exists(harness, sandbox_host, f"{ROOT}/{key_a}")
    assert main(["check", str(inv_b)]) == 0
    quiet_rerun(run_pyinfra(loaded_b, deploy_host), name)

    # Rollback: the first build serves again, proved by the smoke check; the record swaps.
    assert main(["rollback", str(inv_b), "-y"]) == 0
    assert current(harness, sandbox_host) == key_a
    assert state(harness, sandbox_host) == {"current": key_a, "previous": [key_b]}
    quiet_rerun(run_pyinfra(loaded_a, deploy_host), name)

    # Uninstall keeps the model and removes the rest; a second uninstall changes nothing.
    assert main(["uninstall", str(inv_a), "-y"]) == 0
    for gone in (ROOT, f"/etc/systemd/system/{UNIT}", "/etc/llmprov/llamacpp.env", STATE_PATH):
        assert not exists(harness, sandbox_host, gone), gone
    assert exists(harness, sandbox_host, MODEL)
    active = harness.run(sandbox_host, ["systemctl", "is-active", UNIT]).stdout.strip()
    assert active != "active"
    quiet_rerun(run_pyinfra(loaded_a, uninstall_host), name)
