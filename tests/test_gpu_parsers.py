"""Parsers of nvidia-smi, /proc and /sys output, driver detection order, and the pyinfra facts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version
from pyinfra.api.exceptions import FactProcessError

from llmprov.core.gpu import (
    SMI_FALLBACK_FIELDS,
    ComputeCapUnsupported,
    GpuInfo,
    NvidiaSmiError,
    detect_driver_version,
    lowest_compute_capability,
    nvidia_smi_query_argv,
    parse_compute_capability,
    parse_driver_version,
    parse_nvidia_smi_csv,
    parse_nvidia_smi_driver,
    parse_proc_driver_version,
    parse_sys_module_version,
)
from llmprov.core.resolve import resolve
from llmprov.facts.gpu import NvidiaDriverVersion, NvidiaGpus

FIXTURES = Path(__file__).parent / "fixtures" / "gpu"


def smi(name: str) -> list[str]:
    return (FIXTURES / "nvidia-smi" / name).read_text().splitlines()


def text(folder: str, name: str) -> str:
    return (FIXTURES / folder / name).read_text()


# ---- nvidia-smi --query-gpu -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "count", "name", "driver", "cc", "memory"),
    [
        ("a100x8-535.txt", 8, "NVIDIA A100-SXM4-80GB", "535.183.01", (8, 0), 81920),
        ("h100x2-550.txt", 2, "NVIDIA H100 80GB HBM3", "550.54.15", (9, 0), 81559),
        ("h100-570.txt", 1, "NVIDIA H100 PCIe", "570.133.20", (9, 0), 81559),
        ("rtx4090-560.txt", 1, "NVIDIA GeForce RTX 4090", "560.35.03", (8, 9), 24564),
        ("l4-550.txt", 1, "NVIDIA L4", "550.90.07", (8, 9), 23034),
        ("b200x2-580.txt", 2, "NVIDIA B200", "580.65.06", (10, 0), 183359),
        ("gtx1080ti-535.txt", 1, "NVIDIA GeForce GTX 1080 Ti", "535.183.01", (6, 1), 11264),
        ("v100-535.txt", 1, "Tesla V100-SXM2-32GB", "535.183.06", (7, 0), 32768),
        ("gb10-580-memory-na.txt", 1, "NVIDIA GB10", "580.95.05", (12, 1), None),
        ("vgpu-compute-cap-not-supported.txt", 1, "GRID A100D-40C", "550.90.07", None, 40960),
        ("t4-470-fallback.txt", 1, "Tesla T4", "470.256.02", None, 15109),
    ],
)
def test_nvidia_smi_rows(
    fixture: str,
    count: int,
    name: str,
    driver: str,
    cc: tuple[int, int] | None,
    memory: int | None,
) -> None:
    gpus = parse_nvidia_smi_csv(smi(fixture))
    assert [g.index for g in gpus] == list(range(count))
    first = gpus[0]
    assert first.name == name
    assert first.driver_version == Version(driver)
    assert first.compute_capability == cc
    assert first.memory_mib == memory


def test_mixed_gpus_keep_their_own_capability_and_the_lowest_wins() -> None:
    gpus = parse_nvidia_smi_csv(smi("mixed-4090-1080ti-560.txt"))
    assert [g.compute_capability for g in gpus] == [(8, 9), (6, 1)]
    assert lowest_compute_capability(gpus) == (6, 1)


def test_lowest_compute_capability_skips_unknown_values() -> None:
    unknown = GpuInfo(0, "x", None, None, None)
    known = GpuInfo(1, "y", None, (9, 0), None)
    assert lowest_compute_capability([unknown, known]) == (9, 0)
    assert lowest_compute_capability([unknown]) is None
    assert lowest_compute_capability([]) is None


def test_old_driver_rejecting_compute_cap_says_to_use_the_fallback_query() -> None:
    with pytest.raises(ComputeCapUnsupported, match=r"memory\.total instead"):
        parse_nvidia_smi_csv(smi("t4-470-compute-cap-rejected.txt"))


def test_driver_not_loaded_is_an_error_with_nvidia_smis_words() -> None:
    with pytest.raises(NvidiaSmiError, match="couldn't communicate with the NVIDIA driver"):
        parse_nvidia_smi_csv(smi("driver-not-loaded.txt"))


def test_no_devices_and_no_output_mean_no_gpus() -> None:
    assert parse_nvidia_smi_csv(smi("no-devices.txt")) == []
    assert parse_nvidia_smi_csv(smi("jetson-absent.txt")) == []


def test_other_invalid_field_and_bad_memory_are_errors() -> None:
    with pytest.raises(NvidiaSmiError, match="'foo'") as info:
        parse_nvidia_smi_csv(['Field "foo" is not a valid field to query.'])
    assert not isinstance(info.value, ComputeCapUnsupported)
    with pytest.raises(NvidiaSmiError, match=r"memory\.total"):
        parse_nvidia_smi_csv(["NVIDIA L4, 550.90.07, 8.9, lots"])


def test_memory_units() -> None:
    (gpu,) = parse_nvidia_smi_csv(["NVIDIA L4, 550.90.07, 8.9, 22 GiB"])
    assert gpu.memory_mib == 22528
    (bare,) = parse_nvidia_smi_csv(["NVIDIA L4, 550.90.07, 8.9, 23034"])
    assert bare.memory_mib == 23034


def test_a_name_with_a_comma_is_kept_whole() -> None:
    (gpu,) = parse_nvidia_smi_csv(["Quadro RTX 8000, Rev A, 535.183.01, 7.5, 49152 MiB"])
    assert gpu.name == "Quadro RTX 8000, Rev A"
    assert gpu.compute_capability == (7, 5)


def test_gpu_as_dict_is_plain_data() -> None:
    (gpu,) = parse_nvidia_smi_csv(smi("gb10-580-memory-na.txt"))
    assert gpu.as_dict() == {
        "index": 0,
        "name": "NVIDIA GB10",
        "driver_version": "580.95.05",
        "compute_capability": "12.1",
        "memory_mib": None,
    }


def test_query_argv() -> None:
    assert nvidia_smi_query_argv() == [
        "nvidia-smi",
        "--query-gpu=name,driver_version,compute_cap,memory.total",
        "--format=csv,noheader",
    ]
    assert nvidia_smi_query_argv(SMI_FALLBACK_FIELDS)[1] == (
        "--query-gpu=name,driver_version,memory.total"
    )


@pytest.mark.parametrize(
    ("value", "expected"), [("8.9", (8, 9)), (" 12.0 ", (12, 0)), ("10.0", (10, 0))]
)
def test_parse_compute_capability(value: str, expected: tuple[int, int]) -> None:
    assert parse_compute_capability(value) == expected


@pytest.mark.parametrize("value", ["8", "8.9.1", "sm_89", "[N/A]", ""])
def test_parse_compute_capability_rejects_other_text(value: str) -> None:
    with pytest.raises(ValueError, match="not a compute capability"):
        parse_compute_capability(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("570.26", "570.26"), ("535.183.01", "535.183.01"), ("[N/A]", None), ("abc", None)],
)
def test_parse_driver_version(value: str, expected: str | None) -> None:
    found = parse_driver_version(value)
    assert found == (None if expected is None else Version(expected))


# ---- /proc, /sys, detection order -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "version"),
    [
        ("x86_64-550.54.14.txt", "550.54.14"),
        ("open-x86_64-570.133.20.txt", "570.133.20"),
        ("open-aarch64-580.65.06.txt", "580.65.06"),
        ("aarch64-535.183.01.txt", "535.183.01"),
        ("x86_64-470.256.02.txt", "470.256.02"),
    ],
)
def test_proc_driver_version(fixture: str, version: str) -> None:
    assert parse_proc_driver_version(text("proc", fixture)) == Version(version)


def test_proc_without_an_nvrm_line_is_none() -> None:
    assert parse_proc_driver_version("GCC version:  gcc version 12.2.0\n") is None
    assert parse_proc_driver_version("") is None


def test_sys_module_version() -> None:
    assert parse_sys_module_version(text("sys", "570.133.20.txt")) == Version("570.133.20")
    assert parse_sys_module_version("") is None
    assert parse_sys_module_version("570.133.20\n550.54.14\n") is None


def test_nvidia_smi_driver_query() -> None:
    assert parse_nvidia_smi_driver(["570.133.20", "570.133.20"]) == Version("570.133.20")
    assert parse_nvidia_smi_driver(["[N/A]"]) is None


def test_detection_order_is_override_sys_proc_smi() -> None:
    sys_text = text("sys", "570.133.20.txt")
    proc_text = text("proc", "x86_64-550.54.14.txt")
    smi_lines = ["535.183.01"]
    everything = detect_driver_version(
        override="580.65.06", sys_module=sys_text, proc_version=proc_text, nvidia_smi=smi_lines
    )
    assert everything is not None
    assert (everything.version, everything.source) == (Version("580.65.06"), "override")
    no_override = detect_driver_version(
        sys_module=sys_text, proc_version=proc_text, nvidia_smi=smi_lines
    )
    assert no_override is not None and no_override.source == "sys_module"
    proc_first = detect_driver_version(proc_version=proc_text, nvidia_smi=smi_lines)
    assert proc_first is not None
    assert (proc_first.version, proc_first.source) == (Version("550.54.14"), "proc")
    smi_last = detect_driver_version(nvidia_smi=smi_lines)
    assert smi_last is not None and smi_last.source == "nvidia-smi"
    assert detect_driver_version() is None


def test_an_unreadable_source_falls_through_to_the_next() -> None:
    found = detect_driver_version(
        sys_module="garbage", proc_version=text("proc", "x86_64-470.256.02.txt")
    )
    assert found is not None and found.source == "proc"


def test_a_bad_override_is_an_error_not_a_silent_detection() -> None:
    with pytest.raises(ValueError, match="driver override"):
        detect_driver_version(override="latest", sys_module="570.133.20")


# ---- the pyinfra facts ------------------------------------------------------------------------


def test_gpus_fact_processes_nvidia_smi_rows() -> None:
    gpus = NvidiaGpus().process(smi("b200x2-580.txt"))
    assert [g.name for g in gpus] == ["NVIDIA B200", "NVIDIA B200"]
    assert lowest_compute_capability(gpus) == (10, 0)


def test_gpus_fact_defaults_to_no_gpus_and_its_command_tolerates_a_missing_nvidia_smi() -> None:
    assert NvidiaGpus.default() == []
    command = NvidiaGpus().command()
    assert command.startswith("if command -v nvidia-smi >/dev/null 2>&1; then ")
    assert command.endswith("; true")
    # The fallback query runs only when the full one fails.
    assert "--query-gpu=name,driver_version,compute_cap,memory.total" in command
    assert "else nvidia-smi --query-gpu=name,driver_version,memory.total" in command


def _run_fact_command(command: str, stub: str | None, tmp_path: Path) -> list[str]:
    """Run a fact's command under sh with PATH holding only a stub nvidia-smi (or none)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sed", "cat"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    if stub is not None:
        script = bin_dir / "nvidia-smi"
        script.write_text(stub)
        script.chmod(0o755)
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_gpus_command_prints_nothing_without_nvidia_smi(tmp_path: Path) -> None:
    assert _run_fact_command(NvidiaGpus().command(), None, tmp_path) == []


def test_gpus_command_falls_back_when_compute_cap_is_rejected(tmp_path: Path) -> None:
    stub = (
        "#!/bin/sh\n"
        'case "$1" in *compute_cap*) echo \'Field "compute_cap" is not a valid field to query.\'; '
        "exit 2;; esac\n"
        "echo 'Tesla T4, 470.256.02, 15109 MiB'\n"
    )
    lines = _run_fact_command(NvidiaGpus().command(), stub, tmp_path)
    (gpu,) = NvidiaGpus().process(lines)
    assert (gpu.name, gpu.compute_capability) == ("Tesla T4", None)


def test_gpus_command_passes_full_rows_through(tmp_path: Path) -> None:
    stub = "#!/bin/sh\necho 'NVIDIA L4, 550.90.07, 8.9, 23034 MiB'\n"
    lines = _run_fact_command(NvidiaGpus().command(), stub, tmp_path)
    assert [g.compute_capability for g in NvidiaGpus().process(lines)] == [(8, 9)]


def test_driver_command_tags_nvidia_smi_output(tmp_path: Path) -> None:
    stub = "#!/bin/sh\necho 570.133.20\n"
    lines = _run_fact_command(NvidiaDriverVersion().command(), stub, tmp_path)
    # This machine's own /sys or /proc may answer first; the smi line is tagged either way.
    assert "nvidia-smi: 570.133.20" in lines
    assert NvidiaDriverVersion().process(lines) is not None


def test_gpus_fact_turns_nvidia_smi_errors_into_fact_errors() -> None:
    with pytest.raises(FactProcessError, match="couldn't communicate"):
        NvidiaGpus().process(smi("driver-not-loaded.txt"))


def test_driver_fact_reads_tagged_sources_in_uvs_order() -> None:
    proc_lines = [
        "proc: " + line for line in text("proc", "open-x86_64-570.133.20.txt").splitlines()
    ]
    found = NvidiaDriverVersion().process([*proc_lines, "nvidia-smi: 570.133.20"])
    assert found is not None
    assert (found.version, found.source) == (Version("570.133.20"), "proc")
    with_sys = NvidiaDriverVersion().process(["sys_module: 570.133.20", *proc_lines])
    assert with_sys is not None and with_sys.source == "sys_module"
    only_smi = NvidiaDriverVersion().process(["nvidia-smi: 550.54.15"])
    assert only_smi is not None and only_smi.source == "nvidia-smi"


def test_driver_fact_is_none_where_nothing_is_there() -> None:
    assert NvidiaDriverVersion.default() is None
    assert NvidiaDriverVersion().process([]) is None
    command = NvidiaDriverVersion().command()
    assert command.index("/sys/module/nvidia/version") < command.index(
        "/proc/driver/nvidia/version"
    )
    assert command.index("/proc/driver/nvidia/version") < command.index("nvidia-smi")


# ---- fixtures through to a resolution ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "vllm", "variant"),
    [
        ("a100x8-535.txt", "0.19.1", "cu128"),
        ("h100-570.txt", "0.19.1", "cu128"),
        ("rtx4090-560.txt", "0.19.1", "cu128"),
        ("b200x2-580.txt", "0.33.0", "cu130"),
        ("gb10-580-memory-na.txt", "0.33.0", "cu130"),
        ("v100-535.txt", "0.15.1", "cu128"),
    ],
)
def test_fixture_hosts_resolve(fixture: str, vllm: str, variant: str) -> None:
    gpus = NvidiaGpus().process(smi(fixture))
    r = resolve(
        gpus[0].driver_version, lowest_compute_capability(gpus), "linux", "x86_64", None, False
    )
    assert (r.vllm, r.variant) == (vllm, variant)
