"""Pure planning for sandbox hosts: names, addresses, base keys, apt sources, argv and rules."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llmprov.sandbox.errors import SandboxError

# The base root filesystem: debootstrap's minbase plus what a systemd host reached over SSH needs.
BASE_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "openssh-server",
    "iproute2",
    "sudo",
    "ca-certificates",
)
DEFAULT_SUITE = "bookworm"
# Bump when the steps that turn a debootstrap tree into a base change, so cached bases rebuild.
BASE_RECIPE_VERSION = 1

# Controller commands the harness runs, and the Debian package that ships each.
HOST_TOOLS: Mapping[str, str] = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "ssh-keygen": "openssh-client",
    "mount": "mount",
    "chroot": "coreutils",
}

# Besides the apt mirrors, the only names test hosts may reach: PyPI's index and files.
PYPI_HOSTS: tuple[str, ...] = ("pypi.org", "files.pythonhosted.org")

SANDBOX_NETWORK = ipaddress.IPv4Network("10.231.0.0/16")
SSH_PORT = 22
READY_STATES = frozenset({"running", "degraded"})
# Linux IFNAMSIZ is 16 with the NUL; nspawn hashes longer "ve-NAME" names, which we avoid.
IFNAME_MAX = 15
VETH_PREFIX = "ve-"
MACHINE_NAME_MAX = IFNAME_MAX - len(VETH_PREFIX)
RULE_TAG_PREFIX = "llmprov-sandbox:"
NSPAWN_PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CgroupLayout = Literal["unified", "hybrid", "legacy"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


def default_cache_dir(environ: Mapping[str, str], home: Path) -> Path:
    """`$LLMPROV_CACHE`, else `~/.cache/llmprov`."""
    value = environ.get("LLMPROV_CACHE")
    return Path(value).expanduser() if value else home / ".cache" / "llmprov"


def default_state_path(environ: Mapping[str, str], home: Path) -> Path:
    """`$LLMPROV_SANDBOX_STATE`, else `<cache>/sandbox/state.json`."""
    value = environ.get("LLMPROV_SANDBOX_STATE")
    if value:
        return Path(value).expanduser()
    return default_cache_dir(environ, home) / "sandbox" / "state.json"


# --- apt sources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    """One apt source entry, from either the one-line or the deb822 format."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    # Remaining deb822 fields (Signed-By, Architectures, ...) as raw, possibly multi-line values.
    options: tuple[tuple[str, str], ...] = ()


_ONE_LINE_OPTION_NAMES = {
    "arch": "Architectures",
    "signed-by": "Signed-By",
    "trusted": "Trusted",
    "lang": "Languages",
    "target": "Targets",
    "pdiffs": "PDiffs",
    "by-hash": "By-Hash",
    "allow-insecure": "Allow-Insecure",
    "allow-weak": "Allow-Weak",
    "allow-downgrade-to-insecure": "Allow-Downgrade-To-Insecure",
    "check-valid-until": "Check-Valid-Until",
    "valid-until-min": "Valid-Until-Min",
    "valid-until-max": "Valid-Until-Max",
    "check-date": "Check-Date",
    "date-max-future": "Date-Max-Future",
    "inrelease-path": "InRelease-Path",
}


def parse_one_line_sources(text: str) -> list[AptSource]:
    """Parse `sources.list` lines (`deb [opts] URI SUITE COMPONENT...`)."""
    entries: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind not in ("deb", "deb-src"):
            continue
        rest = rest.strip()
        options: list[tuple[str, str]] = []
        if rest.startswith("["):
            inner, sep, rest = rest[1:].partition("]")
            if not sep:
                raise SandboxError(f"apt source line has an unclosed '[': {raw!r}")
            for item in inner.split():
                key, _, value = item.partition("=")
                name = _ONE_LINE_OPTION_NAMES.get(key.lower(), key)
                options.append((name, value.replace(",", " ")))
        words = rest.split()
        if len(words) < 2:
            raise SandboxError(f"apt source line needs a URI and a suite: {raw!r}")
        entries.append(
            AptSource(
                types=(kind,),
                uris=(words[0],),
                suites=(words[1],),
                components=tuple(words[2:]),
                options=tuple(options),
            )
        )
    return entries


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Parse a deb822 `.sources` file; stanzas with `Enabled: no` are left out."""
    entries: list[AptSource] = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", ("Enabled", "yes"))[1].strip().lower() == "no":
            continue
        missing = [f for f in ("types", "uris", "suites") if f not in stanza]
        if missing:
            raise SandboxError(f"deb822 apt source stanza lacks {', '.join(missing)}: {stanza}")
        known = {"types", "uris", "suites", "components", "enabled"}
        entries.append(
            AptSource(
                types=tuple(stanza["types"][1].split()),
                uris=tuple(stanza["uris"][1].split()),
                suites=tuple(stanza["suites"][1].split()),
                components=tuple(stanza.get("components", ("Components", ""))[1].split()),
                options=tuple(value for key, value in stanza.items() if key not in known),
            )
        )
    return entries


def _deb822_stanzas(text: str) -> list[dict[str, tuple[str, str]]]:
    """Stanzas as {lowercased field: (field as written, value)}; continuation lines kept."""
    stanzas: list[dict[str, tuple[str, str]]] = []
    current: dict[str, tuple[str, str]] = {}
    last: str | None = None
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, last = {}, None
            continue
        if raw[0] in " \t":
            if last is None:
                raise SandboxError(f"deb822 continuation line without a field: {raw!r}")
            name, value = current[last]
            current[last] = (name, f"{value}\n{raw.strip()}")
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            raise SandboxError(f"deb822 line is not 'Field: value': {raw!r}")
        last = name.strip().lower()
        current[last] = (name.strip(), value.strip())
    return stanzas


def in_suite_family(suite: str, family: str) -> bool:
    """`bookworm-updates`, `bookworm-security` and `bookworm/updates` belong to `bookworm`."""
    return suite == family or suite.startswith((f"{family}-", f"{family}/"))


def pick_mirror(sources: Sequence[AptSource], suite: str) -> str:
    """The first binary source's URI that carries exactly `suite`: the Debian mirror to build from."""
    for source in sources:
        if "deb" in source.types and suite in source.suites and source.uris:
            return source.uris[0].rstrip("/")
    found = sorted({f"{u} {s}" for src in sources for u in src.uris for s in src.suites})
    raise SandboxError(
        f"no apt source carries suite {suite!r}; found: {', '.join(found) or 'none'} "
        "(check /etc/apt/sources.list and /etc/apt/sources.list.d/)"
    )


def sources_for_suite(sources: Sequence[AptSource], suite: str) -> list[AptSource]:
    """The binary sources of one release family, for apt inside the hosts."""
    kept: list[AptSource] = []
    for source in sources:
        if "deb" not in source.types:
            continue
        suites = tuple(s for s in source.suites if in_suite_family(s, suite))
        if suites:
            kept.append(AptSource(("deb",), source.uris, suites, source.components, source.options))
    return kept


def render_deb822(sources: Sequence[AptSource]) -> str:
    """Render entries as a deb822 `.sources` file."""
    stanzas: list[str] = []
    for source in sources:
        lines = [
            f"Types: {' '.join(source.types)}",
            f"URIs: {' '.join(source.uris)}",
            f"Suites: {' '.join(source.suites)}",
        ]
        if source.components:
            lines.append(f"Components: {' '.join(source.components)}")
        for name, value in source.options:
            first, *more = value.split("\n")
            lines.append(f"{name}: {first}".rstrip())
            lines.extend(f" {line}" if line else " ." for line in more)
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def uri_hosts(sources: Iterable[AptSource]) -> list[str]:
    """Host names of http(s) source URIs, in order, without repeats."""
    hosts: list[str] = []
    for source in sources:
        for uri in source.uris:
            match = re.match(r"^https?://(?:[^@/]*@)?([^/:]+)", uri)
            if match and match.group(1) not in hosts:
                hosts.append(match.group(1))
    return hosts


def base_key(packages: Sequence[str], suite: str, mirror: str, sources_text: str) -> str:
    """A short hash naming a base: any change in what goes into it gives a new name."""
    payload = json.dumps(
        {
            "packages": sorted(packages),
            "suite": suite,
            "mirror": mirror.rstrip("/"),
            "sources": sources_text,
            "recipe": BASE_RECIPE_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def base_dir_name(suite: str, key: str) -> str:
    return f"{suite}-{key}"


def debootstrap_argv(root: Path, suite: str, mirror: str, packages: Sequence[str]) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(packages)}",
        suite,
        str(root),
        mirror,
    ]


SSHD_DROPIN = (
    "# llmprov sandbox: root logs in with the harness key only\n"
    "PermitRootLogin prohibit-password\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "UseDNS no\n"
)


# --- names and addresses ---------------------------------------------------------------------


def validate_machine_name(name: str) -> str:
    """A machine name that is a hostname and keeps `ve-NAME` within the interface-name limit."""
    if not _NAME_RE.match(name) or len(name) > MACHINE_NAME_MAX or name.endswith("-"):
        raise SandboxError(
            f"invalid sandbox host name {name!r}: use 1-{MACHINE_NAME_MAX} characters of a-z, "
            "0-9 and '-', starting with a letter (nspawn names its veth ve-NAME, and Linux "
            f"interface names are at most {IFNAME_MAX} characters)"
        )
    return name


def veth_name(name: str) -> str:
    return VETH_PREFIX + validate_machine_name(name)


@dataclass(frozen=True)
class HostAddresses:
    """The /24 of one host: the controller's end (gateway) and the host's own address."""

    index: int
    gateway: str
    address: str
    prefix: int = 24

    @property
    def gateway_cidr(self) -> str:
        return f"{self.gateway}/{self.prefix}"

    @property
    def address_cidr(self) -> str:
        return f"{self.address}/{self.prefix}"


def host_addresses(index: int) -> HostAddresses:
    if not 1 <= index <= 254:
        raise SandboxError(f"sandbox subnet index must be within 1-254, got {index}")
    base = int(SANDBOX_NETWORK.network_address) + (index << 8)
    return HostAddresses(
        index=index,
        gateway=str(ipaddress.IPv4Address(base + 1)),
        address=str(ipaddress.IPv4Address(base + 2)),
    )


def used_subnet_indexes(ip_addr_output: str) -> set[int]:
    """Third octets of 10.231.x.y addresses in `ip -o -4 addr show` output."""
    used: set[int] = set()
    for match in re.finditer(r"\binet (\d+\.\d+\.\d+\.\d+)/\d+", ip_addr_output):
        address = ipaddress.IPv4Address(match.group(1))
        if address in SANDBOX_NETWORK:
            used.add((int(address) >> 8) & 0xFF)
    return used


def allocate_index(used: Iterable[int]) -> int:
    taken = set(used)
    for index in range(1, 255):
        if index not in taken:
            return index
    raise SandboxError("all 254 sandbox subnets (10.231.1-254.0/24) are in use")


def parse_default_route_interface(ip_route_output: str) -> str:
    """The device of the first default route in `ip -o -4 route show default` output."""
    for line in ip_route_output.splitlines():
        words = line.split()
        if words[:1] == ["default"] and "dev" in words:
            return words[words.index("dev") + 1]
    raise SandboxError(
        "this machine has no IPv4 default route, so test hosts cannot reach the package "
        f"mirrors (ip route said: {ip_route_output.strip()!r})"
    )


def parse_nameservers(resolv_conf: str) -> list[str]:
    """IPv4 nameservers of a resolv.conf."""
    servers: list[str] = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                servers.append(str(ipaddress.IPv4Address(words[1])))
            except ValueError:
                continue
    return servers


# --- firewall --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirewallRule:
    """One iptables rule, as a table, a chain and a rule specification."""

    table: str
    chain: str
    spec: tuple[str, ...]


def rule_tag(harness_id: str) -> str:
    return RULE_TAG_PREFIX + harness_id


def firewall_rules(
    out_interface: str, allowed_destinations: Sequence[str], tag: str
) -> list[FirewallRule]:
    """NAT out of `out_interface`, and forwarding from the sandbox to the allowed addresses only.

    Test hosts may reach each other, the controller (not forwarded) and `allowed_destinations`
    (the package mirrors and nameservers); anything else is refused before it leaves.

    Listed in the order they must end up in their chain; see `iptables_insert_order`.
    """
    net = str(SANDBOX_NETWORK)
    comment = ("-m", "comment", "--comment", tag)
    forward = [
        FirewallRule(
            "filter",
            "FORWARD",
            (
                "-d",
                net,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                *comment,
                "-j",
                "ACCEPT",
            ),
        ),
        FirewallRule("filter", "FORWARD", ("-s", net, "-d", net, *comment, "-j", "ACCEPT")),
    ]
    for destination in dict.fromkeys(allowed_destinations):
        forward.append(
            FirewallRule(
                "filter", "FORWARD", ("-s", net, "-d", destination, *comment, "-j", "ACCEPT")
            )
        )
    # REJECT rather than DROP: a connection to anywhere else fails at once instead of hanging.
    reject = ("-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
    forward.append(FirewallRule("filter", "FORWARD", ("-s", net, *comment, *reject)))
    nat = FirewallRule(
        "nat",
        "POSTROUTING",
        ("-s", net, "!", "-d", net, "-o", out_interface, *comment, "-j", "MASQUERADE"),
    )
    return [*forward, nat]


def iptables_insert_order(rules: Sequence[FirewallRule]) -> list[FirewallRule]:
    """Each rule is inserted at position 1 so it precedes rules others added: insert in reverse."""
    return list(reversed(rules))


def iptables_argv(action: Literal["insert", "delete", "check"], rule: FirewallRule) -> list[str]:
    flag = {"insert": "-I", "delete": "-D", "check": "-C"}[action]
    position = ["1"] if action == "insert" else []
    return ["iptables", "-w", "-t", rule.table, flag, rule.chain, *position, *rule.spec]


def tags_in_ruleset(iptables_save_output: str) -> set[str]:
    """Sandbox rule tags present in `iptables-save` output."""
    return set(re.findall(re.escape(RULE_TAG_PREFIX) + r"[A-Za-z0-9_-]+", iptables_save_output))


# --- cgroups and processes -------------------------------------------------------------------


def parse_cgroup_layout(mountinfo: str) -> tuple[CgroupLayout, dict[str, Path]]:
    """Which cgroup layout this machine has, and where its systemd-relevant hierarchies are.

    Returns the layout and the mount points of the `name=systemd` v1 hierarchy (key "systemd")
    and of the v2 hierarchy (key "unified"), whichever exist.
    """
    mounts: dict[str, Path] = {}
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mount_point = Path(_unescape_mount(fields[4]))
        fstype, super_options = rfields[0], rfields[2].split(",")
        if fstype == "cgroup2" and "unified" not in mounts:
            mounts["unified"] = mount_point
        elif fstype == "cgroup" and "name=systemd" in super_options:
            mounts["systemd"] = mount_point
    if "systemd" in mounts and "unified" in mounts:
        return "hybrid", mounts
    if "unified" in mounts:
        return "unified", mounts
    if "systemd" in mounts:
        return "legacy", mounts
    raise SandboxError(
        "no cgroup hierarchy for systemd is mounted (neither cgroup2 nor a name=systemd cgroup "
        "v1 hierarchy in /proc/self/mountinfo); systemd-nspawn cannot boot a container"
    )


def _unescape_mount(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def cgroup_dirs(mounts: Mapping[str, Path], name: str) -> list[Path]:
    """The per-host cgroups the launcher moves itself into, one per systemd-relevant hierarchy."""
    leaf = f"llmprov-{validate_machine_name(name)}"
    return [mounts[key] / leaf for key in ("systemd", "unified") if key in mounts]


def mount_points_under(mountinfo: str, root: Path) -> list[Path]:
    """Mount points at or below `root`, deepest first (the order to unmount them)."""
    found: list[Path] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = Path(_unescape_mount(fields[4]))
        if point == root or root in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def parse_proc_stat(stat: str) -> tuple[str, str, int]:
    """(comm, state, ppid) from the text of /proc/PID/stat; comm may hold spaces and ')'."""
    head, _, tail = stat.rpartition(")")
    comm = head.partition("(")[2]
    fields = tail.split()
    return comm, fields[0], int(fields[1])


# --- argv ------------------------------------------------------------------------------------


def nspawn_argv(root: Path, name: str) -> list[str]:
    """Boot `root` with systemd as PID 1 behind a veth, outside any systemd on the controller.

    --register=no and --keep-unit: there is no system bus to ask machined or systemd for a scope.
    --resolv-conf=copy-host: with private networking nspawn would otherwise leave the base's file.
    """
    return [
        "systemd-nspawn",
        "--quiet",
        "-b",
        "-D",
        str(root),
        "-M",
        validate_machine_name(name),
        "--register=no",
        "--keep-unit",
        "--console=read-only",
        "--network-veth",
        "--resolv-conf=copy-host",
        "--link-journal=no",
    ]


def launcher_argv(cgroup_procs: Sequence[Path], argv: Sequence[str]) -> list[str]:
    """A shell that moves itself into the given cgroups, then execs `argv` (keeping its pid).

    Done in the child rather than with a preexec hook, which is unsafe with threads.
    """
    script = (
        'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n - 1)); done; exec "$@"'
    )
    return ["sh", "-ec", script, "sh", str(len(cgroup_procs)), *map(str, cgroup_procs), *argv]


def nsenter_argv(
    leader: int, argv: Sequence[str], namespaces: Sequence[str] = ("-a",)
) -> list[str]:
    return ["nsenter", "-t", str(leader), *namespaces, "--", *argv]


def overlay_mount_argv(lowers: Sequence[Path], upper: Path, work: Path, merged: Path) -> list[str]:
    """Mount an overlay; `lowers` go top layer first, as overlayfs lists them."""
    if not lowers:
        raise SandboxError("an overlay needs at least one lower layer")
    for path in (*lowers, upper, work):
        if any(c in str(path) for c in ",:\\"):
            raise SandboxError(f"overlayfs cannot take a path with ',', ':' or '\\': {path}")
    lowerdir = ":".join(str(p) for p in lowers)
    options = f"lowerdir={lowerdir},upperdir={upper},workdir={work}"
    return ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)]


def hosts_file(name: str) -> str:
    """/etc/hosts for a host: its own name resolves, as sudo expects."""
    return (
        "127.0.0.1\tlocalhost\n"
        f"127.0.1.1\t{validate_machine_name(name)}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
    )


SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# pip and Python clients default to certifi's CAs; point them at the system bundle that carries
# the controller's local CAs.
PIP_CONF_TRUST = f"[global]\ncert = {SYSTEM_CA_BUNDLE}\n"
TRUST_ENVIRONMENT = {"SSL_CERT_FILE": SYSTEM_CA_BUNDLE, "REQUESTS_CA_BUNDLE": SYSTEM_CA_BUNDLE}


def with_trust_environment(environment: str) -> str:
    """/etc/environment text with the CA bundle variables set (replacing earlier values)."""
    kept = [
        line
        for line in environment.splitlines()
        if line.split("=", 1)[0].strip() not in TRUST_ENVIRONMENT
    ]
    kept += [f"{key}={value}" for key, value in TRUST_ENVIRONMENT.items()]
    return "\n".join(kept) + "\n"


@dataclass(frozen=True)
class ContainerNetworkPlan:
    """Commands that give a host its address: on the controller, then in the host's netns."""

    controller: list[list[str]] = field(default_factory=list)
    container: list[list[str]] = field(default_factory=list)


def network_plan(name: str, addresses: HostAddresses) -> ContainerNetworkPlan:
    veth = veth_name(name)
    return ContainerNetworkPlan(
        controller=[
            ["ip", "addr", "add", addresses.gateway_cidr, "dev", veth],
            ["ip", "link", "set", veth, "up"],
        ],
        container=[
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", addresses.address_cidr, "dev", "host0"],
            ["ip", "link", "set", "host0", "up"],
            ["ip", "route", "add", "default", "via", addresses.gateway],
        ],
    )


def is_ready_state(system_state: str) -> bool:
    return system_state.strip() in READY_STATES
