"""The CUDA matrix tables: upstream facts they must state, and their internal consistency."""

from __future__ import annotations

import pytest
from packaging.version import Version

from llmprov.core.cuda_matrix import (
    BUILD_ARCHITECTURES,
    LINUX_DRIVER_MINIMUMS,
    TORCH_RELEASES,
    VLLM_CPU_RELEASES,
    VLLM_RELEASES,
    Cuda,
    DriverFit,
    compat_min_driver,
    covers,
    driver_fit,
    first_cuda_for,
    format_driver,
    highest_native_cuda,
    index_url,
    native_min_driver,
    torch_release,
    vllm_cpu_release,
    vllm_release,
)

# ---- (a) drivers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cuda", "driver"),
    [
        ("12.0", "525.60.13"),
        ("12.4", "550.54.14"),
        ("12.6", "560.28.03"),
        ("12.8", "570.26"),
        ("12.9", "575.51.03"),
        ("13.0", "580.65.06"),
        ("13.2", "595.45.04"),
    ],
)
def test_native_driver_minimums_are_the_release_notes_values(cuda: str, driver: str) -> None:
    assert native_min_driver(Cuda.parse(cuda)) == Version(driver)


def test_driver_table_is_newest_first() -> None:
    toolkits = [t for t, _ in LINUX_DRIVER_MINIMUMS]
    drivers = [d for _, d in LINUX_DRIVER_MINIMUMS]
    assert toolkits == sorted(toolkits, reverse=True)
    assert drivers == sorted(drivers, reverse=True)


def test_minor_version_compatibility_floors() -> None:
    assert compat_min_driver(12) == Version("525.60.13")
    assert compat_min_driver(13) == Version("580")
    assert compat_min_driver(10) is None


@pytest.mark.parametrize(
    ("driver", "expected"),
    [
        ("470.256.02", None),
        ("525.60.13", "12.0"),
        ("535.183.01", "12.2"),
        ("550.54.14", "12.4"),
        ("560.35.03", "12.6"),
        ("570.25", "12.6"),
        ("570.26", "12.8"),
        ("575.51.03", "12.9"),
        ("580.65.05", "12.9"),
        ("580.65.06", "13.0"),
        ("590.44.01", "13.0"),
        ("595.45.04", "13.2"),
    ],
)
def test_highest_native_cuda_of_a_driver(driver: str, expected: str | None) -> None:
    found = highest_native_cuda(Version(driver))
    assert (None if found is None else str(found)) == expected


@pytest.mark.parametrize(
    ("driver", "cuda", "fit"),
    [
        ("570.26", "12.8", DriverFit.NATIVE),
        ("535.183.01", "12.8", DriverFit.MINOR_VERSION),
        ("525.60.13", "12.9", DriverFit.MINOR_VERSION),
        ("520.61.05", "12.0", None),
        ("580.65.06", "13.0", DriverFit.NATIVE),
        ("580.10", "13.0", DriverFit.MINOR_VERSION),
        ("580.95.05", "13.2", DriverFit.MINOR_VERSION),
        ("575.57.08", "13.0", None),
    ],
)
def test_driver_fit_native_minor_version_or_none(
    driver: str, cuda: str, fit: DriverFit | None
) -> None:
    assert driver_fit(Version(driver), Cuda.parse(cuda)) is fit


def test_format_driver_keeps_nvidias_zero_padding() -> None:
    assert format_driver(Version("580.65.06")) == "580.65.06"
    assert format_driver(Version("570.26")) == "570.26"
    assert str(Version("580.65.06")) == "580.65.6"  # why format_driver exists


# ---- CUDA versions and variants ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cuda"),
    [("12.8", Cuda(12, 8)), ("cu128", Cuda(12, 8)), ("cu130", Cuda(13, 0)), ("cu118", Cuda(11, 8))],
)
def test_cuda_parses_dotted_and_variant_names(text: str, cuda: Cuda) -> None:
    assert Cuda.parse(text) == cuda


def test_cuda_variant_and_str_round_trip() -> None:
    assert Cuda(13, 0).variant == "cu130"
    assert str(Cuda(12, 8)) == "12.8"
    assert Cuda.parse(Cuda(12, 6).variant) == Cuda(12, 6)


@pytest.mark.parametrize("text", ["", "12", "cuda12.8", "cpu", "12.8.1"])
def test_cuda_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a CUDA version"):
        Cuda.parse(text)


def test_index_url_is_pytorchs_index() -> None:
    assert index_url("cu128") == "https://download.pytorch.org/whl/cu128"
    assert index_url("cpu") == "https://download.pytorch.org/whl/cpu"


# ---- (b) PyTorch ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "stable", "experimental"),
    [
        ("2.7.1", {"cu118", "cu126"}, {"cu128"}),
        ("2.8.0", {"cu126", "cu128"}, {"cu129"}),
        ("2.9.1", {"cu126", "cu128"}, {"cu130"}),
        ("2.10.0", {"cu126", "cu128"}, {"cu130"}),
        ("2.11.0", {"cu126", "cu128", "cu130"}, set()),
        ("2.13.0+cpu", {"cu126", "cu130"}, {"cu132"}),
    ],
)
def test_torch_cuda_builds_per_release(pin: str, stable: set[str], experimental: set[str]) -> None:
    release = torch_release(pin)
    assert release is not None
    assert set(release.stable) == stable
    assert set(release.experimental) == experimental


def test_torch_table_is_newest_first_and_experimental_is_flagged() -> None:
    series = [r.series for r in TORCH_RELEASES]
    assert series == sorted(series, reverse=True)
    release = torch_release("2.10.0")
    assert release is not None
    assert release.ships("cu130") and release.is_experimental("cu130")
    assert release.ships("cu128") and not release.is_experimental("cu128")
    assert not release.ships("cu129")


def test_unknown_torch_series_is_none() -> None:
    assert torch_release("1.13.1") is None
    assert torch_release("not-a-version") is None


# ---- (c) vLLM ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vllm", "torch"),
    [
        ("0.10.0", "2.7.1"),
        ("0.11.0", "2.8.0"),
        ("0.11.1", "2.9.0"),
        ("0.12.0", "2.9.0"),
        ("0.19.0", "2.10.0"),
        ("0.20.0", "2.11.0"),
        ("0.27.0", "2.13.0"),
        ("0.28.0", "2.13.0"),
        ("0.32.0", "2.13.0"),
        ("0.33.0", "2.14.0"),
    ],
)
def test_vllm_torch_pins(vllm: str, torch: str) -> None:
    release = vllm_release(vllm)
    assert release is not None
    assert release.torch == torch


def test_vllm_releases_are_newest_first_and_unique() -> None:
    versions = [Version(r.version) for r in VLLM_RELEASES]
    assert versions == sorted(versions, reverse=True)
    assert len(set(versions)) == len(versions)
    assert VLLM_RELEASES[0].version == "0.33.0"
    assert VLLM_RELEASES[-1].version == "0.10.0"


def test_cuda_13_is_the_pypi_default_from_0_20_on() -> None:
    for release in VLLM_RELEASES:
        major = Cuda.parse(release.default_variant).major
        assert major == (13 if Version(release.version) >= Version("0.20") else 12), release
        assert release.builds[0].on_pypi, release


def test_every_build_pairs_with_a_torch_build_that_exists() -> None:
    for release in VLLM_RELEASES:
        torch = torch_release(release.torch)
        assert torch is not None, release.version
        for build in release.builds:
            assert torch.ships(build.torch_variant), (release.version, build)
            # Same libcudart soname: a CUDA 12 vLLM next to a CUDA 13 torch fails to load.
            assert Cuda.parse(build.variant).major == Cuda.parse(build.torch_variant).major
            assert build.torch_variant in BUILD_ARCHITECTURES
            native_min_driver(Cuda.parse(build.variant))  # in the driver table


def test_aarch64_wheels_start_at_0_10_2() -> None:
    for release in VLLM_RELEASES:
        has_arm = any("aarch64" in b.arches for b in release.builds)
        assert has_arm == (Version(release.version) >= Version("0.10.2")), release.version


def test_lookup_normalises_the_version_spelling() -> None:
    assert vllm_release("v0.33.0") is VLLM_RELEASES[0]
    assert vllm_release("0.13") is vllm_release("0.13.0")
    assert vllm_release("0.21.0") is None
    assert vllm_release("banana") is None


def test_cpu_row_is_vllm_cpu_on_the_cpu_index() -> None:
    release = vllm_cpu_release("0.32.0")
    assert release is not None and release is VLLM_CPU_RELEASES[0]
    assert (release.package, release.torch, release.variant) == ("vllm-cpu", "2.13.0+cpu", "cpu")
    assert set(release.arches) == {"x86_64", "aarch64"}
    assert vllm_cpu_release("0.31.0") is None


# ---- (d) compute capability -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "capability", "covered"),
    [
        ("cu130", (7, 5), True),
        ("cu130", (12, 0), True),
        ("cu130", (7, 0), False),
        ("cu128", (7, 0), False),
        ("cu126", (7, 0), True),
        ("cu126", (10, 0), False),
        ("cu126", (12, 0), False),
        ("cu128", (8, 9), True),  # Ada runs Ampere 8.6 code
        ("cu128", (12, 1), True),  # GB10 runs 12.0 code
        ("cu128", (10, 3), True),
        ("cu130", (11, 0), False),
        ("cu121", (8, 0), False),  # builds without an architecture list are never chosen
    ],
)
def test_build_covers_compute_capability(
    variant: str, capability: tuple[int, int], covered: bool
) -> None:
    assert covers(variant, capability) is covered


def test_blackwell_needs_cuda_12_8() -> None:
    assert first_cuda_for((10, 0)) == Cuda(12, 8)
    assert first_cuda_for((12, 0)) == Cuda(12, 8)
    assert first_cuda_for((12, 1)) == Cuda(12, 8)
    assert first_cuda_for((9, 0)) is None


def test_vllm_compute_capability_floor() -> None:
    by_version = {r.version: r.min_compute_capability for r in VLLM_RELEASES}
    assert by_version["0.10.0"] == (7, 0)
    assert by_version["0.13.0"] == (7, 0)
    assert by_version["0.33.0"] == (7, 5)
    assert all(cc >= (7, 0) for cc in by_version.values())
