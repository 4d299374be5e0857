"""CLI start-up: `llmprov --help` and `llmprov validate` on the shipped inventories, whole processes.

Each command is started `--runs` times (after one unstarted warm-up) and its wall and CPU seconds
(user + system of the finished child, as the OS counts them) are printed as medians. CPU is the
figure to read on a shared machine: wall time there is mostly waiting for a core.
Two yardsticks run the same way: `python -c pass` (the interpreter) and the floor any validate
pays: pydantic with the validators llmprov uses, one model built and validated, rich's table.
`inventories/sandbox.py` reads a sandbox state file: the script writes one host's state to a
temporary file, so no sandbox needs to be up.

    .venv/bin/python benchmarks/cli_startup.py [--runs 7] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEMA_VERSION = 1
ROOT = Path(__file__).resolve().parent.parent
FLOOR = """\
from typing import Annotated
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from rich.console import Console
from rich.table import Table
class M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    x: Annotated[int, Field(ge=1)]
    y: Annotated[str, BeforeValidator(str), AfterValidator(str.strip)]
M(x=1, y="a")
"""


def commands() -> dict[str, list[str]]:
    py = sys.executable
    return {
        "python -c pass": [py, "-c", "pass"],
        "floor: pydantic + rich": [py, "-c", FLOOR],
        "llmprov --help": [py, "-m", "llmprov", "--help"],
        "llmprov validate inventories/client.py": [
            py, "-m", "llmprov", "validate", "inventories/client.py",
        ],
        "llmprov validate inventories/sandbox.py": [
            py, "-m", "llmprov", "validate", "inventories/sandbox.py",
        ],
    }  # fmt: skip


def sandbox_state(folder: Path) -> Path:
    """A state file naming one sandbox host, as `llmprov sandbox up` writes it."""
    host = {
        "name": "sbx-1",
        "address": "10.231.1.2",
        "gateway": "10.231.1.1",
        "ssh_key": str(folder / "id"),
        "leader": 1,
        "nspawn_pid": 2,
        "index": 1,
        "host_dir": str(folder / "sbx-1"),
    }
    state = {
        "version": 1,
        "harness_id": "bench",
        "work_dir": str(folder),
        "owns_work_dir": False,
        "hosts": [host],
        "rules": [],
    }
    path = folder / "state.json"
    path.write_text(json.dumps(state))
    return path


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, cpu s, exit code) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def measure(runs: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="llmprov-startup-") as folder:
        env = {**os.environ, "LLMPROV_SANDBOX_STATE": str(sandbox_state(Path(folder)))}
        for name, argv in commands().items():
            run_once(argv, env)  # warm-up: .pyc files written, file cache filled
            samples = [run_once(argv, env) for _ in range(runs)]
            rows.append(
                {
                    "command": name,
                    "runs": runs,
                    "wall_s": statistics.median(s[0] for s in samples),
                    "cpu_s": statistics.median(s[1] for s in samples),
                    "exit_codes": sorted({s[2] for s in samples}),
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (median taken)")
    parser.add_argument("--quick", action="store_true", help="one run per command (CI)")
    parser.add_argument("--json", action="store_true", help="one JSON object per command")
    args = parser.parse_args()
    rows = measure(1 if args.quick else args.runs)
    load = os.getloadavg()[0]
    if args.json:
        for row in rows:
            print(json.dumps({"schema_version": SCHEMA_VERSION, "load_1m": load, **row}))
        return 0
    print(f"{'command':45s} {'wall s':>8s} {'cpu s':>8s}  exit   (median of {rows[0]['runs']})")
    for row in rows:
        print(f"{row['command']:45s} {row['wall_s']:8.3f} {row['cpu_s']:8.3f}  {row['exit_codes']}")
    print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
