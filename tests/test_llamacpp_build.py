"""llama.cpp builds: the pinned sources, the CMake flags, the cache key and the build script."""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmprov.core.config import LlamacppSettings
from llmprov.core.llamacpp_build import (
    PYPI_SDISTS,
    BuildTarget,
    UnknownLlamacppVersion,
    build_key,
    build_script,
    cmake_flags,
    source_for,
    unpack_cached_command,
)

TARGET = BuildTarget(arch="x86_64", distro="debian-12", cpu_flags_digest="aaaa")


def key(settings: LlamacppSettings, target: BuildTarget = TARGET, cuda: bool = False) -> str:
    return build_key(source_for(settings), cmake_flags(settings, cuda), target)


def test_default_source_is_the_pinned_pypi_sdist_with_its_checksum() -> None:
    src = source_for(LlamacppSettings())
    assert src.kind == "pypi"
    assert src.archive_name == "llama_cpp_python-0.3.36.tar.gz"
    assert src.sha256 == PYPI_SDISTS["0.3.36"][1]
    assert src.llama_cpp_ref == "0c1e57098"
    assert src.subdir == "llama_cpp_python-0.3.36/vendor/llama.cpp"


def test_a_release_tag_selects_the_upstream_archive() -> None:
    src = source_for(LlamacppSettings(release="b6710"))
    assert (src.kind, src.version, src.subdir) == ("upstream", "b6710", "llama.cpp-6710")


def test_unknown_pypi_version_names_the_known_ones() -> None:
    with pytest.raises(UnknownLlamacppVersion, match=r"known: 0\.3\.36"):
        source_for(LlamacppSettings(pypi_version="0.2.1"))


def test_flags_never_download_and_follow_native_and_cuda() -> None:
    flags = cmake_flags(LlamacppSettings(), cuda=False)
    assert "-DLLAMA_USE_PREBUILT_UI=OFF" in flags and "-DLLAMA_CURL=OFF" in flags
    assert "-DGGML_NATIVE=ON" in flags and "-DGGML_CUDA=ON" not in flags
    assert "-DGGML_NATIVE=OFF" in cmake_flags(LlamacppSettings(native=False), cuda=False)
    assert "-DGGML_CUDA=ON" in cmake_flags(LlamacppSettings(), cuda=True)


def test_key_is_stable_and_changes_with_every_input() -> None:
    base = key(LlamacppSettings())
    assert base == key(LlamacppSettings())
    assert base.startswith("0.3.36-")
    assert key(LlamacppSettings(), cuda=True) != base
    assert key(LlamacppSettings(native=False)) != base
    assert key(LlamacppSettings(), BuildTarget("aarch64", "debian-12", "aaaa")) != base
    assert key(LlamacppSettings(), BuildTarget("x86_64", "ubuntu-24.04", "aaaa")) != base
    # A native build is tied to the CPU; a portable one is not.
    assert key(LlamacppSettings(), BuildTarget("x86_64", "debian-12", "bbbb")) != base
    portable = LlamacppSettings(native=False)
    assert key(portable) == key(portable, BuildTarget("x86_64", "debian-12", "bbbb"))


def test_script_builds_beside_and_lands_whole() -> None:
    s = LlamacppSettings()
    k = key(s)
    script = build_script(source_for(s), cmake_flags(s, False), k, jobs=2)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh" and "set -eu" in lines
    assert (
        f"if [ -x /opt/llmprov/llamacpp/{k}/bin/llama-server ]; then echo 'already built'; exit 0; fi"
        in lines
    )
    build = next(line for line in lines if line.startswith("cmake --build"))
    assert build.endswith("--target llama-server llama-quantize -j 2")
    # The finished tree is moved into place in one step, after both binaries are installed.
    move = lines.index(f"mv /opt/llmprov/llamacpp/{k}.partial /opt/llmprov/llamacpp/{k}")
    installs = [i for i, line in enumerate(lines) if line.startswith("install -m 0755")]
    assert len(installs) == 2 and max(installs) < move


def test_an_upstream_build_carries_the_stated_archive_digest() -> None:
    digest = "ab" * 32
    src = source_for(LlamacppSettings(release="b6710", release_sha256=digest.upper()))
    assert src.sha256 == digest


def test_archives_unpack_without_their_owners_or_modes() -> None:
    s = LlamacppSettings()
    script = build_script(source_for(s), cmake_flags(s, False), key(s), jobs=2)
    untar = [line for line in script.splitlines() if line.startswith("tar -x") or " -xzf " in line]
    assert untar and all("--no-same-owner --no-same-permissions" in line for line in untar)
    # The digest of the cached build is recorded beside it when it is made.
    assert script.splitlines()[-1].endswith(f"sha256sum {key(s)}.tar.gz > {key(s)}.tar.gz.sha256")


def test_a_cached_build_is_checked_against_its_digest_before_it_is_unpacked() -> None:
    command = unpack_cached_command("/opt/c/k.tar.gz", "cd" * 32, "/opt/llmprov/llamacpp/k")
    check, rest = command.split(" && ", 1)
    assert shlex.split(check) == [
        "echo",
        f"{'cd' * 32}  /opt/c/k.tar.gz",
        "|",
        "sha256sum",
        "-c",
        "-",
    ]
    assert "tar --no-same-owner --no-same-permissions -xzf /opt/c/k.tar.gz" in rest


@settings(max_examples=100, deadline=None)
@given(
    archive=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1),
    dest=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1),
)
def test_the_unpack_command_tokenises_to_the_intended_argv_for_any_path(
    archive: str, dest: str
) -> None:
    digest = "0f" * 32
    words = shlex.split(unpack_cached_command(archive, digest, dest))
    assert words == [
        "echo", f"{digest}  {archive}", "|", "sha256sum", "-c", "-", "&&",
        "rm", "-rf", f"{dest}.partial", "&&", "mkdir", "-p", f"{dest}.partial", "&&",
        "tar", "--no-same-owner", "--no-same-permissions", "-xzf", archive, "-C", f"{dest}.partial",
        "&&", "mv", f"{dest}.partial", dest,
    ]  # fmt: skip


def _archive(path: Path) -> str:
    """A build archive holding a setuid binary owned by someone else; returns its sha256."""
    data = b"#!/bin/sh\nexit 0\n"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("bin/llama-server")
        info.size, info.mode, info.uid, info.gid = len(data), 0o4755, 4321, 4321
        tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils")
def test_a_cached_build_unpacks_without_setuid_or_foreign_owner(tmp_path: Path) -> None:
    archive = tmp_path / "k.tar.gz"
    digest = _archive(archive)
    dest = tmp_path / "opt" / "k"
    dest.parent.mkdir()

    run = subprocess.run(
        ["sh", "-c", unpack_cached_command(str(archive), digest, str(dest))],
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    binary = dest / "bin" / "llama-server"
    assert not binary.stat().st_mode & (stat.S_ISUID | stat.S_ISGID)
    assert binary.stat().st_uid == os.geteuid()


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils")
def test_a_cached_build_that_changed_since_it_was_recorded_is_not_unpacked(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "k.tar.gz"
    recorded = _archive(archive)
    archive.write_bytes(archive.read_bytes() + b"\0")
    dest = tmp_path / "k"

    run = subprocess.run(
        ["sh", "-c", unpack_cached_command(str(archive), recorded, str(dest))],
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode != 0
    assert not dest.exists() and not Path(f"{dest}.partial").exists()
