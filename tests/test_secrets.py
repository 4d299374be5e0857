"""Secrets reach only the file that needs them, and every file holding one is mode 0600."""

from __future__ import annotations

import pytest

from llmprov.core.config import HostConfig
from llmprov.core.layout import HF_PULL_ENV
from llmprov.core.render import secret_values
from llmprov.core.render.plan import plan_host
from llmprov.core.validate import ControllerFiles, validate_host

KEY = "sk-test-0123456789"
TOKEN = "hf_testTokenNotReal0123"


def _cfg(data: dict[str, object]) -> HostConfig:
    files = {"key": KEY, "token": TOKEN}
    result = validate_host(
        "gpu-1",
        {"api_key_file": "key", "hf_token_file": "token", **data},
        ControllerFiles(read=lambda p: files[p], exists=lambda p: p in files),
    )
    assert isinstance(result, HostConfig), result
    return result


CASES = {
    "vllm-systemd": {"engine": "vllm", "model": "hf://org/repo", "vllm": {"version": "0.32.0"}},
    "llamacpp-systemd": {"engine": "llamacpp", "model": "hf://org/repo/m.gguf"},
    "vllm-compose": {
        "engine": "vllm",
        "runtime": "compose",
        "model": "hf://org/repo",
        "vllm": {"version": "0.32.0"},
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_hf_token_is_in_the_pull_env_file_only(case: str) -> None:
    files = plan_host(_cfg(CASES[case]))
    holding = [f.path for f in files if TOKEN in f.content]
    assert holding == [HF_PULL_ENV]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_file_with_a_secret_is_mode_0600(case: str) -> None:
    files = plan_host(_cfg(CASES[case]))
    secret = [f for f in files if KEY in f.content or TOKEN in f.content]
    assert secret, "the case renders no secret at all"
    assert all(f.mode == 0o600 for f in secret), [(f.path, oct(f.mode)) for f in secret]
    # No unit, and nothing world-readable, holds one.
    assert not [f.path for f in secret if f.path.endswith((".service", ".conf", ".yaml"))]


def test_secret_values_lists_what_a_diff_must_mask() -> None:
    assert secret_values(_cfg(CASES["vllm-systemd"])) == [KEY, TOKEN]
