"""One truth: what `llmprov matrix` answers is what the vLLM deploy installs and what compose/k8s pin.

The deploy is planned through pyinfra's real API on a `@fake` host across driver x compute
capability x architecture; the install commands it would run are compared with the JSON that
`llmprov matrix` prints for the same host.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version
from pyinfra.api import Config, Inventory, State
from pyinfra.api import host as pyinfra_host
from pyinfra.api.connect import connect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operations import run_ops
from pyinfra.context import ctx_state

from llmprov.cli.main import main
from llmprov.core.config import HostConfig
from llmprov.core.gpu import DriverDetection
from llmprov.core.render_k8s import render_manifests, resolved_for_k8s
from llmprov.core.render_plan import offline_resolved, plan_host
from llmprov.core.resolve import resolve
from llmprov.core.validate import ControllerFiles, FieldError, validate_host
from llmprov.deploy import vllm
from llmprov.inventory import load_inventory

HOST = "@fake/gpu-host"
REPO = Path(__file__).resolve().parents[1]

DRIVERS = ["470.256.02", "525.60.13", "535.183.01", "550.54.15", "570.133.20", "575.51.03",
           "580.65.06", "595.45.04"]  # fmt: skip
CAPABILITIES = ["6.1", "7.0", "7.5", "8.0", "8.6", "9.0", "10.0", "12.0"]
ARCHES = ["x86_64", "aarch64"]
RENDERED: set[str] = set()


def validated(
    tmp_path: Path, driver: str | None, cc: str, **extra: Any
) -> HostConfig | list[FieldError]:
    model = tmp_path / "smollm2"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    gpu: dict[str, Any] = {"vendor": "nvidia", "count": 1, "compute_capability": cc}
    if driver is not None:
        gpu["driver_version"] = driver
    data = {
        "engine": "vllm",
        "model": f"file://{model}",
        "served_model_name": "smollm2",
        "gpu": gpu,
        **extra,
    }
    files = ControllerFiles(read=lambda p: Path(p).read_text(), exists=lambda p: Path(p).exists())
    return validate_host(HOST, data, files)


def config(tmp_path: Path, driver: str | None, cc: str, **extra: Any) -> HostConfig:
    cfg = validated(tmp_path, driver, cc, **extra)
    assert not isinstance(cfg, list), [str(e) for e in cfg]
    return cfg


def fake_facts(arch: str, glibc: tuple[int, int], driver: str | None) -> Any:
    def get_fact(state: Any, host: Any, cls: type, args: Any = None, kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        if cls.__name__ == "NvidiaDriverVersion" and driver is not None:
            return DriverDetection(Version(driver), "sys_module")
        simple = {"Arch": arch, "Os": "Linux", "LinuxName": "Debian", "Home": "/root",
                  "GlibcVersion": glibc}  # fmt: skip
        if cls.__name__ in simple:
            return simple[cls.__name__]
        if cls.__name__ == "Which":
            return f"/usr/sbin/{kwargs['command']}"
        if cls.__name__ in ("DebPackages", "Users", "Groups"):
            return {}
        fact = cls()
        return fact.default() if hasattr(fact, "default") else None

    return get_fact


def plan_installs(
    cfg: HostConfig,
    arch: str,
    glibc: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
    driver: str | None = None,
) -> list[list[str]] | str:
    """The argv of the deploy's install commands, or the refusal the deploy raised; `driver` is
    what the host's driver fact reads (host data may state one instead)."""
    monkeypatch.setattr(pyinfra_host, "get_fact", fake_facts(arch, glibc, driver))
    monkeypatch.setattr(vllm, "check_env", lambda env: None)
    # The host's own install names its pins and index in argv, which this test reads; the
    # controller's lock is made from the same pins and index (tests/test_vllm_env.py).
    own = cfg.settings.vllm.model_copy(update={"wheels_from_controller": False})
    cfg = cfg.model_copy(update={"settings": cfg.settings.model_copy(update={"vllm": own})})
    inventory = Inventory(([(HOST, {"fake_delay": 0, "fake_delay_jitter": 0})], {}))
    state = State(inventory, Config())
    with ctx_state.use(state):
        connect_all(state)
    try:
        add_deploy(state, lambda: vllm.deploy_vllm(cfg))
    except vllm.VllmDeployError as exc:
        return str(exc)
    with contextlib.suppress(PyinfraError):
        run_ops(state)
    host = inventory.get_host(HOST)
    argvs: list[list[str]] = []
    for op_hash in state.get_op_order():
        names = ", ".join(state.get_op_meta(op_hash).names)
        data = state.ops[host].get(op_hash)
        if names.startswith("Install ") and "uv" not in names and data is not None:
            argvs += [shlex.split(str(c)) for c in data.operation_meta._commands]
    return argvs


def matrix_answer(
    driver: str, cc: str, arch: str, glibc: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    argv = ["matrix", "--driver", driver, "--compute-capability", cc, "--arch", arch,
            "--glibc", glibc, "--json"]  # fmt: skip
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def pins(argvs: list[list[str]]) -> dict[str, str]:
    """{'torch': '2.10.0+cu128', 'vllm': '0.19.1', 'torch-index': URL} from uv pip install argvs."""
    out: dict[str, str] = {}
    for argv in argvs:
        for i, word in enumerate(argv):
            if "==" in word:
                name, _, version = word.partition("==")
                out[name] = version
            if word == "--default-index" and any(w.startswith("torch==") for w in argv):
                out["torch-index"] = argv[i + 1]
    return out


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("driver", DRIVERS)
def test_the_deploy_installs_exactly_what_matrix_answers(
    driver: str,
    arch: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen_fit = 0
    for cc in CAPABILITIES:
        code, answer = matrix_answer(driver, cc, arch, "2.36", capsys)
        # A driver stated in host data is checked by validation, before any host is touched...
        stated = validated(tmp_path, driver, cc, arch=arch)
        # ...one read from the host by the deploy.
        cfg = config(tmp_path, None, cc, arch=arch)
        planned = plan_installs(cfg, arch, (2, 36), monkeypatch, driver)
        if not answer["fits"]:
            assert code == 2
            assert isinstance(stated, list), (driver, cc, arch)
            assert [(e.field, e.reason) for e in stated] == [
                ("gpu.driver_version", answer["reason"])
            ]
            assert isinstance(planned, str), (driver, cc, arch, planned)
            assert answer["reason"] in planned
            continue
        assert not isinstance(stated, list), [str(e) for e in stated]
        seen_fit += 1
        assert code == 0
        assert isinstance(planned, list), planned
        got = pins(planned)
        assert got["vllm"] == answer["vllm"], (driver, cc, arch)
        assert got["torch"] == f"{answer['torch']}+{answer['variant']}"
        assert got["torch-index"] == answer["index_url"]
        # compose and k8s pin the image of the same release, from the inventory alone.
        compose = config(tmp_path, driver, cc, runtime="compose", arch=arch)
        assert offline_resolved(compose).vllm_version == answer["vllm"]
        k8s = resolved_for_k8s(stated.model_copy(update={"settings": compose.settings}))
        assert k8s.vllm_version == answer["vllm"]
        if answer["vllm"] not in RENDERED:  # the files themselves, once per release (slow)
            RENDERED.add(answer["vllm"])
            image = f"vllm/vllm-openai:v{answer['vllm']}"
            assert any(image in f.content for f in plan_host(compose))
            manifests = render_manifests({stated.name: compose}, {stated.name: k8s})
            assert any(image in m.text for m in manifests)
    if Version(driver) >= Version("525.60.13"):
        assert seen_fit, f"no capability fits driver {driver} on {arch}"


def test_an_old_glibc_is_refused_by_matrix_and_deploy_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, answer = matrix_answer("580.65.06", "9.0", "x86_64", "2.27", capsys)
    assert code == 2 and "glibc" in answer["reason"]
    planned = plan_installs(config(tmp_path, "580.65.06", "9.0"), "x86_64", (2, 27), monkeypatch)
    assert isinstance(planned, str) and answer["reason"] in planned


def test_client_template_gpu_hosts_resolve_to_deployable_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = load_inventory(REPO / "inventories" / "client.py").hosts
    gpu1 = hosts["gpu-1"]
    planned = plan_installs(gpu1, "x86_64", (2, 36), monkeypatch)
    assert isinstance(planned, list), planned
    assert pins(planned)["vllm"] == "0.19.1"
    # gpu-2 states vLLM 0.11.0 and no driver: render pins that image; the deploy reads the driver.
    gpu2 = hosts["gpu-2"]
    assert offline_resolved(gpu2).vllm_version == "0.11.0"
    assert any("vllm/vllm-openai:v0.11.0" in f.content for f in plan_host(gpu2))
    # Its compose deploy runs vLLM's image; the driver the deploy reads decides nothing else,
    # but a stated release must still resolve to a PyPI build on the drivers hosts have.
    for driver in ("535.183.01", "570.133.20", "580.65.06"):
        r = resolve(Version(driver), (9, 0), "linux", "x86_64", "0.11.0", False)
        assert (r.vllm, r.torch, r.variant, r.wheel) == ("0.11.0", "2.8.0", "cu128", "pypi")


def test_a_release_the_builtin_table_lacks_deploys_after_a_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx
    from test_matrix_refresh import older_table, recorded_index

    from llmprov import matrix_cache
    from llmprov.checks.index_refresh import refresh
    from llmprov.core import matrix_data

    monkeypatch.setattr(matrix_data, "_BUILTIN", [older_table()])
    monkeypatch.setattr(matrix_cache, "REFRESH_FILE", "cuda-matrix-refresh.json")
    cfg = config(tmp_path, "580.65.06", "9.0")
    monkeypatch.setenv("LLMPROV_CACHE", str(tmp_path / "cache"))
    before = plan_installs(cfg, "x86_64", (2, 36), monkeypatch)
    assert isinstance(before, list) and pins(before)["vllm"] == "0.28.0"
    with httpx.Client(transport=recorded_index()) as client:
        matrix_cache.store_refreshed(refresh(client, older_table()))
    after = plan_installs(cfg, "x86_64", (2, 36), monkeypatch)
    assert isinstance(after, list)
    assert (pins(after)["vllm"], pins(after)["torch"]) == ("0.29.0", "2.13.0+cu130")
