"""Ollama releases: archive names per OS, arch and GPU flavour, their URLs, checksums and versions.

Pure: the deploys (Linux, macOS, Windows) fetch text and run commands; everything they decide about
which file to take, where it comes from and whether it is the right one is decided here.

Upstream facts, from Ollama's release assets and its Linux install script (scripts/install.sh):
- Linux: `ollama-linux-{amd64,arm64}.tar.zst` (older releases `.tgz`) unpacks to `bin/ollama` and
  `lib/ollama/`. GPU flavours are add-on archives unpacked over the base one: `-rocm` for AMD GPUs,
  `-jetpack5` / `-jetpack6` for Jetson boards (L4T R35 / R36, read from /etc/nv_tegra_release).
- macOS: `Ollama-darwin.zip` holds `Ollama.app`; the server binary is
  `Ollama.app/Contents/Resources/ollama`.
- Windows: `ollama-windows-{amd64,arm64}.zip` (`ollama.exe` and `lib/ollama/`), with the add-on
  `ollama-windows-amd64-rocm.zip` for AMD GPUs; `OllamaSetup.exe` is the per-user installer.
- Every release publishes `sha256sum.txt`, one `<sha256>  <file>` line per asset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

from llmprov.core.upgrade import InstallState as InstallState
from llmprov.core.upgrade import parse_install_state as parse_install_state

OFFICIAL_BASE_URL = "https://github.com/ollama/ollama/releases/download"
CHECKSUMS_FILE = "sha256sum.txt"
MAC_APP_ARCHIVE = "Ollama-darwin.zip"
WINDOWS_INSTALLER = "OllamaSetup.exe"

Flavour = Literal["rocm", "jetpack5", "jetpack6"]
SourceKind = Literal["official", "mirror", "dir"]

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
# L4T (Jetson Linux) major release -> JetPack major, as Ollama's install script maps them.
_L4T_JETPACK: dict[int, Flavour] = {35: "jetpack5", 36: "jetpack6"}
_L4T_RELEASE = re.compile(r"^#\s*R(\d+)\s*\(release\)")


class ReleaseError(ValueError):
    """A release cannot be used as asked: a file it lacks, a bad checksum list, an unknown flavour."""


@dataclass(frozen=True)
class ReleaseSource:
    """Where one release's files come from: a base URL or a controller folder, then `v<version>/`.

    The official source and a mirror share one layout (`BASE/v<version>/<file>`), which is how
    GitHub serves releases; an offline site copies that layout to a web server or a folder.
    """

    kind: SourceKind
    base: str
    version: str

    def location(self, filename: str) -> str:
        """A file's URL, or its path on the controller for a `dir` source."""
        return f"{self.base.rstrip('/')}/v{self.version}/{filename}"

    @property
    def checksums_location(self) -> str:
        return self.location(CHECKSUMS_FILE)

    @property
    def is_remote(self) -> bool:
        return self.kind != "dir"


def release_source(version: str, base_url: str | None, local_dir: str | None) -> ReleaseSource:
    """The source the inventory names: a local folder first, then a mirror, else the official URL."""
    if local_dir:
        return ReleaseSource("dir", local_dir.removeprefix("file://"), version)
    if base_url:
        return ReleaseSource("mirror", base_url, version)
    return ReleaseSource("official", OFFICIAL_BASE_URL, version)


# ---------------------------------------------------------------- checksums


def parse_checksums(text: str) -> dict[str, str]:
    """`sha256sum` output as {file name: lower-case digest}.

    Accepts the binary-mode marker (`*name`) and a leading `./`; blank lines and comments are
    skipped; any other line is an error, so a truncated or HTML answer is never taken for a list.
    """
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        name = name.strip().removeprefix("*").removeprefix("./")
        if not _HEX64.match(digest) or not name or "/" in name:
            raise ReleaseError(f"{CHECKSUMS_FILE} line {number} is not `<sha256>  <file>`: {raw!r}")
        out[name] = digest.lower()
    if not out:
        raise ReleaseError(f"{CHECKSUMS_FILE} lists no files")
    return out


def digest_for(checksums: Mapping[str, str], filename: str, source: ReleaseSource) -> str:
    try:
        return checksums[filename]
    except KeyError:
        raise ReleaseError(
            f"{source.checksums_location} has no checksum for {filename}; "
            f"it lists: {', '.join(sorted(checksums))}"
        ) from None


# ---------------------------------------------------------------- versions


def version_key(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion as exc:
        raise ReleaseError(f"not a release version: {version!r}") from exc


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as release `a` is older than, the same as, or newer than `b`."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def change_kind(installed: str | None, wanted: str) -> str:
    """How moving from `installed` to `wanted` reads in an operation name."""
    if installed is None:
        return "install"
    diff = compare_versions(wanted, installed.split("-", 1)[0])
    return {1: "upgrade", -1: "downgrade", 0: "reinstall"}[diff]


# ---------------------------------------------------------------- which files


def jetpack_flavour(nv_tegra_release: str | None) -> Flavour:
    """The JetPack flavour from /etc/nv_tegra_release (`# R36 (release), REVISION: 4.3, ...`)."""
    for line in (nv_tegra_release or "").splitlines():
        match = _L4T_RELEASE.match(line.strip())
        if match:
            major = int(match.group(1))
            if major in _L4T_JETPACK:
                return _L4T_JETPACK[major]
            raise ReleaseError(
                f"Jetson Linux R{major} has no Ollama build (JetPack 5 is R35, JetPack 6 is R36)"
            )
    raise ReleaseError(
        "gpu.vendor is 'jetson' but /etc/nv_tegra_release is missing or unreadable on the host"
    )


def gpu_flavour(vendor: str, nv_tegra_release: str | None = None) -> Flavour | None:
    """The add-on archive a GPU needs: ROCm for AMD, JetPack for Jetson, none for NVIDIA and CPUs."""
    if vendor == "amd":
        return "rocm"
    if vendor == "jetson":
        return jetpack_flavour(nv_tegra_release)
    return None


def install_key(version: str, flavour: Flavour | None) -> str:
    """The folder name a version is unpacked into: a flavour is a different install."""
    return f"{version}-{flavour}" if flavour else version


def goarch(arch: str) -> str:
    try:
        return _GOARCH[arch]
    except KeyError:
        raise ReleaseError(f"Ollama publishes no build for {arch!r}") from None


def _pick(stem: str, available: Iterable[str], suffixes: tuple[str, ...]) -> str:
    names = set(available)
    for suffix in suffixes:
        if stem + suffix in names:
            return stem + suffix
    wanted = " or ".join(stem + s for s in suffixes)
    raise ReleaseError(f"the release has no {wanted}")


def linux_archives(arch: str, flavour: Flavour | None, available: Iterable[str]) -> list[str]:
    """The archives to unpack, base first: `.tar.zst` where the release has it, else `.tgz`."""
    names = list(available)
    base = f"ollama-linux-{goarch(arch)}"
    stems = [base] + ([f"{base}-{flavour}"] if flavour else [])
    return [_pick(stem, names, (".tar.zst", ".tgz")) for stem in stems]


def windows_archives(arch: str, flavour: Flavour | None, available: Iterable[str]) -> list[str]:
    names = list(available)
    if flavour not in (None, "rocm"):
        raise ReleaseError(f"no Windows build for the {flavour} flavour")
    base = f"ollama-windows-{goarch(arch)}"
    stems = [base] + ([f"{base}-{flavour}"] if flavour else [])
    return [_pick(stem, names, (".zip",)) for stem in stems]


def unpack_argv(archive: str, dest: str) -> list[str]:
    """tar arguments for an archive by its suffix (zstd through -I, which tar 1.30 has too)."""
    if archive.endswith(".tar.zst"):
        return ["tar", "-I", "zstd", "-xf", archive, "-C", dest]
    if archive.endswith((".tgz", ".tar.gz")):
        return ["tar", "-xzf", archive, "-C", dest]
    raise ReleaseError(f"cannot unpack {archive}: not a .tar.zst or .tgz")


# ---------------------------------------------------------------- host state


def prune_candidates(state: InstallState, keep: Iterable[str]) -> list[str]:
    """Installed keys to remove: all but `keep` (the new one and the one it replaced)."""
    kept = set(keep)
    return [key for key in state.installed if key not in kept]


def parse_model_list(lines: Iterable[str]) -> set[str]:
    """Model names from `ollama list` (a table whose first column is NAME)."""
    names: set[str] = set()
    for line in lines:
        parts = line.split()
        if not parts or parts[0] == "NAME":
            continue
        names.add(parts[0])
    return names


def model_present(names: set[str], model: str) -> bool:
    """Ollama takes a name without a tag as name:latest."""
    wanted = {model} if ":" in model else {model, f"{model}:latest"}
    return bool(wanted & names)
