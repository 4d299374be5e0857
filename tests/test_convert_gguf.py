"""HF ↔ GGUF conversion rules, llama.cpp tools on the controller, progress, and `llmprov models`.

The conversions themselves run in tests/test_convert_roundtrip.py (engine tier); here are the
rules they follow, the parsers of the tools' progress (on captured output), the build key of this
controller, and the command line against the hub and Ollama stand-ins.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from standins.hf_hub_standin import Hub, HubServer

from llmprov.cache import binary_cache_dir_name, cache_root
from llmprov.cli.main import build_parser, main
from llmprov.cli.models_cmd import RichReport
from llmprov.convert import llamacpp_tools
from llmprov.convert.hf_gguf import folder_digest, is_complete_gguf, sidecar
from llmprov.convert.progress import Step, bar_class, percent_of, tensor_of
from llmprov.convert.spec import (
    CONVERT_RECIPE,
    ConvertError,
    Provenance,
    gguf_type,
    needs_quantize,
)
from llmprov.core.config import LlamacppSettings
from llmprov.core.llamacpp_build import BuildTarget

REPO = Path(__file__).resolve().parents[1]

# Captured from the pinned llama.cpp (llama-cpp-python 0.3.36) on this kind of machine.
CONVERTER_LINE = "Writing:  21%|██        | 30.1M/143M [00:01<00:05, 21.9Mbyte/s]"
QUANTIZE_LINE = (
    "[   2/ 272] token_embd.weight                    - [   576,  49152,      1,      1], "
    "type =   q8_0, size =   28.688 MiB"
)


# ---------------------------------------------------------------- types


def test_gguf_types_are_spelled_as_the_tools_spell_them() -> None:
    assert gguf_type("Q8_0") == "q8_0" and gguf_type("F16") == "f16"
    assert gguf_type("q4_k_m") == "Q4_K_M"
    assert not needs_quantize("q8_0") and not needs_quantize("bf16")
    assert needs_quantize("Q4_K_M") and needs_quantize("q6_k")


def test_an_unknown_gguf_type_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ConvertError, match=r"f32, f16, bf16, q8_0, Q4_K_M, .*got 'q3'"):
        gguf_type("q3")


# ---------------------------------------------------------------- progress


def test_progress_lines_of_the_converter_and_llama_quantize_are_read() -> None:
    assert percent_of(CONVERTER_LINE) == 21
    assert percent_of("INFO:hf-to-gguf:Set model tokenizer") is None
    assert tensor_of(QUANTIZE_LINE) == (2, 272)
    assert tensor_of("llama_model_quantize_impl: model size =   137.03 MiB") is None


def test_huggingface_hub_bars_become_steps() -> None:
    steps: list[Step] = []
    bar_type = bar_class(steps.append, prefix="org/smol: ")
    with bar_type(total=300, desc="model.safetensors", unit="B") as bar:
        bar.update(100)
        bar.update(200)
        bar.set_postfix_str("12 MB/s")  # tqdm calls huggingface_hub makes are accepted
    assert [(s.task, s.done, s.total, s.finished) for s in steps] == [
        ("org/smol: model.safetensors", 0, 300, False),
        ("org/smol: model.safetensors", 100, 300, False),
        ("org/smol: model.safetensors", 300, 300, False),
        ("org/smol: model.safetensors", 300, 300, True),
    ]


def test_the_cli_draws_steps_as_bars() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    with RichReport(console) as report:
        report(Step("download m.gguf", 50_000_000, 100_000_000, "B"))
        report(Step("quantize to Q4_K_M", 136, 272, "tensors"))
        report(Step("convert to hf"))
        report(Step("convert to hf", finished=True))
    text = out.getvalue()
    assert "download m.gguf" in text and "50/100 MB" in text and "136/272 tensors" in text


# ---------------------------------------------------------------- llama.cpp tools


def test_the_controllers_cpu_digest_is_what_the_host_fact_reports() -> None:
    shell = subprocess.run(
        "grep -m1 -E '^(flags|Features)' /proc/cpuinfo | sha256sum | cut -c1-16",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert llamacpp_tools.cpu_flags_digest(Path("/proc/cpuinfo").read_text()) == shell
    assert llamacpp_tools.cpu_flags_digest("processor : 0\n") is None


def test_the_controller_takes_the_build_a_host_like_it_would_have(tmp_path: Path) -> None:
    """A cached build under this controller's own key is unpacked and used; no build runs."""
    target = BuildTarget("x86_64", "debian-12", "0123456789abcdef")
    key = llamacpp_tools.binaries_key(LlamacppSettings(), target)
    stage = tmp_path / "stage"
    (stage / "bin").mkdir(parents=True)
    for name in ("llama-server", "llama-quantize"):
        (stage / "bin" / name).write_text("#!/bin/sh\n")
    cache = tmp_path / "cache" / binary_cache_dir_name()
    cache.mkdir(parents=True)
    with tarfile.open(cache / f"{key}.tar.gz", "w:gz") as tar:
        tar.add(stage, arcname=".")
    found = llamacpp_tools.llama_binaries(tmp_path / "cache", target=target)
    assert found.key == key and found.quantize.is_file() and found.server.is_file()
    other = BuildTarget("x86_64", "debian-12", "fedcba9876543210")
    assert llamacpp_tools.binaries_key(LlamacppSettings(), other) != key


def test_this_controllers_key_matches_a_build_the_llamacpp_deploy_cached() -> None:
    cached = sorted((cache_root() / binary_cache_dir_name()).glob("*.tar.gz"))
    if not cached:
        pytest.skip("no llama.cpp build cached on this controller yet")
    key = llamacpp_tools.binaries_key(LlamacppSettings(), llamacpp_tools.controller_target())
    assert key in [p.name.removesuffix(".tar.gz") for p in cached]


def test_only_the_converter_is_taken_out_of_the_source_tree() -> None:
    only = llamacpp_tools.CONVERTER_MEMBERS
    assert llamacpp_tools._wanted("convert_hf_to_gguf.py", only)
    assert llamacpp_tools._wanted("conversion/llama.py", only)
    assert llamacpp_tools._wanted("gguf-py/gguf/gguf_writer.py", only)
    assert not llamacpp_tools._wanted("convert_hf_to_gguf_update.py", only)
    assert not llamacpp_tools._wanted("ggml/src/ggml.c", only)


def test_a_build_without_the_compilers_says_which_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llamacpp_tools.shutil, "which", lambda name: None)
    with pytest.raises(ConvertError, match="apt-get install build-essential cmake ninja-build"):
        llamacpp_tools.build_here(tmp_path, LlamacppSettings(), "k", tmp_path / "k.tar.gz")


# ---------------------------------------------------------------- provenance of a GGUF


def test_a_gguf_is_complete_only_for_its_folder_type_and_size(tmp_path: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x").write_text("ignored")
    digest = folder_digest(folder)
    (folder / ".cache" / "x").write_text("still ignored")
    assert folder_digest(folder) == digest
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF1234")
    record = Provenance("hf", digest, "q8_0", CONVERT_RECIPE, {"bytes": "8"})
    sidecar(gguf).write_text(record.to_json())
    assert is_complete_gguf(gguf, digest, "q8_0")
    assert not is_complete_gguf(gguf, digest, "f16")
    assert not is_complete_gguf(gguf, "0" * 64, "q8_0")
    gguf.write_bytes(b"GGUF12")  # truncated
    assert not is_complete_gguf(gguf, digest, "q8_0")


# ---------------------------------------------------------------- the command line


def test_cli_parses_pull_and_convert() -> None:
    args = build_parser().parse_args(
        ["models", "convert", "hf://o/r", "--to", "gguf", "--quant", "Q4_K_M", "--out", "d"]
    )
    assert (args.src, args.to, args.quant, args.out) == ("hf://o/r", "gguf", "Q4_K_M", "d")
    args = build_parser().parse_args(["models", "pull", "hf://o/r@v1/m.gguf", "--out", "x"])
    assert (args.ref, args.out, args.sha256) == ("hf://o/r@v1/m.gguf", "x", None)


def test_cli_convert_refuses_what_cannot_be_converted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert main(["models", "convert", str(gguf), "--to", "gguf", "--quant", "q3"]) == 2
    assert "--quant must be one of" in capsys.readouterr().err
    assert main(["models", "convert", str(tmp_path), "--to", "hf"]) == 2
    assert "is a Hugging Face model already" in capsys.readouterr().err
    assert main(["models", "convert", str(tmp_path / "absent"), "--to", "gguf"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["models", "convert", "nope://x", "--to", "gguf"]) == 2
    assert "unknown scheme" in capsys.readouterr().err


def test_cli_pull_fetches_from_the_hub_with_a_progress_bar_and_prints_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "smol.gguf").write_bytes(b"GGUF" + os.urandom(50_000))
    hub = Hub(token="hf_testTokenNotReal42")
    hub.add("org/smol", repo)
    token = tmp_path / "token"
    token.write_text("hf_testTokenNotReal42\n")
    with HubServer(hub) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        out = tmp_path / "out" / "smol.gguf"
        code = main(["models", "pull", "hf://org/smol/smol.gguf", "--out", str(out),
                     "--token-file", str(token)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == f"file://{out}\n"
    assert out.read_bytes() == (repo / "smol.gguf").read_bytes()
    assert json.loads(Path(f"{out}.llmprov-source.json").read_text())["files"] == ["smol.gguf"]


def test_cli_pull_says_ollama_models_are_pulled_by_ollama(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models", "pull", "ollama://smollm2:135m"]) == 2
    assert "pulled by Ollama on the host" in capsys.readouterr().err


@pytest.fixture
def ollama_url(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(tmp_path / "m")}
    standin = REPO / "tests" / "standins" / "ollama_standin.py"
    proc = subprocess.Popen(
        [sys.executable, str(standin), "serve"], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(5)


def test_cli_imports_a_gguf_into_ollama(
    tmp_path: Path, ollama_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf = tmp_path / "SmolLM2.Q4.gguf"
    gguf.write_bytes(b"GGUF" + os.urandom(10_000))
    code = main(["models", "convert", str(gguf), "--to", "ollama", "--ollama-url", ollama_url])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == "ollama://smollm2.q4\n"
    names = [m["name"] for m in httpx.get(f"{ollama_url}/api/tags").json()["models"]]
    assert names == ["smollm2.q4:latest"]
