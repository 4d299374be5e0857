"""Output for scripts: `--json` documents with schema_version, and tables that wrap, never cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmprov.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "inventories" / "client.py"
LONG_REF = "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf"


def _cli(*argv: str, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-m", "llmprov", *argv], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_tables_in_a_pipe_are_wide_and_keep_every_value_whole() -> None:
    out = _cli("validate", str(CLIENT), "--engine", "llamacpp")
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout
    assert LONG_REF in out.stdout
    assert "127.0.0.1:8080" in out.stdout


def test_narrow_tables_fold_long_values_instead_of_cutting_them() -> None:
    out = _cli("validate", str(CLIENT), "--engine", "llamacpp", columns="70")
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout
    cells = "".join(
        line.split("│")[-2].strip() for line in out.stdout.splitlines() if line.count("│") >= 7
    )
    assert LONG_REF in cells


@pytest.mark.parametrize("engine", ["vllm", "ollama", "llamacpp"])
def test_validate_json(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CLIENT), "--engine", engine, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1 and doc["command"] == "validate" and doc["ok"] is True
    assert all(h["engine"] == engine for h in doc["hosts"].values())
    assert not set(doc["hosts"]) & set(doc["left_out"])
    assert set(doc["hosts"]) | set(doc["left_out"]) == {
        "gpu-1",
        "gpu-2",
        "mac-studio",
        "@winrm/win-box",
        "edge-1",
        "edge-2",
    }


def test_validate_json_lists_errors_by_host_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inv.py"
    inv.write_text("hosts = [('h1', {'engine': 'vllm', 'model': 'nope://x'})]\n")
    assert main(["validate", str(inv), "--json", "--limit", "h1,h9"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    fields = {(e["host"], e["field"]) for e in doc["errors"]}
    assert ("h9", "--limit") in fields and ("h1", "model") in fields


def test_check_url_takes_engine_as_bench_does(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 1: the check runs (with the engine's API) and fails, exit 1.
    rc = main(
        [
            "check",
            "--url",
            "http://127.0.0.1:1",
            "--engine",
            "llamacpp",
            "--model",
            "m",
            "--ready-timeout",
            "0.5",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["command"] == "check" and doc["ok"] is False
    assert main(["check", "--url", "http://127.0.0.1:1", "--model", "m"]) == 2
    assert "--engine" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("engine", "hosts"),
    [
        ("vllm", {"gpu-1", "gpu-2"}),
        ("ollama", {"mac-studio", "@winrm/win-box", "edge-2"}),
        ("llamacpp", {"edge-1"}),
    ],
)
def test_render_writes_the_selected_hosts_only(
    engine: str, hosts: set[str], tmp_path: Path
) -> None:
    out = tmp_path / "r"
    assert main(["render", str(CLIENT), "--engine", engine, "--out", str(out)]) == 0
    assert all((out / h).is_dir() for h in hosts)
    # `@winrm/win-box` is written as a folder in a folder; nothing else is there.
    assert {p.name for p in out.iterdir()} == {h.split("/")[0] for h in hosts}
