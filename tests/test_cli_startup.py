"""CLI start-up: what `validate` imports, and the start-up benchmark's quick mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(argv: list[str]) -> tuple[int, set[str]]:
    code = (
        "import sys, json, contextlib, io\n"
        "from llmprov.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main({argv!r})\n"
        "print(json.dumps([rc, sorted(sys.modules)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    rc, modules = json.loads(out.stdout)
    return rc, set(modules)


def test_validate_imports_neither_pyinfra_nor_rendering_nor_wheel_metadata() -> None:
    rc, modules = _modules_after(["validate", "inventories/client.py"])

    assert rc == 0
    # pyinfra's CLI loader (gevent, paramiko), the renderers (jinja2, yaml), the wheel metadata
    # parser: seconds together, and nothing validate needs.
    heavy = ("pyinfra", "pyinfra_cli", "gevent", "paramiko", "jinja2", "yaml")
    assert sorted(m for m in modules if m.split(".")[0] in heavy) == []
    assert "packaging.requirements" not in modules
    assert "llmprov.core.render" not in modules


def test_validate_json_imports_no_pyinfra_either() -> None:
    rc, modules = _modules_after(["validate", "inventories/client.py", "--json"])

    assert rc == 0
    assert not any(m.startswith("pyinfra") for m in modules)


def test_the_startup_benchmark_quick_mode_times_every_command() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cli_startup.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["command"] for r in rows] == [
        "python -c pass",
        "floor: pydantic + rich",
        "llmprov --help",
        "llmprov validate inventories/client.py",
        "llmprov validate inventories/sandbox.py",
    ]
    # Every command ran to success (the sandbox inventory on the script's own state file).
    assert all(r["exit_codes"] == [0] for r in rows), rows
    assert all(r["cpu_s"] > 0 and r["wall_s"] > 0 for r in rows), rows
