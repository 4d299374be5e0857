"""llama.cpp's tools on the controller, at the pinned release: its converter and its binaries.

The converter (convert_hf_to_gguf.py, its `conversion` package and the gguf-py it is written
against) comes out of the llama-cpp-python source distribution that the llama.cpp deploy builds
from. llama-quantize and llama-server come from the controller's binary cache of llama.cpp builds
(`cache_root()/llamacpp/<key>.tar.gz`, filled by the llama.cpp deploy) under the key this
controller itself would have as a host: same source, flags, architecture, distribution and CPU.
When there is none, they are built here from the same source with the same CMake flags, and the
build goes into that cache, where the deploy of a host like this controller finds it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from llmprov.cache import binary_cache_dir_name, fetch_pypi_sdist
from llmprov.convert.progress import Report, Step, silent
from llmprov.convert.spec import ConvertError
from llmprov.core.config import LlamacppSettings
from llmprov.core.llamacpp_build import (
    BUILD_PACKAGES,
    TARGETS,
    BuildTarget,
    LlamacppSource,
    build_key,
    cmake_flags,
    source_for,
)
from llmprov.core.parsers import distro_id, parse_os_release
from llmprov.filelock import file_lock

# What the converter needs of the source tree; the rest (C++ sources) only a build needs.
CONVERTER_MEMBERS: tuple[str, ...] = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
_NINJA = re.compile(r"^\[(\d+)/(\d+)\]")


@dataclass(frozen=True)
class ConverterTree:
    """A folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/ of one llama.cpp."""

    root: Path
    llama_cpp_ref: str

    @property
    def script(self) -> Path:
        return self.root / "convert_hf_to_gguf.py"

    @property
    def gguf_py(self) -> Path:
        return self.root / "gguf-py"


@dataclass(frozen=True)
class LlamaBinaries:
    key: str
    folder: Path

    @property
    def quantize(self) -> Path:
        return self.folder / "bin" / "llama-quantize"

    @property
    def server(self) -> Path:
        return self.folder / "bin" / "llama-server"


def _source(settings: LlamacppSettings) -> LlamacppSource:
    source = source_for(settings)
    if source.kind != "pypi":
        raise ConvertError(
            "the controller converts with the llama-cpp-python source distribution "
            f"(pinned, with a sha256); {source.kind} source {source.version} is not supported here"
        )
    return source


def _sdist(source: LlamacppSource, root: Path) -> Path:
    return fetch_pypi_sdist(
        "llama-cpp-python", source.version, source.archive_name, source.sha256, root
    )


def _wanted(rel: str, only: tuple[str, ...]) -> bool:
    """Whether a path in the tree is one of `only` (a file) or under one (a folder, `x/`)."""
    return any(
        rel.startswith(o) or rel == o.rstrip("/") if o.endswith("/") else rel == o for o in only
    )


def _extract(archive: Path, subdir: str, dest: Path, only: tuple[str, ...] | None) -> None:
    """The files of `archive` under `subdir/` (or only `only` of them) into `dest`, whole."""
    prefix = subdir.rstrip("/") + "/"
    partial = dest.with_name(f"{dest.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = []
        for m in tar.getmembers():
            if not m.name.startswith(prefix):
                continue
            if only is None or _wanted(m.name[len(prefix) :], only):
                members.append(m)
        if not members:
            raise ConvertError(f"{archive.name} holds nothing under {prefix}")
        tar.extractall(partial, members=members, filter="data")
    shutil.rmtree(dest, ignore_errors=True)
    (partial / subdir).rename(dest)
    shutil.rmtree(partial, ignore_errors=True)


def converter_tree(root: Path, settings: LlamacppSettings | None = None) -> ConverterTree:
    """The pinned llama.cpp's converter, unpacked once into the controller cache."""
    source = _source(settings or LlamacppSettings())
    dest = root / "llamacpp-src" / f"converter-{source.version}"
    tree = ConverterTree(dest, source.llama_cpp_ref)
    with file_lock(dest.with_name(f"{dest.name}.lock")):
        if not tree.script.is_file():
            _extract(_sdist(source, root), source.subdir, dest, CONVERTER_MEMBERS)
    return tree


def cpu_flags_digest(cpuinfo: str) -> str | None:
    """What the CpuFlagsDigest fact reports for a host: sha256 of the first flags line, 16 hex."""
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return hashlib.sha256((line + "\n").encode()).hexdigest()[:16]
    return None


def controller_target(
    os_release: Path = Path("/etc/os-release"), cpuinfo: Path = Path("/proc/cpuinfo")
) -> BuildTarget:
    """This controller described as a build target, as the llama.cpp deploy describes a host."""
    distro = distro_id(parse_os_release(os_release.read_text().splitlines()))
    return BuildTarget(platform.machine(), distro, cpu_flags_digest(cpuinfo.read_text()))


def binaries_key(settings: LlamacppSettings, target: BuildTarget) -> str:
    return build_key(_source(settings), cmake_flags(settings, cuda=False), target)


def llama_binaries(
    root: Path,
    report: Report = silent,
    settings: LlamacppSettings | None = None,
    target: BuildTarget | None = None,
    jobs: int | None = None,
) -> LlamaBinaries:
    """llama-quantize and llama-server for this controller: cached build, else built here."""
    settings = settings or LlamacppSettings()
    key = binaries_key(settings, target or controller_target())
    found = LlamaBinaries(key, root / "llamacpp-bin" / key)
    with file_lock(root / "llamacpp-bin" / f"{key}.lock"):
        if found.quantize.is_file() and found.server.is_file():
            return found
        cached = root / binary_cache_dir_name() / f"{key}.tar.gz"
        if not cached.is_file():
            build_here(root, settings, key, cached, report, jobs)
        cached.touch()  # most recently used, for the cache's pruning
        partial = found.folder.with_name(f"{key}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(cached) as tar:
            tar.extractall(partial, filter="data")
        shutil.rmtree(found.folder, ignore_errors=True)
        partial.rename(found.folder)
    if not (found.quantize.is_file() and found.server.is_file()):
        raise ConvertError(f"{cached} holds no bin/llama-quantize and bin/llama-server")
    return found


def _run_logged(cmd: list[str], log: Path, task: str, report: Report) -> None:
    """Run a build step, its output into `log`, ninja's [n/N] lines as progress."""
    with log.open("a") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            m = _NINJA.match(line)
            if m:
                report(Step(task, int(m.group(1)), int(m.group(2)), "steps"))
        code = proc.wait()
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise ConvertError(f"`{' '.join(cmd[:3])} ...` failed (exit {code}); log {log}:\n{tail}")


def build_here(
    root: Path,
    settings: LlamacppSettings,
    key: str,
    cached: Path,
    report: Report = silent,
    jobs: int | None = None,
) -> Path:
    """Build llama-server and llama-quantize from the pinned source into the binary cache.

    The same inputs as the deploy's build script (core/llamacpp_build.py): source, CMake flags,
    targets, and the archive layout (BUILD-KEY, bin/<target>). Tens of minutes on two cores.
    """
    missing = [t for t in ("cmake", "ninja", "c++") if shutil.which(t) is None]
    if missing:
        raise ConvertError(
            f"building llama-quantize needs {', '.join(missing)}: "
            f"apt-get install {' '.join(p for p in BUILD_PACKAGES if p != 'libgomp1')}"
        )
    source = _source(settings)
    work = root / "build" / f"llamacpp-{key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "build.log"
    task = f"build llama.cpp {source.llama_cpp_ref} ({key})"
    report(Step(task, 0, None, "steps"))
    _extract(_sdist(source, root), source.subdir, work / "src", None)
    flags = cmake_flags(settings, cuda=False)
    _run_logged(
        ["cmake", "-S", str(work / "src"), "-B", str(work / "build"), "-G", "Ninja", *flags],
        log, task, report,
    )  # fmt: skip
    build = ["cmake", "--build", str(work / "build"), "--target", *TARGETS]
    _run_logged([*build, "-j", str(jobs or os.cpu_count() or 1)], log, task, report)
    stage = work / "stage"
    (stage / "bin").mkdir(parents=True)
    for target in TARGETS:
        shutil.copy2(work / "build" / "bin" / target, stage / "bin" / target)
    (stage / "BUILD-KEY").write_text(key + "\n")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(stage, arcname=".")
    partial.rename(cached)
    shutil.rmtree(work, ignore_errors=True)
    report(Step(task, 1, 1, "steps", finished=True))
    return cached
