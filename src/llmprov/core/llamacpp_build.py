"""llama.cpp builds: which source each supported version is, the CMake flags, and the build cache key."""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass

from llmprov.core.config import LlamacppSettings
from llmprov.core.layout import EngineLayout

# llama-cpp-python source distributions vendor llama.cpp under vendor/llama.cpp; their changelog
# names the upstream commit ("feat: update llama.cpp to ggml-org/llama.cpp@<commit>"). The sha256 is
# the sdist's on PyPI (https://pypi.org/project/llama-cpp-python/<version>/#files).
PYPI_SDISTS: dict[str, tuple[str, str]] = {
    # version: (llama.cpp commit, sdist sha256)
    "0.3.36": ("0c1e57098", "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"),
}

UPSTREAM_ARCHIVE = "https://github.com/ggml-org/llama.cpp/archive/refs/tags/{release}.tar.gz"
TARGETS: tuple[str, ...] = ("llama-server", "llama-quantize")
BUILD_PACKAGES: tuple[str, ...] = ("build-essential", "cmake", "ninja-build", "libgomp1")


def unpack_cached_command(archive: str, digest: str, dest: str) -> str:
    """Check a cached build against its recorded digest, then unpack it without owners or setuid."""
    q = shlex.quote
    return (
        f"echo {q(f'{digest}  {archive}')} | sha256sum -c - && "
        f"rm -rf {q(dest + '.partial')} && mkdir -p {q(dest + '.partial')} && "
        f"tar --no-same-owner --no-same-permissions -xzf {q(archive)} -C {q(dest + '.partial')} && "
        f"mv {q(dest + '.partial')} {q(dest)}"
    )


class UnknownLlamacppVersion(ValueError):
    """A llama-cpp-python version llmprov has no pinned source for."""


@dataclass(frozen=True)
class LlamacppSource:
    """Where a build's source comes from and the folder inside the archive that holds llama.cpp."""

    kind: str  # "pypi" or "upstream"
    version: str  # llama-cpp-python version, or upstream release tag
    llama_cpp_ref: str  # upstream commit or tag built
    archive_name: str
    sha256: str | None
    subdir: str


def source_for(settings: LlamacppSettings) -> LlamacppSource:
    if (settings.source or ("upstream" if settings.release else "pypi")) == "upstream":
        assert settings.release is not None  # validated in config
        return LlamacppSource(
            "upstream",
            settings.release,
            settings.release,
            f"llama.cpp-{settings.release}.tar.gz",
            settings.release_sha256.lower() if settings.release_sha256 else None,
            f"llama.cpp-{settings.release.lstrip('b')}",
        )
    if settings.pypi_version not in PYPI_SDISTS:
        known = ", ".join(sorted(PYPI_SDISTS))
        raise UnknownLlamacppVersion(
            f"llamacpp.pypi_version: {settings.pypi_version!r} is not pinned by llmprov; known: {known}"
        )
    commit, sha = PYPI_SDISTS[settings.pypi_version]
    name = f"llama_cpp_python-{settings.pypi_version}"
    return LlamacppSource(
        "pypi", settings.pypi_version, commit, f"{name}.tar.gz", sha, f"{name}/vendor/llama.cpp"
    )


def cmake_flags(settings: LlamacppSettings, cuda: bool) -> list[str]:
    flags = [
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DGGML_NATIVE={'ON' if settings.native else 'OFF'}",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        # Without this the build downloads the web UI; the server runs with --no-webui anyway.
        "-DLLAMA_USE_PREBUILT_UI=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DBUILD_SHARED_LIBS=OFF",
    ]
    if cuda:
        flags.append("-DGGML_CUDA=ON")
    return flags


@dataclass(frozen=True)
class BuildTarget:
    """What a build is for. A native build is tied to the CPU it was built on, so its flags count."""

    arch: str
    distro: str  # e.g. "debian-12"
    cpu_flags_digest: str | None


def build_key(source: LlamacppSource, flags: list[str], target: BuildTarget) -> str:
    """`<version>-<digest>`: a build is reused wherever every input is the same."""
    native = "-DGGML_NATIVE=ON" in flags
    payload = {
        "source": [source.kind, source.version, source.llama_cpp_ref, source.sha256],
        "flags": flags,
        "targets": list(TARGETS),
        "arch": target.arch,
        "distro": target.distro,
        "cpu": target.cpu_flags_digest if native else None,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"{source.version}-{digest}"


def build_script(
    source: LlamacppSource, flags: list[str], key: str, jobs: int | None = None
) -> str:
    """The shell script that builds one key on a host; nothing is switched, the result lands whole."""
    layout = EngineLayout("llamacpp")
    dest = layout.version_dir(key)
    work = f"{layout.root}/.build-{key}"
    src = f"{layout.root}/src/{source.archive_name}"
    configure = [
        "cmake",
        "-S",
        f"{work}/{source.subdir}",
        "-B",
        f"{work}/build",
        "-G",
        "Ninja",
        *flags,
    ]
    build = ["cmake", "--build", f"{work}/build", "--target", *TARGETS]
    q = shlex.quote
    jobs_arg = str(jobs) if jobs else '"$(nproc)"'
    lines = [
        "#!/bin/sh",
        f"# Build llama.cpp {source.llama_cpp_ref} ({source.kind} {source.version}) as {key}.",
        "set -eu",
        f"if [ -x {q(dest)}/bin/llama-server ]; then echo 'already built'; exit 0; fi",
        f"rm -rf {q(work)} {q(dest)}.partial",
        f"mkdir -p {q(work)}",
        # Files come out owned by root with the umask's modes: no owner or setuid bit of the archive.
        f"tar --no-same-owner --no-same-permissions -xzf {q(src)} -C {q(work)}",
        shlex.join(configure),
        f"{shlex.join(build)} -j {jobs_arg}",
        f"mkdir -p {q(dest)}.partial/bin",
        *[f"install -m 0755 {q(work)}/build/bin/{t} {q(dest)}.partial/bin/{t}" for t in TARGETS],
        f"echo {q(key)} > {q(dest)}.partial/BUILD-KEY",
        f"mv {q(dest)}.partial {q(dest)}",
        f"rm -rf {q(work)}",
        f"mkdir -p {q(layout.root)}/cache",
        f"tar -czf {q(layout.root)}/cache/{q(key)}.tar.gz.partial -C {q(dest)} .",
        f"mv {q(layout.root)}/cache/{q(key)}.tar.gz.partial {q(layout.root)}/cache/{q(key)}.tar.gz",
        # The digest recorded when the build was made; a later unpack of the cached copy checks it.
        f"cd {q(layout.root)}/cache && sha256sum {q(key)}.tar.gz > {q(key)}.tar.gz.sha256",
    ]
    return "\n".join(lines) + "\n"
