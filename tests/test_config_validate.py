"""validate_host: defaults resolved, faults reported field by field, secrets read and kept secret."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pydantic
import pytest

from llmprov.core.config import HostConfig
from llmprov.core.layout import HF_PULL_ENV
from llmprov.core.model_ref import HuggingFaceRef, OllamaRef
from llmprov.core.render.plan import plan_host
from llmprov.core.validate import ControllerFiles, FieldError, split_host_data, validate_host

API_KEY = "sk-test-0f3c9a7d1e5b42c8"
HF_TOKEN = "hf_testTokenNotReal42"

MODELS = {
    "vllm": "hf://Qwen/Qwen2.5-0.5B-Instruct",
    "llamacpp": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
    "ollama": "ollama://llama3.2:3b",
}


class FakeFiles:
    """Controller files as a dict; records what was read, to show paths reach it as written."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.read_paths: list[str] = []

    def read(self, path: str) -> str:
        self.read_paths.append(path)
        if path not in self.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.files[path]

    def controller(self) -> ControllerFiles:
        return ControllerFiles(read=self.read, exists=lambda p: p in self.files)


def _ok(data: dict[str, Any], files: dict[str, str] | None = None, **kw: Any) -> HostConfig:
    result = validate_host("h", data, FakeFiles(files or {}).controller(), **kw)
    assert isinstance(result, HostConfig), result
    return result


def _errors(data: dict[str, Any], files: dict[str, str] | None = None, **kw: Any) -> list[str]:
    result = validate_host("h", data, FakeFiles(files or {}).controller(), **kw)
    assert isinstance(result, list), result
    return [str(e) for e in result]


# ---------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    ("engine", "port"), [("ollama", 11434), ("vllm", 8000), ("llamacpp", 8080)]
)
def test_an_engine_and_a_model_are_enough_and_the_rest_defaults(engine: str, port: int) -> None:
    cfg = _ok({"engine": engine, "model": MODELS[engine]})

    assert cfg.settings.bind == IPv4Address("127.0.0.1")
    assert cfg.bind == "127.0.0.1"
    assert cfg.port == port
    assert (cfg.os, cfg.runtime) == ("linux", "systemd")
    assert cfg.api_key is None and cfg.hf_token is None
    assert cfg.settings.smoke and cfg.settings.bench


@pytest.mark.parametrize(
    ("os", "runtime"), [("linux", "systemd"), ("macos", "launchd"), ("windows", "windows-service")]
)
def test_the_runtime_defaults_from_the_os(os: str, runtime: str) -> None:
    cfg = _ok({"engine": "ollama", "model": MODELS["ollama"], "os": os})
    assert cfg.runtime == runtime


def test_a_stated_runtime_and_port_win_over_the_defaults() -> None:
    cfg = _ok({"engine": "vllm", "model": MODELS["vllm"], "runtime": "compose", "port": 9001})
    assert (cfg.runtime, cfg.port) == ("compose", 9001)


def test_the_served_model_name_defaults_from_the_model_reference() -> None:
    assert _ok({"engine": "vllm", "model": MODELS["vllm"]}).served_model_name == (
        "qwen2.5-0.5b-instruct"
    )
    assert _ok({"engine": "ollama", "model": MODELS["ollama"]}).served_model_name == "llama3.2:3b"
    named = _ok({"engine": "vllm", "model": MODELS["vllm"], "served_model_name": "qwen"})
    assert named.served_model_name == "qwen"


def test_the_model_reference_is_parsed_into_its_class() -> None:
    assert isinstance(_ok({"engine": "vllm", "model": MODELS["vllm"]}).model_ref, HuggingFaceRef)
    assert isinstance(_ok({"engine": "ollama", "model": MODELS["ollama"]}).model_ref, OllamaRef)


def test_a_numeric_string_port_is_accepted_as_pydantic_lax_mode_does() -> None:
    # Inventories built from environment variables carry strings; "8001" is not a fault.
    assert _ok({"engine": "vllm", "model": MODELS["vllm"], "port": "8001"}).port == 8001


def test_an_ipv6_bind_address_is_accepted() -> None:
    cfg = _ok({"engine": "ollama", "model": MODELS["ollama"], "bind": "::1"})
    assert cfg.settings.bind == IPv6Address("::1")
    assert cfg.bind == "::1"


def test_the_config_is_frozen() -> None:
    cfg = _ok({"engine": "vllm", "model": MODELS["vllm"]})
    with pytest.raises(pydantic.ValidationError):
        cfg.port = 1  # type: ignore[misc]


# ---------------------------------------------------------------- keys


def test_pyinfra_and_user_keys_pass_through_and_unknown_keys_are_kept_apart() -> None:
    data = {
        "engine": "vllm",
        "ssh_user": "deploy",
        "_sudo": True,
        "winrm_hostname": "10.0.0.5",
        "x_rack": "b3",
        "egnine": "vllm",
    }
    ours, passthrough, unknown = split_host_data(data)
    assert ours == {"engine": "vllm"}
    assert set(passthrough) == {"ssh_user", "_sudo", "winrm_hostname", "x_rack"}
    assert unknown == ["egnine"]


def test_passthrough_keys_do_not_reach_the_settings() -> None:
    cfg = _ok({"engine": "vllm", "model": MODELS["vllm"], "ssh_port": 22, "x_owner": {"a": 1}})
    assert "ssh_port" not in cfg.settings.model_dump()


def test_an_unknown_key_without_a_close_match_gets_no_guess() -> None:
    errors = _errors({"engine": "vllm", "model": MODELS["vllm"], "flavour": "blue"})
    assert errors == [
        "h: flavour: unknown llmprov key (pyinfra keys start with ssh_, _ and the like; own data with x_)"
    ]


def test_unknown_keys_and_bad_values_are_reported_in_one_pass() -> None:
    errors = _errors({"engine": "vllm", "model": MODELS["vllm"], "prot": 8000, "port": 0})
    assert errors == [
        "h: prot: unknown llmprov key; did you mean 'port'? "
        "(pyinfra keys start with ssh_, _ and the like; own data with x_)",
        "h: port: must be >= 1, got 0",
    ]


def test_an_engine_override_replaces_the_inventory_engine() -> None:
    cfg = _ok({"engine": "ollama", "model": MODELS["vllm"]}, engine_override="vllm")
    assert cfg.engine == "vllm"


def test_an_unknown_engine_override_is_a_fault() -> None:
    errors = _errors({"engine": "ollama", "model": MODELS["ollama"]}, engine_override="tgi")
    assert errors == [
        "h: engine: --engine must be one of ('ollama', 'vllm', 'llamacpp'), got 'tgi'"
    ]


def test_field_errors_read_host_field_reason() -> None:
    err = FieldError("gpu-1", "vllm.tensor_parallel_size", "must be >= 1, got 0")
    assert str(err) == "gpu-1: vllm.tensor_parallel_size: must be >= 1, got 0"


# ---------------------------------------------------------------- files and secrets


def test_secrets_are_read_from_their_files_by_the_path_as_written_and_stripped() -> None:
    files = FakeFiles({"keys/api.txt": f"  {API_KEY}\n", "keys/hf.txt": f"{HF_TOKEN}\n"})
    result = validate_host(
        "h",
        {
            "engine": "vllm",
            "model": MODELS["vllm"],
            "api_key_file": "keys/api.txt",
            "hf_token_file": "keys/hf.txt",
        },
        files.controller(),
    )
    assert isinstance(result, HostConfig)
    assert (result.api_key, result.hf_token) == (API_KEY, HF_TOKEN)
    assert set(files.read_paths) == {"keys/api.txt", "keys/hf.txt"}


def test_a_file_model_must_exist_on_the_controller() -> None:
    data = {"engine": "llamacpp", "model": "file://models/m.gguf"}
    assert _errors(data) == ["h: model: file not found on the controller: 'models/m.gguf'"]
    assert _ok(data, files={"models/m.gguf": ""}).model_ref.raw == "file://models/m.gguf"


def test_an_unreadable_key_file_is_a_fault_of_that_field() -> None:
    errors = _errors(
        {"engine": "vllm", "model": MODELS["vllm"], "api_key_file": "nope.txt", "bind": "0.0.0.0"}
    )
    assert errors == ["h: api_key_file: cannot read 'nope.txt': No such file or directory"]


@pytest.mark.parametrize("engine", ["vllm", "llamacpp"])
@pytest.mark.parametrize("runtime", ["systemd", "compose"])
def test_secrets_appear_only_in_0600_env_files_the_token_in_the_pull_steps_own(
    engine: str, runtime: str
) -> None:
    cfg = _ok(
        {
            "engine": engine,
            "runtime": runtime,
            "model": MODELS[engine],
            "bind": "0.0.0.0",
            "api_key_file": "api.txt",
            "hf_token_file": "hf.txt",
            "llamacpp": {"source": "pypi", "release": "b6710"},
            "vllm": {"version": "0.32.0"},
        },
        files={"api.txt": API_KEY + "\n", "hf.txt": HF_TOKEN + "\n"},
    )

    files = plan_host(cfg)

    holding = {f.path: f.mode for f in files if API_KEY in f.content or HF_TOKEN in f.content}
    env_file = next(f for f in files if f.path.endswith(".env") and f.path != HF_PULL_ENV)
    pull_env = next(f for f in files if f.path == HF_PULL_ENV)
    assert holding == {env_file.path: 0o600, HF_PULL_ENV: 0o600}
    assert f"={API_KEY}\n" in env_file.content and HF_TOKEN not in env_file.content
    assert f"HF_TOKEN={HF_TOKEN}\n" in pull_env.content and API_KEY not in pull_env.content
    others = [f for f in files if f not in (env_file, pull_env)]
    assert others and all(f.mode == 0o644 for f in others)
