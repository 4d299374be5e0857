"""Models in another format than the engine's, deployed to real sandbox hosts.

llama.cpp given a Hugging Face folder: the deploy converts it to GGUF on the controller (llama.cpp's
converter at the pinned release) and uploads the file, which lands whole and owned by the service
user; the server answers, and a re-run changes nothing. Ollama given a GGUF: the deploy stages it
on the host and imports it through Ollama's API (the stand-in's, which checks the blob digest).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from standins.ollama_archive import build_release

from llmprov.cache import cache_root, demo_model
from llmprov.checks.after_deploy import prove
from llmprov.deploy.engines import deploy_host
from llmprov.deploy.runner import run_pyinfra
from llmprov.inventory import load_inventory
from llmprov.sandbox import Harness, SandboxHost

pytestmark = pytest.mark.host

MODELS = "/var/lib/llmprov/llamacpp/models"
_HAVE_CONVERT = all(
    importlib.util.find_spec(m) for m in ("torch", "transformers", "gguf", "sentencepiece")
)


def write_inventory(path: Path, host: SandboxHost, **data: Any) -> Path:
    name, base = host.inventory_entry()
    path.write_text(f"hosts = [({name!r}, {json.dumps({**base, **data})})]\n")
    return path


def on_host(harness: Harness, host: SandboxHost, *argv: str) -> str:
    return harness.run(host, list(argv), check=True, timeout=60).stdout.strip()


@pytest.mark.engine
@pytest.mark.skipif(not _HAVE_CONVERT, reason="needs the convert extra (and sentencepiece)")
def test_llamacpp_serves_an_hf_folder_converted_on_the_controller(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path
) -> None:
    from llmprov.convert.gguf_hf import cached_hf

    folder = cached_hf(demo_model(cache_root()), cache_root()).folder
    inventory = write_inventory(
        tmp_path / "inv.py",
        sandbox_host,
        engine="llamacpp",
        model=f"file://{folder}",
        served_model_name="smollm2",
        llamacpp={"parallel": 2, "ctx_size": 2048, "threads": 2},
    )
    loaded = load_inventory(inventory)
    first = run_pyinfra(loaded, deploy_host).results[sandbox_host.name]
    assert first.ok, first
    names = [op.name for op in first.changed]
    assert any(n.startswith("Upload model ") and "converted on the controller" in n for n in names)
    assert any(n.startswith("Move model ") and n.endswith("MB)") for n in names), names
    listing = on_host(harness, sandbox_host, "ls", "-A", MODELS)
    # The file landed whole (no partial beside it), with the digest record a re-run reads.
    assert listing.split() == ["smollm2.gguf", "smollm2.gguf.llmprov.json"], listing
    assert on_host(harness, sandbox_host, "head", "-c", "4", f"{MODELS}/smollm2.gguf") == "GGUF"
    owner = on_host(harness, sandbox_host, "stat", "-c", "%U %a", f"{MODELS}/smollm2.gguf")
    assert owner == "llamacpp 640"

    cfg = loaded.hosts[sandbox_host.name]
    proof = prove(cfg, loaded.host_data[sandbox_host.name], run_bench=False, ready_timeout_s=60)
    assert proof.smoke is not None and proof.smoke.ok, proof.smoke

    second = run_pyinfra(loaded, deploy_host).results[sandbox_host.name]
    assert second.ok, second
    assert [op.name for op in second.changed] == [], "a re-run must change nothing"


def test_ollama_imports_a_gguf_through_its_api(
    harness: Harness, sandbox_host: SandboxHost, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    build_release(mirror, "0.12.6", formats=("tgz",))
    url = f"http://{sandbox_host.gateway}:{harness.serve_directory(mirror)}"
    gguf = demo_model(cache_root())
    inventory = write_inventory(
        tmp_path / "inv.py",
        sandbox_host,
        engine="ollama",
        model=f"file://{gguf}",
        served_model_name="smollm2:135m",
        mirror={"ollama_base_url": url},
        ollama={"version": "0.12.6"},
    )
    loaded = load_inventory(inventory)
    first = run_pyinfra(loaded, deploy_host).results[sandbox_host.name]
    assert first.ok, first
    names = [op.name for op in first.changed]
    assert "Import smollm2:135m into Ollama through its API (blob upload, create)" in names

    code = (
        "import json, urllib.request; print(json.dumps(json.load(urllib.request.urlopen("
        "'http://127.0.0.1:11434/api/tags', timeout=5))))"
    )
    models = json.loads(on_host(harness, sandbox_host, "python3", "-c", code))["models"]
    assert [m["name"] for m in models] == ["smollm2:135m"]
    blobs = on_host(harness, sandbox_host, "ls", "/usr/share/ollama/.ollama/models/blobs")
    assert len(blobs.split()) == 1, "the GGUF went in as one blob"
    staged = on_host(harness, sandbox_host, "ls", "-A", "/var/cache/llmprov/ollama/import")
    assert staged.split() == ["smollm2_135m.source"], "the staged copy is removed"

    second = run_pyinfra(loaded, deploy_host).results[sandbox_host.name]
    assert second.ok, second
    assert [op.name for op in second.changed] == [], "a re-run must change nothing"
