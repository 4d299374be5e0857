"""Pure planning of sandbox hosts: sources, base keys, names, addresses, cgroups, argv, rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmprov.sandbox import plan
from llmprov.sandbox.errors import SandboxError

# This machine's /etc/apt/sources.list.d/debian.sources, as captured.
DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

NODESOURCE_SOURCES = """\
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/nodesource.gpg
"""

# /proc/self/mountinfo cgroup lines of this machine (hybrid: v1 controllers, name=systemd, v2).
HYBRID_MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_deb822_parser_reads_every_stanza_and_skips_comments() -> None:
    sources = plan.parse_deb822_sources(DEBIAN_SOURCES)
    assert [s.uris for s in sources] == [
        ("http://deb.debian.org/debian",),
        ("http://deb.debian.org/debian-security",),
    ]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].options == (("Signed-By", "/usr/share/keyrings/debian-archive-keyring.gpg"),)


def test_deb822_parser_skips_disabled_stanzas() -> None:
    text = "Types: deb\nURIs: http://x/debian\nSuites: bookworm\nEnabled: no\n"
    assert plan.parse_deb822_sources(text) == []


def test_deb822_parser_keeps_multiline_values() -> None:
    text = (
        "Types: deb\nURIs: http://x/debian\nSuites: bookworm\nComponents: main\n"
        "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n"
    )
    (source,) = plan.parse_deb822_sources(text)
    assert source.options == (("Signed-By", "\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n.\nabc"),)
    assert "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n" in plan.render_deb822(
        [source]
    )


def test_deb822_parser_rejects_a_stanza_without_uris() -> None:
    with pytest.raises(SandboxError, match="uris"):
        plan.parse_deb822_sources("Types: deb\nSuites: bookworm\n")


def test_one_line_parser_reads_options_and_ignores_comments() -> None:
    text = (
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n"
        "deb-src http://mirror.example/debian bookworm main # trailing\n"
    )
    first, second = plan.parse_one_line_sources(text)
    assert first == plan.AptSource(
        types=("deb",),
        uris=("http://mirror.example/debian",),
        suites=("bookworm",),
        components=("main", "contrib"),
        options=(("Architectures", "amd64"), ("Signed-By", "/k.gpg")),
    )
    assert second.types == ("deb-src",)


def test_one_line_parser_rejects_a_line_without_suite() -> None:
    with pytest.raises(SandboxError, match="suite"):
        plan.parse_one_line_sources("deb http://mirror.example/debian\n")


def test_mirror_is_the_source_that_carries_the_suite_itself() -> None:
    sources = plan.parse_deb822_sources(NODESOURCE_SOURCES + "\n" + DEBIAN_SOURCES)
    assert plan.pick_mirror(sources, "bookworm") == "http://deb.debian.org/debian"


def test_mirror_ignores_source_packages() -> None:
    sources = plan.parse_one_line_sources(
        "deb-src http://src.example/debian bookworm main\ndeb http://bin.example/debian/ bookworm main\n"
    )
    assert plan.pick_mirror(sources, "bookworm") == "http://bin.example/debian"


def test_missing_suite_names_what_was_found() -> None:
    sources = plan.parse_deb822_sources(NODESOURCE_SOURCES)
    with pytest.raises(SandboxError, match=r"bookworm.*nodistro"):
        plan.pick_mirror(sources, "bookworm")


def test_sources_for_hosts_keep_the_release_family_only() -> None:
    sources = plan.parse_deb822_sources(NODESOURCE_SOURCES + "\n" + DEBIAN_SOURCES)
    sources += plan.parse_one_line_sources(
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
    )
    kept = plan.sources_for_suite(sources, "bookworm")
    assert [s.suites for s in kept] == [("bookworm", "bookworm-updates"), ("bookworm-security",)]
    assert plan.uri_hosts(kept) == ["deb.debian.org"]


def test_rendered_sources_parse_back_to_the_same_entries() -> None:
    sources = plan.parse_deb822_sources(DEBIAN_SOURCES)
    assert plan.parse_deb822_sources(plan.render_deb822(sources)) == sources


@pytest.mark.parametrize(
    "change",
    [
        {"packages": (*plan.BASE_PACKAGES, "curl")},
        {"suite": "trixie"},
        {"mirror": "http://other.example/debian"},
        {"sources_text": "Types: deb\n"},
    ],
)
def test_base_key_changes_with_each_input(change: dict[str, object]) -> None:
    args: dict[str, object] = {
        "packages": plan.BASE_PACKAGES,
        "suite": "bookworm",
        "mirror": "http://deb.debian.org/debian",
        "sources_text": "",
    }
    before = plan.base_key(**args)  # type: ignore[arg-type]
    assert plan.base_key(**{**args, **change}) != before  # type: ignore[arg-type]


def test_base_key_ignores_package_order_and_trailing_slash() -> None:
    a = plan.base_key(("python3", "sudo"), "bookworm", "http://m/debian", "")
    b = plan.base_key(("sudo", "python3"), "bookworm", "http://m/debian/", "")
    assert a == b


def test_debootstrap_builds_minbase_with_the_package_list() -> None:
    argv = plan.debootstrap_argv(Path("/r"), "bookworm", "http://m/debian", ("systemd", "sudo"))
    assert argv == [
        "debootstrap",
        "--variant=minbase",
        "--include=systemd,sudo",
        "bookworm",
        "/r",
        "http://m/debian",
    ]


@pytest.mark.parametrize("name", ["t1", "sbx-12", "a" * plan.MACHINE_NAME_MAX])
def test_valid_names_keep_the_veth_name_within_the_kernel_limit(name: str) -> None:
    assert len(plan.veth_name(name)) <= 15


@pytest.mark.parametrize("name", ["", "1abc", "Upper", "a_b", "trailing-", "a" * 13, "a.b"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(SandboxError, match="invalid sandbox host name"):
        plan.validate_machine_name(name)


def test_host_addresses_put_the_gateway_at_1_and_the_host_at_2() -> None:
    addresses = plan.host_addresses(7)
    assert (addresses.gateway_cidr, addresses.address_cidr) == ("10.231.7.1/24", "10.231.7.2/24")


@pytest.mark.parametrize("index", [0, 255])
def test_host_address_index_is_bounded(index: int) -> None:
    with pytest.raises(SandboxError):
        plan.host_addresses(index)


def test_used_indexes_come_from_sandbox_addresses_only() -> None:
    output = (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
        "4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever\n"
        "9: ve-t1    inet 10.231.3.1/24 scope global ve-t1\\       valid_lft forever\n"
        "10: ve-t2    inet 10.232.4.1/24 scope global ve-t2\\       valid_lft forever\n"
    )
    assert plan.used_subnet_indexes(output) == {3}


def test_allocation_takes_the_lowest_free_index_and_fails_when_full() -> None:
    assert plan.allocate_index({1, 2, 4}) == 3
    with pytest.raises(SandboxError, match="in use"):
        plan.allocate_index(range(1, 255))


def test_default_route_interface_is_read_from_ip_route() -> None:
    assert plan.parse_default_route_interface("default via 192.0.2.1 dev eth0 \n") == "eth0"
    with pytest.raises(SandboxError, match="no IPv4 default route"):
        plan.parse_default_route_interface("")


def test_nameservers_are_ipv4_only() -> None:
    conf = "nameserver 10.255.255.53\nnameserver ::1\nsearch example\n"
    assert plan.parse_nameservers(conf) == ["10.255.255.53"]


def test_firewall_nats_out_of_the_interface_and_refuses_unlisted_egress() -> None:
    rules = plan.firewall_rules("eth0", ["203.0.113.80", "203.0.113.80"], "llmprov-sandbox:ab")
    assert all("llmprov-sandbox:ab" in r.spec for r in rules)
    nat = [r for r in rules if r.table == "nat"]
    assert len(nat) == 1 and nat[0].chain == "POSTROUTING"
    assert nat[0].spec[-2:] == ("-j", "MASQUERADE") and "eth0" in nat[0].spec
    forward = [r for r in rules if r.chain == "FORWARD"]
    allowed = [r for r in forward if "203.0.113.80" in r.spec]
    assert len(allowed) == 1, "duplicate destinations give one rule"
    assert forward[-1].spec[-4:-2] == ("-j", "REJECT"), "the refusal comes last in the chain"
    assert "-d" not in forward[-1].spec, "the refusal covers every other destination"


def test_rules_are_inserted_in_reverse_so_the_chain_reads_in_order() -> None:
    rules = plan.firewall_rules("eth0", ["192.0.2.9"], "t")
    assert plan.iptables_insert_order(rules) == rules[::-1]
    argv = plan.iptables_argv("insert", rules[0])
    assert argv[:7] == ["iptables", "-w", "-t", "filter", "-I", "FORWARD", "1"]
    assert plan.iptables_argv("delete", rules[0])[4:6] == ["-D", "FORWARD"]


def test_rule_tags_are_found_in_iptables_save_output() -> None:
    saved = (
        "*nat\n:POSTROUTING ACCEPT [0:0]\n"
        '-A POSTROUTING -s 10.231.0.0/16 -o eth0 -m comment --comment "llmprov-sandbox:1f2e" '
        "-j MASQUERADE\nCOMMIT\n"
    )
    assert plan.tags_in_ruleset(saved) == {"llmprov-sandbox:1f2e"}
    assert plan.tags_in_ruleset("*nat\nCOMMIT\n") == set()


def test_hybrid_cgroups_give_a_dir_in_the_systemd_and_unified_hierarchies() -> None:
    layout, mounts = plan.parse_cgroup_layout(HYBRID_MOUNTINFO)
    assert layout == "hybrid"
    assert plan.cgroup_dirs(mounts, "t1") == [
        Path("/sys/fs/cgroup/systemd/llmprov-t1"),
        Path("/sys/fs/cgroup/unified/llmprov-t1"),
    ]


def test_unified_cgroups_give_one_dir() -> None:
    layout, mounts = plan.parse_cgroup_layout(UNIFIED_MOUNTINFO)
    assert layout == "unified"
    assert plan.cgroup_dirs(mounts, "t1") == [Path("/sys/fs/cgroup/llmprov-t1")]


def test_no_cgroup_for_systemd_is_an_error() -> None:
    with pytest.raises(SandboxError, match="cgroup"):
        plan.parse_cgroup_layout("22 27 0:21 / /proc rw,relatime - proc proc rw\n")


def test_mount_points_under_a_tree_come_deepest_first() -> None:
    mountinfo = (
        "50 27 0:40 / /w/h/merged rw - overlay overlay rw\n"
        "51 50 0:41 / /w/h/merged/proc rw - proc proc rw\n"
        "52 27 0:42 / /w/other rw - tmpfs tmpfs rw\n"
        "53 27 0:43 / /w/h2 rw - tmpfs tmpfs rw\n"
        "54 27 0:44 / /w/with\\040space rw - tmpfs tmpfs rw\n"
    )
    assert plan.mount_points_under(mountinfo, Path("/w/h")) == [
        Path("/w/h/merged/proc"),
        Path("/w/h/merged"),
    ]
    assert plan.mount_points_under(mountinfo, Path("/w/with space")) == [Path("/w/with space")]


def test_proc_stat_parsing_survives_odd_command_names() -> None:
    line = "24042 (a) b) (c) S 24037 24037 3288 0 -1 4194304 101 0 0 0"
    assert plan.parse_proc_stat(line) == ("a) b) (c", "S", 24037)


def test_nspawn_boots_with_systemd_without_registering_and_behind_a_veth() -> None:
    argv = plan.nspawn_argv(Path("/w/t1/merged"), "t1")
    assert argv[0] == "systemd-nspawn"
    for flag in ("-b", "--register=no", "--keep-unit", "--console=read-only", "--network-veth"):
        assert flag in argv
    assert argv[argv.index("-D") + 1] == "/w/t1/merged"
    assert argv[argv.index("-M") + 1] == "t1"


def test_launcher_joins_each_cgroup_then_execs_the_command() -> None:
    argv = plan.launcher_argv([Path("/a/cgroup.procs"), Path("/b/cgroup.procs")], ["true", "x"])
    assert argv[:2] == ["sh", "-ec"]
    assert argv[3:] == ["sh", "2", "/a/cgroup.procs", "/b/cgroup.procs", "true", "x"]
    assert "exec" in argv[2]


def test_overlay_lists_lower_layers_top_first() -> None:
    argv = plan.overlay_mount_argv(
        [Path("/l/trust"), Path("/l/base")], Path("/u"), Path("/w"), Path("/m")
    )
    assert argv == [
        "mount",
        "-t",
        "overlay",
        "overlay",
        "-o",
        "lowerdir=/l/trust:/l/base,upperdir=/u,workdir=/w",
        "/m",
    ]


def test_overlay_refuses_paths_that_break_its_option_string() -> None:
    with pytest.raises(SandboxError, match="overlayfs"):
        plan.overlay_mount_argv([Path("/a,b")], Path("/u"), Path("/w"), Path("/m"))


def test_network_plan_addresses_both_ends_and_routes_through_the_gateway() -> None:
    steps = plan.network_plan("t1", plan.host_addresses(5))
    assert ["ip", "addr", "add", "10.231.5.1/24", "dev", "ve-t1"] in steps.controller
    assert ["ip", "addr", "add", "10.231.5.2/24", "dev", "host0"] in steps.container
    assert steps.container[-1] == ["ip", "route", "add", "default", "via", "10.231.5.1"]


def test_nsenter_enters_all_namespaces_by_default() -> None:
    assert plan.nsenter_argv(42, ["true"]) == ["nsenter", "-t", "42", "-a", "--", "true"]


@pytest.mark.parametrize(
    ("state", "ready"),
    [("running\n", True), ("degraded\n", True), ("starting\n", False), ("", False)],
)
def test_running_and_degraded_count_as_booted(state: str, ready: bool) -> None:
    assert plan.is_ready_state(state) is ready


def test_trust_environment_replaces_earlier_values() -> None:
    text = plan.with_trust_environment("LANG=C\nSSL_CERT_FILE=/old\n")
    assert text.splitlines() == [
        "LANG=C",
        f"SSL_CERT_FILE={plan.SYSTEM_CA_BUNDLE}",
        f"REQUESTS_CA_BUNDLE={plan.SYSTEM_CA_BUNDLE}",
    ]


def test_hosts_file_resolves_the_host_name() -> None:
    assert "127.0.1.1\tt1\n" in plan.hosts_file("t1")


def test_cache_and_state_paths_follow_the_environment() -> None:
    home = Path("/home/u")
    assert plan.default_cache_dir({}, home) == Path("/home/u/.cache/llmprov")
    assert plan.default_cache_dir({"LLMPROV_CACHE": "/c"}, home) == Path("/c")
    assert plan.default_state_path({"LLMPROV_CACHE": "/c"}, home) == Path("/c/sandbox/state.json")
    assert plan.default_state_path({"LLMPROV_SANDBOX_STATE": "/s.json"}, home) == Path("/s.json")
