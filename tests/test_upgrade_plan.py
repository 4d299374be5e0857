"""The upgrade protocol on llama.cpp, rollback and uninstall: exact plans on pyinfra's `@fake` host,
and the switch-back of a version that does not answer, run for real in bash against a local server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixture_runner import Plan, loose_facts, run_deploy

from llmprov.core.config import HostConfig
from llmprov.core.layout import EngineLayout
from llmprov.core.llamacpp_build import BuildTarget, build_key, cmake_flags, source_for
from llmprov.core.upgrade import STATE_PATH, Deployed, EngineState, InstallState, render_state
from llmprov.core.validate import ControllerFiles, validate_host
from llmprov.deploy import llamacpp, upgrade
from llmprov.deploy.lifecycle import LifecycleError, rollback_host, uninstall_host
from llmprov.deploy.upgrade import Readiness, wait_command

HOST = "@fake/llamacpp-host"
LAYOUT = EngineLayout("llamacpp")
UNIT = "llmprov-llamacpp.service"
T0 = "2026-01-01T00:00:00+00:00"
OS_RELEASE = {"ID": "debian", "VERSION_ID": "12"}


def config(base: Path, **data: Any) -> HostConfig:
    model = base / "smollm2.gguf"
    model.write_bytes(b"GGUF fake model")
    host_data: dict[str, Any] = {"engine": "llamacpp", "model": f"file://{model}"}
    host_data.update(data)
    files = ControllerFiles(read=lambda p: Path(p).read_text(), exists=lambda p: Path(p).exists())
    cfg = validate_host(HOST, host_data, files)
    assert not isinstance(cfg, list), [str(e) for e in cfg]
    return cfg


def key_for(cfg: HostConfig) -> str:
    s = cfg.settings.llamacpp
    target = BuildTarget("x86_64", "debian-12", "cpu0")
    return build_key(source_for(s), cmake_flags(s, cuda=False), target)


@pytest.fixture(autouse=True)
def controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A controller cache in tmp_path (builds come from it, never from a compile) and a fixed clock."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LLMPROV_CACHE", str(cache))
    monkeypatch.setattr(upgrade, "now", lambda: T0)
    yield cache


def cached_build(cache: Path, key: str) -> None:
    (cache / "llamacpp").mkdir(parents=True, exist_ok=True)
    (cache / "llamacpp" / f"{key}.tar.gz").write_bytes(b"tar")
    # The digest recorded when it was built: without it the cached build is not trusted.
    digest = hashlib.sha256(b"tar").hexdigest()
    (cache / "llamacpp" / f"{key}.tar.gz.sha256").write_text(f"{digest}  {key}.tar.gz\n")


def record(current: Deployed, *previous: Deployed) -> list[str]:
    return render_state({"llamacpp": EngineState(current, previous)}).splitlines()


def deployed(cfg: HostConfig, key: str, version: str | None = None) -> Deployed:
    return upgrade.Deployed(
        "llamacpp",
        version or source_for(cfg.settings.llamacpp).version,
        key,
        cfg.model_ref.raw,
        upgrade.model_digest(cfg),
        T0,
    )


def answers(installed: InstallState, state: list[str] | None) -> dict[tuple[str, str], Any]:
    return {
        ("Arch", ""): "x86_64",
        ("OsRelease", ""): OS_RELEASE,
        ("CpuFlagsDigest", ""): "cpu0",
        ("InstalledVersions", ""): installed,
        ("StateRecord", ""): "\n".join(state) if state else None,
    }


def deploy(cfg: HostConfig, monkeypatch: pytest.MonkeyPatch, facts: dict[Any, Any]) -> Plan:
    return run_deploy(
        lambda: llamacpp.deploy_llamacpp(cfg), monkeypatch, loose_facts(facts), HOST, None
    )


def in_order(plan: Plan, *prefixes: str) -> None:
    at = [next(i for i, n in enumerate(plan.names) if n.startswith(p)) for p in prefixes]
    assert at == sorted(at), plan.names


def uploaded_record(plan: Plan) -> dict[str, Any]:
    (upload,) = [c for c in plan.commands("Record ") if isinstance(c, dict)]
    assert upload["upload"] == STATE_PATH
    return dict(json.loads(upload["text"]))


# ---------------------------------------------------------------- llama.cpp upgrades


def test_a_fresh_host_stages_checks_the_binary_then_switches_and_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, controller: Path
) -> None:
    cfg = config(tmp_path)
    key = key_for(cfg)
    cached_build(controller, key)
    plan = deploy(cfg, monkeypatch, answers(InstallState((), None), None))
    assert not plan.failed
    in_order(
        plan,
        f"Unpack cached build {key}",
        f"Check llama.cpp build {key} runs",
        f"Switch {LAYOUT.current} to {key}",
        f"Run {UNIT}",
        f"Wait for llama.cpp build {key} on /health",
        f"Record llamacpp {key}",
    )
    assert plan.commands(f"Check llama.cpp build {key} runs") == [
        f"{LAYOUT.version_dir(key)}/bin/llama-server --version"
    ]
    # Nothing served before: no version to switch back to.
    assert "rolled back" not in plan.commands("Wait for")[0]
    current = uploaded_record(plan)["engines"]["llamacpp"]["current"]
    assert (current["key"], current["model"]) == (key, cfg.model_ref.raw)
    assert current["model_digest"] == upgrade.model_digest(cfg) is not None


def test_an_upgrade_switches_only_after_the_check_and_switches_back_if_unanswered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, controller: Path
) -> None:
    cfg = config(tmp_path)
    key = key_for(cfg)
    cached_build(controller, key)
    old = deployed(cfg, "0.3.30-old", "0.3.30")
    plan = deploy(
        cfg, monkeypatch, answers(InstallState(("0.3.30-old",), "0.3.30-old"), record(old))
    )
    in_order(plan, "Check llama.cpp", f"Switch {LAYOUT.current} to {key} (from 0.3.30-old)")
    wait = plan.commands("Wait for")[0]
    assert (
        shlex.join(["ln", "-sfn", LAYOUT.version_dir("0.3.30-old"), f"{LAYOUT.current}.new"])
        in wait
    )
    assert f"systemctl restart {UNIT}" in wait
    engines = uploaded_record(plan)["engines"]["llamacpp"]
    assert engines["current"]["key"] == key
    assert [p["key"] for p in engines["previous"]] == ["0.3.30-old"]
    assert not [n for n in plan.names if n.startswith("Remove older")]


@pytest.mark.parametrize(
    ("keep", "removed"), [(1, ["0.3.29-older"]), (2, []), (0, ["0.3.29-older", "0.3.30-old"])]
)
def test_versions_past_keep_versions_are_removed_after_the_new_one_answers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    controller: Path,
    keep: int,
    removed: list[str],
) -> None:
    cfg = config(tmp_path, keep_versions=keep)
    key = key_for(cfg)
    cached_build(controller, key)
    old, older = deployed(cfg, "0.3.30-old"), deployed(cfg, "0.3.29-older")
    installed = InstallState(("0.3.29-older", "0.3.30-old"), "0.3.30-old")
    plan = deploy(cfg, monkeypatch, answers(installed, record(old, older)))
    prune = [n for n in plan.names if n.startswith("Remove older")]
    if not removed:
        assert prune == []
        return
    in_order(plan, "Wait for", "Record", "Remove older")
    assert plan.commands("Remove older") == [
        shlex.join(["rm", "-rf", *(LAYOUT.version_dir(k) for k in removed)])
    ]


def test_a_rerun_with_nothing_new_switches_records_and_removes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, controller: Path
) -> None:
    cfg = config(tmp_path)
    key = key_for(cfg)
    now_serving = deployed(cfg, key)
    plan = deploy(cfg, monkeypatch, answers(InstallState((key,), key), record(now_serving)))
    for prefix in ("Check ", "Switch", "Record", "Remove", "Upload cached", "Unpack"):
        assert not [n for n in plan.names if n.startswith(prefix)], plan.names
    assert f"{LAYOUT.current} already points at {key}" in plan.notes
    assert f"{STATE_PATH} already records llamacpp {key}" in plan.notes


def test_a_damaged_record_stops_the_host_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, controller: Path
) -> None:
    cfg = config(tmp_path)
    cached_build(controller, key_for(cfg))
    with pytest.raises(upgrade.UpgradeError, match=rf"{HOST}: {STATE_PATH} is not JSON"):
        deploy(cfg, monkeypatch, answers(InstallState((), None), ["{"]))


# ---------------------------------------------------------------- rollback and uninstall


def test_rollback_switches_to_the_earlier_version_proves_it_and_swaps_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    new, old = deployed(cfg, "b-new"), deployed(cfg, "a-old")
    facts = answers(InstallState(("a-old", "b-new"), "b-new"), record(new, old))
    plan = run_deploy(lambda: rollback_host(cfg), monkeypatch, loose_facts(facts), HOST, None)
    in_order(
        plan,
        f"Switch {LAYOUT.current} to a-old (from b-new)",
        f"Run {UNIT}",
        "Wait for llama.cpp build a-old",
        "Record rollback of llamacpp to a-old",
    )
    # Should the earlier version not answer, the link returns to the one rolled back from.
    assert (
        shlex.join(["ln", "-sfn", LAYOUT.version_dir("b-new"), f"{LAYOUT.current}.new"])
        in (plan.commands("Wait for")[0])
    )
    engines = uploaded_record(plan)["engines"]["llamacpp"]
    assert engines["current"]["key"] == "a-old"
    assert [p["key"] for p in engines["previous"]] == ["b-new"]


def test_rollback_without_an_earlier_version_is_refused_before_any_operation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    facts = answers(InstallState(("b-new",), "b-new"), record(deployed(cfg, "b-new")))
    with pytest.raises(LifecycleError, match=rf"{HOST}: rollback: no earlier llamacpp version"):
        run_deploy(lambda: rollback_host(cfg), monkeypatch, loose_facts(facts), HOST, None)


def present(paths: list[str], folders: list[str]) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {
        ("File", p): {"mode": 644, "user": "root", "group": "root", "size": 1} for p in paths
    }
    found.update(
        {("Directory", p): {"mode": 755, "user": "root", "group": "root"} for p in folders}
    )
    found[("SystemdStatus", "")] = {UNIT: True}
    found[("SystemdEnabled", "")] = {UNIT: True}
    return found


INSTALLED_FILES = [f"/etc/systemd/system/{UNIT}", "/etc/llmprov/llamacpp.env"]
INSTALLED_FOLDERS = [
    LAYOUT.root,
    LAYOUT.cache_dir,
    LAYOUT.state_dir,
    f"/etc/systemd/system/{UNIT}.d",
]


@pytest.mark.parametrize("keep_models", [True, False])
def test_uninstall_removes_what_the_deploy_wrote_and_models_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_models: bool
) -> None:
    cfg = config(tmp_path)
    facts = present(INSTALLED_FILES, INSTALLED_FOLDERS)
    facts[("StateRecord", "")] = "\n".join(record(deployed(cfg, "a")))
    facts[("File", STATE_PATH)] = {"mode": 644, "user": "root", "group": "root", "size": 1}
    plan = run_deploy(
        lambda: uninstall_host(cfg, keep_models=keep_models), monkeypatch, loose_facts(facts), HOST
    )
    assert not plan.failed
    assert plan.names[0] == f"Stop {UNIT}"
    removed = {n.removeprefix("Remove ") for n in plan.names if n.startswith("Remove ")}
    expected = {*INSTALLED_FILES, LAYOUT.root, LAYOUT.cache_dir, f"/etc/systemd/system/{UNIT}.d"}
    expected.add(STATE_PATH)
    if not keep_models:
        expected.add(LAYOUT.state_dir)
    assert removed == expected
    assert "Reload systemd" in plan.names


def test_uninstall_keeps_other_engines_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    ollama = Deployed("ollama", "0.12.6", "0.12.6", "ollama://smollm2:135m", None, T0)
    state = {"llamacpp": EngineState(deployed(cfg, "a")), "ollama": EngineState(ollama)}
    facts = present([], [])
    facts[("StateRecord", "")] = render_state(state)
    plan = run_deploy(lambda: uninstall_host(cfg), monkeypatch, loose_facts(facts), HOST, None)
    assert uploaded_record(plan)["engines"] == {
        "ollama": json.loads(render_state(state))["engines"]["ollama"]
    }


def test_uninstall_on_a_clean_host_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    plan = run_deploy(lambda: uninstall_host(cfg), monkeypatch, loose_facts({}), HOST)
    assert plan.ops == []
    assert plan.notes == [f"{STATE_PATH} records no llamacpp deploy"]


# ---------------------------------------------------------------- the switch back, for real


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A folder whose `health` file a local HTTP server serves once something starts it."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "health").write_text('{"status":"ok"}')
    port = free_port()
    yield root, port
    pid = tmp_path / "server.pid"
    if pid.exists():
        subprocess.run(["kill", pid.read_text().strip()], check=False)


def stub_systemctl(tmp_path: Path, root: Path, port: int) -> Path:
    """A `systemctl` that logs its arguments and starts the old version's server on `restart`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    server = shlex.join(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(root),
            str(port),
        ]
    )
    script = bin_dir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        # `show` answers from files a test writes: SubState and NRestarts of the unit.
        'if [ "$1" = show ]; then\n'
        f'  [ "$3" = NRestarts ] && {{ cat {shlex.quote(str(tmp_path / "nrestarts"))} 2>/dev/null || echo 0; }}\n'
        f'  [ "$3" = SubState ] && {{ cat {shlex.quote(str(tmp_path / "substate"))} 2>/dev/null || echo running; }}\n'
        "  exit 0\n"
        "fi\n"
        f'echo "$@" >> {shlex.quote(str(tmp_path / "systemctl.log"))}\n'
        'case "$1" in start|restart) ;; *) exit 0;; esac\n'
        f"{server} >/dev/null 2>&1 &\n"
        f"echo $! > {shlex.quote(str(tmp_path / 'server.pid'))}\n"
    )
    script.chmod(0o755)
    journal = bin_dir / "journalctl"
    journal.write_text(
        f"#!/bin/sh\necho \"$@\" > {shlex.quote(str(tmp_path / 'journal.args'))}\necho 'RuntimeError: plugin broke'\n"
    )
    journal.chmod(0o755)
    return bin_dir


def run_wait(
    tmp_path: Path, port: int, bin_dir: Path, timeout_s: int, discard: bool = False
) -> subprocess.CompletedProcess[str]:
    cfg = config(tmp_path, port=port)
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "v2")
    ready = Readiness("/health", llamacpp.HEALTHY, llamacpp.HEALTHY, timeout_s, "new build")
    failed = str(tmp_path / "v2") if discard else None
    cmd = wait_command(cfg, ready, (str(current), str(tmp_path / "v1"), UNIT), failed)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env, timeout=120)


def test_a_new_version_that_never_answers_is_switched_back_and_the_old_one_proved(
    tmp_path: Path, served: tuple[Path, int]
) -> None:
    root, port = served
    done = run_wait(tmp_path, port, stub_systemctl(tmp_path, root, port), timeout_s=4)
    assert done.returncode == 1
    assert "new build did not answer" in done.stderr
    assert "serving again" in done.stderr, done.stderr
    assert os.readlink(tmp_path / "current") == str(tmp_path / "v1")
    assert (tmp_path / "systemctl.log").read_text() == f"reset-failed {UNIT}\nrestart {UNIT}\n"


@pytest.mark.parametrize(("substate", "restarts"), [("auto-restart", "0"), ("running", "1")])
def test_a_new_version_that_exits_is_switched_back_at_once_with_its_last_lines(
    tmp_path: Path, served: tuple[Path, int], substate: str, restarts: str
) -> None:
    root, port = served
    bin_dir = stub_systemctl(tmp_path, root, port)
    # After the wait began, the unit's server exited: systemd waits to restart it, or already did.
    (tmp_path / "substate").write_text(substate + "\n")
    (tmp_path / "nrestarts").write_text("0\n")
    script = bin_dir / "systemctl"
    text = script.read_text().replace(
        f"cat {shlex.quote(str(tmp_path / 'nrestarts'))}",
        f"{{ [ -e {shlex.quote(str(tmp_path / 'asked'))} ] && echo {restarts} || "
        f"{{ touch {shlex.quote(str(tmp_path / 'asked'))}; echo 0; }}; }}",
    )
    script.write_text(text)
    started = time.monotonic()
    done = run_wait(tmp_path, port, bin_dir, timeout_s=60, discard=True)
    assert time.monotonic() - started < 30, "the wait must end when the server exits"
    assert done.returncode == 1
    assert "new build exited before it answered (llmprov-llamacpp.service)" in done.stderr
    assert "RuntimeError: plugin broke" in done.stderr
    assert "did not answer on" not in done.stderr
    assert "serving again" in done.stderr, done.stderr
    assert (tmp_path / "journal.args").read_text().split()[0] == f"_SYSTEMD_UNIT={UNIT}"
    assert os.readlink(tmp_path / "current") == str(tmp_path / "v1")
    # The failed version is gone, the one serving again is not: the host is as it was before.
    assert not (tmp_path / "v2").exists() and (tmp_path / "v1").is_dir()
    assert f"removed {tmp_path / 'v2'}" in done.stderr


def test_a_new_version_that_answers_stays(tmp_path: Path, served: tuple[Path, int]) -> None:
    root, port = served
    bin_dir = stub_systemctl(tmp_path, root, port)
    subprocess.run([str(bin_dir / "systemctl"), "start", "new"], check=True)
    done = run_wait(tmp_path, port, bin_dir, timeout_s=30)
    assert done.returncode == 0, done.stderr
    assert os.readlink(tmp_path / "current") == str(tmp_path / "v2")
    assert (tmp_path / "systemctl.log").read_text() == "start new\n"


def test_rollback_to_a_version_deployed_before_records_waits_for_any_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, engine="ollama", model="ollama://smollm2:135m")
    from llmprov.core.upgrade import record_deploy

    new = Deployed("ollama", "0.12.6", "0.12.6", "ollama://smollm2:135m", None, T0)
    state = record_deploy({}, new, keep=1, running="0.12.5")
    assert state is not None
    facts = {
        ("InstalledVersions", ""): InstallState(("0.12.5", "0.12.6"), "0.12.6"),
        ("StateRecord", ""): render_state(state),
    }
    plan = run_deploy(lambda: rollback_host(cfg), monkeypatch, loose_facts(facts), HOST, None)
    wait = plan.commands("Wait for")[0]
    assert "'\"version\":'" in wait and '"version":"unrecorded"' not in wait
    # A rollback that fails keeps the version it could not start: the record still names it.
    assert "rm -rf" not in wait and "systemctl reset-failed" in wait


# ---------------------------------------------------------------- the spare-port check, for real

STANDIN_SERVER = """
import sys, http.server
args = sys.argv[1:]
if "--fail" in args:
    print("cannot load the model", file=sys.stderr)
    sys.exit(1)
port = int(args[args.index("--port") + 1])
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def spare_check(tmp_path: Path, *extra: str, first_port: int) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    runuser = bin_dir / "runuser"
    # Stands in for util-linux's runuser (root only): drops `-u USER --` and runs the rest.
    runuser.write_text('#!/bin/sh\nshift 3\nexec "$@"\n')
    runuser.chmod(0o755)
    server = tmp_path / "server.py"
    server.write_text(STANDIN_SERVER)
    ready = Readiness("/health", llamacpp.HEALTHY, llamacpp.HEALTHY, 20, "build k")
    argv = [sys.executable, str(server), *extra]
    cmd = upgrade.spare_port_command("build k", argv, "llamacpp", ready, first_port)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env, timeout=120)


def test_the_spare_port_check_passes_when_the_new_build_answers_and_stops_it(
    tmp_path: Path,
) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    first = int(busy.getsockname()[1])
    try:
        done = spare_check(tmp_path, first_port=first)
    finally:
        busy.close()
    assert done.returncode == 0, done.stderr
    # The check's own server is gone: nothing answers on the ports it may have taken.
    for port in range(first + 1, first + 4):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0


def test_the_spare_port_check_fails_with_the_log_when_the_build_exits(tmp_path: Path) -> None:
    done = spare_check(tmp_path, "--fail", first_port=free_port())
    assert done.returncode == 1
    assert "build k exited before it answered" in done.stderr
    assert "cannot load the model" in done.stderr


def test_a_cpu_upgrade_checks_on_a_spare_port_before_the_switch_and_a_gpu_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, controller: Path
) -> None:
    cfg = config(tmp_path)
    key = key_for(cfg)
    cached_build(controller, key)
    old = deployed(cfg, "0.3.30-old")
    facts = answers(InstallState(("0.3.30-old",), "0.3.30-old"), record(old))
    plan = deploy(cfg, monkeypatch, facts)
    in_order(
        plan, "Check llama.cpp", f"Check llama.cpp build {key} answers on a spare port", "Switch"
    )
    (command,) = plan.commands("Check llama.cpp build " + key + " answers")
    assert "runuser -u llamacpp --" in command and "--ctx-size 512" in command
    assert f"--port {cfg.port}" not in command
    monkeypatch.setattr(HostConfig, "has_nvidia", property(lambda self: True))
    assert not [n for n in deploy(cfg, monkeypatch, facts).names if "spare port" in n]
