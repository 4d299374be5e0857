"""A light CLI: subcommands imported only when run, optional features behind named extras."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from llmprov.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return out.stdout


def test_summaries_match_what_each_module_registers() -> None:
    for module in cli_main.SUBCOMMAND_MODULES:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command")
        importlib.import_module(module).register(sub)
        name = cli_main._command_name(module)
        helps = {a.dest: a.help for a in sub._choices_actions}
        assert helps == {name: cli_main.SUMMARIES[name]}, module


def test_help_imports_no_subcommand_module() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from llmprov.cli.main import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    main(['--help'])\n"
        "assert 'deploy' in out.getvalue() and 'matrix' in out.getvalue()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('llmprov.cli.', 'pyinfra', "
        "'rich', 'pydantic', 'matplotlib', 'testinfra'))))\n"
    )
    assert _run(code).strip() == "['llmprov.cli.main']"


def test_validate_imports_neither_matplotlib_nor_testinfra_nor_httpx() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from llmprov.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['validate', 'inventories/client.py', '--engine', 'vllm'])\n"
        "heavy = ('matplotlib', 'testinfra', 'huggingface_hub', 'httpx', 'llmprov.checks')\n"
        "print(rc, sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}))\n"
    )
    assert _run(code).strip() == "0 []"


def test_chart_and_verify_and_hf_are_extras_not_core_dependencies() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"])
    for pkg in ("matplotlib", "pytest-testinfra", "huggingface_hub", "pytest"):
        assert pkg not in core, pkg
    extras = meta["optional-dependencies"]
    assert any(d.startswith("matplotlib") for d in extras["chart"])
    assert any(d.startswith("pytest-testinfra") for d in extras["verify"])
    assert any(d.startswith("huggingface_hub") for d in extras["hf"])
    # The test extra pulls every optional feature the unit tier exercises.
    assert {"chart", "verify", "hf"} <= {
        e.split("[", 1)[1].split("]")[0] for e in extras["test"] if e.startswith("llmprov[")
    } or all(
        any(d.startswith(p) for d in extras["test"])
        for p in ("matplotlib", "pytest-testinfra", "huggingface_hub")
    )


@pytest.mark.parametrize(
    ("argv", "module", "extra"),
    [
        (["verify", "inventories/client.py", "--engine", "llamacpp"], "testinfra", "verify"),
        (["models", "pull", "hf://o/r@main/m.gguf", "--out", "x"], "huggingface_hub", "hf"),
    ],
)
def test_a_missing_extra_gets_a_one_line_hint(argv: list[str], module: str, extra: str) -> None:
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # as if not installed\n"
        "from llmprov.cli.main import main\n"
        f"sys.exit(main({json.dumps(argv)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    assert f"pip install 'llmprov[{extra}]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_ctrl_c_ends_with_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmprov.cli import validate_cmd

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(validate_cmd, "run", interrupted)
    assert cli_main.main(["validate", "inventories/client.py"]) == 130
    assert capsys.readouterr().err == "llmprov: interrupted\n"
