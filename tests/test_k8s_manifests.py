"""`llmprov render --k8s`: manifests per workload, checked offline against Kubernetes' own schemas.

Deployments, Services and PersistentVolumeClaims are validated whole, strictly (no unknown fields),
with kubernetes-validate's bundled schemas. The schemas hold no CRDs, so a LeaderWorkerSet is checked
in two parts: each of its pod templates as a core `PodTemplate`, strictly, and its own fields
(apiVersion, size, restart policy, the templates) against the shape LWS documents, by assertion.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_OK
from llmprov.cli.main import main
from llmprov.core.render.k8s import (
    GPU_RESOURCE,
    LWS_API,
    LWS_NAME_LABEL,
    K8sRenderError,
    render_manifests,
    resolved_for_k8s,
)
from llmprov.inventory import load_inventory

K8S_VERSION = "1.34.0"

FLEET = """
gpu_servers = (
    [("gpu-1", {}), ("gpu-2", {}), ("gpu-3", {"gpu": {"vendor": "nvidia", "count": 2,
                                                    "driver_version": "580.65.06"}})],
    {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-7B-Instruct", "bind": "0.0.0.0",
     "api_key_file": "key.txt",
     "gpu": {"vendor": "nvidia", "count": 1, "driver_version": "580.65.06"},
     "vllm": {"version": "0.11.0"}},
)
edge = (
    [("edge-1", {}), ("edge-2", {})],
    {"engine": "llamacpp",
     "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
     "llamacpp": {"source": "pypi", "release": "b6710"}},
)
office = [("mini", {"engine": "ollama", "model": "ollama://llama3.2:3b"})]
cluster_nodes = (
    [("big-1", {"ssh_hostname": "10.0.0.1"}), ("big-2", {"ssh_hostname": "10.0.0.2"})],
    {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-72B-Instruct",
     "gpu": {"vendor": "nvidia", "count": 8, "driver_version": "580.65.06"},
     "vllm": {"version": "0.11.0"}, "cluster": {"name": "qwen72", "head": "big-1"}},
)
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    (tmp_path / "key.txt").write_text("sk-test-k8s\n")
    path = tmp_path / "inventory.py"
    path.write_text(textwrap.dedent(FLEET))
    return path


@pytest.fixture
def docs(fleet: Path, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """file name -> its documents, as `llmprov render --k8s` wrote them."""
    out = tmp_path / "out"
    assert main(["render", str(fleet), "--out", str(out), "--k8s"]) == EXIT_OK
    return {
        p.name: [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
        for p in sorted((out / "_k8s").glob("*.yaml"))
    }


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind)


def validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_fleet_folds_into_one_workload_per_serving_setup(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    assert sorted(docs) == [
        "llamacpp-smollm2-135m-instruct-q4_k_m.yaml".replace("_", "-"),
        "ollama-llama3-2-3b.yaml",
        "qwen72.yaml",
        "vllm-qwen2-5-7b-instruct-2.yaml",
        "vllm-qwen2-5-7b-instruct.yaml",
    ]
    # gpu-1 and gpu-2 are alike; gpu-3 has two GPUs: a workload of its own.
    assert by_kind(docs["vllm-qwen2-5-7b-instruct.yaml"], "Deployment")["spec"]["replicas"] == 2
    assert by_kind(docs["vllm-qwen2-5-7b-instruct-2.yaml"], "Deployment")["spec"]["replicas"] == 1


def test_every_core_object_passes_the_kubernetes_schema_strictly(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    checked = 0
    for file_docs in docs.values():
        for doc in file_docs:
            if doc["apiVersion"] == LWS_API:
                continue
            validate(doc)
            checked += 1
    assert checked == 3 * 4 + 2  # four Deployments with claim and Service; the LWS's claim, Service


def test_the_schema_check_catches_a_broken_manifest(docs: dict[str, list[dict[str, Any]]]) -> None:
    # The check above could not pass a wrong manifest: a misspelt field fails it.
    deployment = by_kind(docs["ollama-llama3-2-3b.yaml"], "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


def test_serving_pods_are_ready_on_health_and_request_their_gpus(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    pod = by_kind(docs["vllm-qwen2-5-7b-instruct-2.yaml"], "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"][GPU_RESOURCE] == 2
    assert container["resources"]["limits"][GPU_RESOURCE] == 2
    assert container["image"] == "vllm/vllm-openai:v0.11.0"
    assert container["args"][0] == "/models/qwen2.5-7b-instruct"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["volumes"]
    claim = next(v for v in pod["volumes"] if v["name"] == "models")
    assert claim["persistentVolumeClaim"]["claimName"] == "vllm-qwen2-5-7b-instruct-2-models"


def test_the_api_key_comes_from_a_secret_never_from_the_manifest(
    docs: dict[str, list[dict[str, Any]]], fleet: Path
) -> None:
    text = (fleet.parent / "out" / "_k8s" / "vllm-qwen2-5-7b-instruct.yaml").read_text()
    container = by_kind(docs["vllm-qwen2-5-7b-instruct.yaml"], "Deployment")["spec"]["template"][
        "spec"
    ]["containers"][0]

    assert "sk-test-k8s" not in text
    key = next(e for e in container["env"] if e["name"] == "VLLM_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {
        "name": "vllm-qwen2-5-7b-instruct-secrets",
        "key": "api-key",
    }
    assert "kubectl create secret generic vllm-qwen2-5-7b-instruct-secrets" in text


def test_ollama_is_ready_on_its_root_page_and_keeps_models_in_the_claim(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    container = by_kind(docs["ollama-llama3-2-3b.yaml"], "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]

    assert container["readinessProbe"]["httpGet"]["path"] == "/"
    assert {"name": "models", "mountPath": "/root/.ollama"} in container["volumeMounts"]
    assert "resources" not in container


def test_a_serving_cluster_becomes_a_leader_worker_set_of_its_nodes(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    lws = by_kind(docs["qwen72.yaml"], "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]

    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    assert template["size"] == 2
    assert template["restartPolicy"] == "RecreateGroupOnPodRestart"
    leader = template["leaderTemplate"]["spec"]["containers"][0]
    worker = template["workerTemplate"]["spec"]["containers"][0]
    script = leader["command"][2]
    assert script.startswith("ray start --head --port 6379 --num-gpus 8")
    assert "&& exec vllm serve /models/qwen2.5-72b-instruct" in script
    assert "--tensor-parallel-size 8 --pipeline-parallel-size 2" in script
    assert "--distributed-executor-backend ray" in script
    assert worker["command"][:5] == [
        "ray",
        "start",
        "--address",
        "$(LWS_LEADER_ADDRESS):6379",
        "--block",
    ]
    for container in (leader, worker):
        assert container["resources"]["limits"][GPU_RESOURCE] == 8
    assert leader["readinessProbe"]["httpGet"]["path"] == "/health"
    service = by_kind(docs["qwen72.yaml"], "Service")
    assert service["spec"]["selector"] == {LWS_NAME_LABEL: "qwen72", "role": "leader"}
    claim = by_kind(docs["qwen72.yaml"], "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_each_pod_template_of_a_leader_worker_set_passes_the_core_schema(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    lws = by_kind(docs["qwen72.yaml"], "LeaderWorkerSet")
    for role in ("leaderTemplate", "workerTemplate"):
        validate(
            {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": f"qwen72-{role.lower()}"},
                "template": lws["spec"]["leaderWorkerTemplate"][role],
            }
        )
    assert set(lws) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(lws["spec"]) == {"replicas", "leaderWorkerTemplate"}
    assert set(lws["spec"]["leaderWorkerTemplate"]) == {
        "size", "restartPolicy", "leaderTemplate", "workerTemplate",
    }  # fmt: skip


def test_kubernetes_validate_has_no_schema_for_the_leader_worker_set_crd(
    docs: dict[str, list[dict[str, Any]]],
) -> None:
    # Why the set is checked in parts: validating it whole is not possible offline.
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate(by_kind(docs["qwen72.yaml"], "LeaderWorkerSet"))


def test_a_llamacpp_host_without_a_release_cannot_pin_its_image(tmp_path: Path) -> None:
    path = tmp_path / "inventory.py"
    path.write_text(
        'hosts = [("e", {"engine": "llamacpp", "model": '
        '"hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf"})]\n'
    )
    cfg = load_inventory(path).hosts["e"]

    with pytest.raises(K8sRenderError, match=r"^e: llamacpp.release: a manifest needs"):
        render_manifests({"e": cfg}, {"e": resolved_for_k8s(cfg)})


def test_render_reports_an_unpinned_vllm_image_as_a_field_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inventory.py"
    path.write_text(
        'hosts = [("g", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",'
        ' "gpu": {"vendor": "nvidia", "count": 1}})]\n'
    )

    code = main(["render", str(path), "--out", str(tmp_path / "out"), "--k8s"])

    assert code == EXIT_BAD_INPUT
    assert "g: vllm.version: a manifest pins its image" in capsys.readouterr().err
