"""Which Ollama files a host gets, where from, and how their checksums and versions are read."""

from __future__ import annotations

import pytest

from llmprov.core.ollama_release import (
    OFFICIAL_BASE_URL,
    InstallState,
    ReleaseError,
    change_kind,
    compare_versions,
    gpu_flavour,
    install_key,
    jetpack_flavour,
    linux_archives,
    model_present,
    parse_checksums,
    parse_install_state,
    parse_model_list,
    prune_candidates,
    release_source,
    unpack_argv,
    windows_archives,
)
from llmprov.core.render.launchd import free_role_id

A, B = "a" * 64, "B" * 64


def test_checksums_accept_sha256sum_output_with_and_without_dot_slash_and_binary_marker() -> None:
    text = f"{A}  ./ollama-linux-amd64.tgz\n\n# comment\n{B} *OllamaSetup.exe\n"
    assert parse_checksums(text) == {"ollama-linux-amd64.tgz": A, "OllamaSetup.exe": B.lower()}


@pytest.mark.parametrize(
    "text", ["<html>Not Found</html>", f"{A[:-1]}  x.tgz", f"{A}  dir/x.tgz", "", f"{A}"]
)
def test_anything_but_a_checksum_list_is_refused(text: str) -> None:
    with pytest.raises(ReleaseError):
        parse_checksums(text)


def test_the_release_picks_zst_where_it_has_it_and_tgz_otherwise() -> None:
    new = ["ollama-linux-amd64.tar.zst", "ollama-linux-amd64.tgz", "ollama-linux-arm64.tar.zst"]
    assert linux_archives("x86_64", None, new) == ["ollama-linux-amd64.tar.zst"]
    assert linux_archives("aarch64", None, new) == ["ollama-linux-arm64.tar.zst"]
    assert linux_archives("x86_64", None, ["ollama-linux-amd64.tgz"]) == ["ollama-linux-amd64.tgz"]


def test_gpu_flavours_are_add_on_archives_unpacked_after_the_base() -> None:
    names = ["ollama-linux-amd64.tgz", "ollama-linux-amd64-rocm.tgz", "ollama-linux-arm64.tgz",
             "ollama-linux-arm64-jetpack6.tgz"]  # fmt: skip
    assert linux_archives("x86_64", "rocm", names) == names[:2]
    assert linux_archives("aarch64", "jetpack6", names) == names[2:]
    with pytest.raises(ReleaseError, match="no ollama-linux-arm64-jetpack5"):
        linux_archives("aarch64", "jetpack5", names)


def test_flavour_follows_the_gpu_vendor_and_the_jetson_release() -> None:
    assert gpu_flavour("amd") == "rocm"
    assert gpu_flavour("nvidia") is None and gpu_flavour("none") is None
    assert jetpack_flavour("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic") == "jetpack6"
    assert gpu_flavour("jetson", "# R35 (release), REVISION: 5.0") == "jetpack5"
    with pytest.raises(ReleaseError, match="R32"):
        jetpack_flavour("# R32 (release), REVISION: 7.1")
    with pytest.raises(ReleaseError, match="nv_tegra_release"):
        gpu_flavour("jetson", None)
    assert install_key("0.12.6", "rocm") == "0.12.6-rocm"
    assert install_key("0.12.6", None) == "0.12.6"


def test_windows_zip_and_its_rocm_add_on() -> None:
    names = ["ollama-windows-amd64.zip", "ollama-windows-amd64-rocm.zip", "OllamaSetup.exe"]
    assert windows_archives("x86_64", "rocm", names) == names[:2]
    with pytest.raises(ReleaseError):
        windows_archives("aarch64", None, names)


def test_sources_official_mirror_and_controller_folder_share_one_layout() -> None:
    official = release_source("0.12.6", None, None)
    assert official.location("sha256sum.txt") == f"{OFFICIAL_BASE_URL}/v0.12.6/sha256sum.txt"
    mirror = release_source("0.12.6", "http://mirror.lan/ollama/", None)
    assert mirror.location("x.tgz") == "http://mirror.lan/ollama/v0.12.6/x.tgz"
    local = release_source("0.12.6", "http://ignored", "file:///srv/ollama")
    assert (local.kind, local.location("x.tgz"), local.is_remote) == (
        "dir", "/srv/ollama/v0.12.6/x.tgz", False)  # fmt: skip


def test_versions_compare_as_releases_not_strings() -> None:
    assert compare_versions("0.12.10", "0.12.9") == 1
    assert compare_versions("0.12.6", "0.12.6") == 0
    assert change_kind(None, "0.12.6") == "install"
    assert change_kind("0.12.5", "0.12.6") == "upgrade"
    assert change_kind("0.12.6-rocm", "0.12.5") == "downgrade"
    with pytest.raises(ReleaseError):
        compare_versions("latest", "0.1")


def test_install_state_reads_versions_and_the_current_link() -> None:
    state = parse_install_state(
        [
            "installed 0.12.5",
            "installed 0.12.4",
            "installed 0.12.6",
            "current /opt/llmprov/ollama/0.12.5",
        ]
    )
    assert state == InstallState(("0.12.4", "0.12.5", "0.12.6"), "0.12.5")
    windows = parse_install_state(
        ["installed 0.12.6", "current C:\\Program Files\\llmprov\\ollama\\0.12.6\\"]
    )
    assert windows.current == "0.12.6"
    assert prune_candidates(state, keep=["0.12.6", "0.12.5"]) == ["0.12.4"]
    assert parse_install_state([]) == InstallState((), None)


def test_model_list_and_latest_tag() -> None:
    names = parse_model_list(
        [
            "NAME   ID   SIZE   MODIFIED",
            "smollm2:135m  abc  270 MB  now",
            "llama3.2:latest x 2 GB now",
        ]
    )
    assert names == {"smollm2:135m", "llama3.2:latest"}
    assert model_present(names, "llama3.2") and model_present(names, "smollm2:135m")
    assert not model_present(names, "smollm2")


def test_unpack_by_suffix() -> None:
    assert unpack_argv("a.tar.zst", "D") == ["tar", "-I", "zstd", "-xf", "a.tar.zst", "-C", "D"]
    assert unpack_argv("a.tgz", "D") == ["tar", "-xzf", "a.tgz", "-C", "D"]
    with pytest.raises(ReleaseError):
        unpack_argv("a.zip", "D")


def test_mac_role_account_takes_the_first_id_free_for_users_and_groups() -> None:
    assert free_role_id({300, 301, 20, 501}) == 302
    with pytest.raises(ValueError):
        free_role_id(range(300, 400))
