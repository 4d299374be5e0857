"""Every rendered compose.yaml is valid Compose and follows llmprov's rules for containers.

Validity is checked against the compose-spec JSON schema that check-jsonschema vendors
(`--builtin-schema vendor.compose-spec`), through its command line, which is its stable interface.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    # Only for annotations: at run time `conftest` may name another folder's conftest module.
    from conftest import RenderedHost


def _check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _compose_hosts(rendered_hosts: list[RenderedHost]) -> list[tuple[RenderedHost, dict[str, Any]]]:
    out = []
    for host in rendered_hosts:
        for f in host.files:
            if f.path.endswith("/compose.yaml"):
                out.append((host, yaml.safe_load(f.content)))
    return out


def _service(doc: dict[str, Any]) -> dict[str, Any]:
    services = doc["services"]
    assert len(services) == 1, "one engine per compose project"
    return next(iter(services.values()))


def _expected_gpus(host: RenderedHost) -> int:
    gpu = host.cfg.settings.gpu
    return gpu.count if gpu.vendor in ("nvidia", "jetson") else 0


def test_cases_render_compose_files_for_every_engine_with_and_without_gpus(
    rendered_hosts: list[RenderedHost],
) -> None:
    # The checks below loop over these files; an empty loop would pass without checking anything.
    seen = {(h.cfg.engine, _expected_gpus(h) > 0) for h, _ in _compose_hosts(rendered_hosts)}
    assert seen == {(e, g) for e in ("vllm", "llamacpp", "ollama") for g in (False, True)}


def test_every_compose_file_validates_against_the_compose_spec_schema(
    rendered_hosts: list[RenderedHost], tmp_path: Path
) -> None:
    paths = []
    for host in rendered_hosts:
        for f in host.files:
            if f.path.endswith("/compose.yaml"):
                path = tmp_path / host.case / host.cfg.name / "compose.yaml"
                path.parent.mkdir(parents=True)
                path.write_text(f.content, encoding="utf-8")
                paths.append(path)
    assert paths

    proc = _check_jsonschema(*paths)

    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_a_misspelt_service_key(
    rendered_hosts: list[RenderedHost], tmp_path: Path
) -> None:
    # The schema forbids unknown service keys; if this passed, the check above would prove nothing.
    host, _ = _compose_hosts(rendered_hosts)[0]
    text = next(f.content for f in host.files if f.path.endswith("/compose.yaml"))
    bad = tmp_path / "compose.yaml"
    bad.write_text(text.replace("    healthcheck:", "    healtcheck:"), encoding="utf-8")

    proc = _check_jsonschema(bad)

    assert proc.returncode != 0
    assert "healtcheck" in proc.stdout + proc.stderr


def test_images_are_pinned_to_a_tag_other_than_latest(rendered_hosts: list[RenderedHost]) -> None:
    for host, doc in _compose_hosts(rendered_hosts):
        image = _service(doc)["image"]
        _name, sep, tag = image.rpartition(":")
        # A ':' before the last '/' belongs to a registry's port, not to a tag.
        assert sep and "/" not in tag, f"{host.label}: {image} has no tag"
        assert tag and tag != "latest", f"{host.label}: {image} is not pinned"


def test_volumes_are_named_and_declared(rendered_hosts: list[RenderedHost]) -> None:
    for host, doc in _compose_hosts(rendered_hosts):
        declared = set(doc.get("volumes") or {})
        for mount in _service(doc)["volumes"]:
            source = mount.split(":", 1)[0]
            assert not source.startswith(("/", ".", "~")), f"{host.label}: bind mount {mount}"
            assert source in declared, f"{host.label}: {source} is not a declared volume"


def test_every_service_has_a_healthcheck(rendered_hosts: list[RenderedHost]) -> None:
    for host, doc in _compose_hosts(rendered_hosts):
        check = _service(doc).get("healthcheck") or {}
        assert check.get("test", [None])[0] == "CMD", host.label
        assert not check.get("disable", False), host.label


def test_vllm_shares_the_host_ipc_namespace_and_others_do_not(
    rendered_hosts: list[RenderedHost],
) -> None:
    # vLLM's workers talk through shared memory, which Docker's 64 MiB /dev/shm would starve.
    for host, doc in _compose_hosts(rendered_hosts):
        ipc = _service(doc).get("ipc")
        assert ipc == ("host" if host.cfg.engine == "vllm" else None), host.label


def test_gpu_reservations_match_the_gpu_count(rendered_hosts: list[RenderedHost]) -> None:
    for host, doc in _compose_hosts(rendered_hosts):
        count = _expected_gpus(host)
        deploy = _service(doc).get("deploy")
        if count == 0:
            assert deploy is None, f"{host.label}: reserves devices on a host without GPUs"
            continue
        devices = deploy["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": count, "capabilities": ["gpu"]}], (
            host.label
        )


def test_published_ports_bind_to_the_inventory_address(rendered_hosts: list[RenderedHost]) -> None:
    for host, doc in _compose_hosts(rendered_hosts):
        # Compose writes an IPv6 address in brackets, as in a URL.
        bind = f"[{host.cfg.bind}]" if ":" in host.cfg.bind else host.cfg.bind
        published, _, _inner = _service(doc)["ports"][0].rpartition(":")
        assert published == f"{bind}:{host.cfg.port}", host.label
        assert len(_service(doc)["ports"]) == 1, host.label


@pytest.mark.parametrize("engine", ["vllm", "llamacpp", "ollama"])
def test_compose_reads_secrets_from_its_env_file(
    rendered_hosts: list[RenderedHost], engine: str
) -> None:
    docs = [doc for host, doc in _compose_hosts(rendered_hosts) if host.cfg.engine == engine]
    assert docs
    for doc in docs:
        assert _service(doc)["env_file"] == [".env"]
