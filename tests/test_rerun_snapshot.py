"""The re-run snapshot: its command run for real in sh, its parser on any input, its decisions strict,
and a llama.cpp no-op re-run on pyinfra's `@fake` host pinned at one fact and no command."""

from __future__ import annotations

import getpass
import grp
import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fixture_runner import Plan, loose_facts, run_deploy
from hypothesis import given, settings
from hypothesis import strategies as st
from pyinfra.api import State

from llmprov.core.config import HostConfig
from llmprov.core.layout import EngineLayout, model_path
from llmprov.core.model_record import FILE_KEY, RECORD_SCHEMA
from llmprov.core.render.plan import plan_host
from llmprov.core.snapshot import (
    MARK,
    PathStat,
    Snapshot,
    SnapshotError,
    SnapshotRequest,
    UserEntry,
    parse_snapshot,
    snapshot_command,
)
from llmprov.core.upgrade import Deployed, EngineState, render_state
from llmprov.core.validate import ControllerFiles, validate_host
from llmprov.deploy import controller_digest, llamacpp, upgrade
from llmprov.deploy.common import engine_dir_paths
from llmprov.facts.snapshot import HostSnapshot

HOST = "@fake/rerun-host"
T0 = "2026-01-01T00:00:00+00:00"
LAYOUT = EngineLayout("llamacpp")
UNIT = LAYOUT.unit_name
MTIME = "1700000000.123456789"
ENV = "/etc/llmprov/llamacpp.env"


def take(request: SnapshotRequest) -> Snapshot:
    out = subprocess.run(
        ["sh", "-c", snapshot_command(request)], capture_output=True, text=True, check=True
    )
    assert out.stderr == ""
    return parse_snapshot(out.stdout.splitlines())


# ---------------------------------------------------------------- the command, run in sh


def test_the_command_reads_stat_digest_user_group_and_sections_in_one_shell(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "a folder"
    folder.mkdir(mode=0o750)
    os.chmod(folder, 0o750)
    data = folder / "settings.env"
    data.write_text("A=1\n")
    os.chmod(data, 0o640)
    link = tmp_path / "link"
    link.symlink_to(folder)
    me, mine = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    snap = take(
        SnapshotRequest(
            paths=(str(folder), str(data), str(link), str(tmp_path / "missing")),
            hashed=(str(data), str(tmp_path / "missing")),
            users=(me, "no-such-user-llmprov"),
            groups=(mine, "no-such-group-llmprov"),
            sections=(
                ("lines", "printf 'a\\n\\nb\\n\\n\\n'"),
                ("empty", "true"),
                ("fails", "echo oops >&2; exit 3"),
                ("no newline", "printf x"),
            ),
        )
    )
    assert snap.taken
    assert snap.dir_ok(str(folder), me, mine, "750")
    assert not snap.dir_ok(str(folder), me, mine, "755")
    assert snap.file_ok(str(data), hashlib.sha256(b"A=1\n").hexdigest(), me, mine, "640")
    assert not snap.file_ok(str(data), hashlib.sha256(b"A=2\n").hexdigest(), me, mine, "640")
    assert snap.paths[str(link)].kind == "link" and not snap.dir_ok(str(link))
    assert str(tmp_path / "missing") not in snap.paths
    assert snap.users[me].group == mine and "no-such-user-llmprov" not in snap.users
    assert snap.group_ok(mine) and not snap.group_ok("no-such-group-llmprov")
    assert snap.section("lines") == ["a", "", "b"]
    assert snap.section("empty") == snap.section("fails") == []
    assert snap.section("no newline") == ["x"]
    assert snap.section("never asked") is None


def test_units_are_read_only_where_systemctl_exists(tmp_path: Path) -> None:
    """Without systemctl (PATH emptied of it), no unit is vouched for; the command still exits 0."""
    request = SnapshotRequest(units=("ssh.service",), sections=(("after", "echo here"),))
    out = subprocess.run(
        ["/bin/sh", "-c", snapshot_command(request)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": str(tmp_path)},
    )
    snap = parse_snapshot(out.stdout.splitlines())
    assert snap.units == {} and snap.section("after") == ["here"]


@pytest.mark.parametrize("bad", ["", "/etc/x\n/etc/y", "/tmp/a\rb"])
def test_a_request_with_a_line_break_or_an_empty_name_is_refused(bad: str) -> None:
    with pytest.raises(SnapshotError, match="line break"):
        snapshot_command(SnapshotRequest(paths=(bad,)))


names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\x00"),
    min_size=1,
    max_size=30,
).filter(lambda n: n not in (".", ".."))


@settings(max_examples=25, deadline=None)
@given(name=names, content=st.binary(max_size=64))
def test_any_file_name_is_stated_and_hashed_under_its_own_name(
    tmp_path_factory: pytest.TempPathFactory, name: str, content: bytes
) -> None:
    folder = tmp_path_factory.mktemp("names")
    path = folder / name
    try:
        path.write_bytes(content)
    except OSError:
        return  # a name the file system refuses (too long in bytes)
    snap = take(SnapshotRequest(paths=(str(path),), hashed=(str(path),)))
    digest = hashlib.sha256(content).hexdigest()
    assert snap.paths[str(path)].kind == "file"
    if "\\" in name:
        # sha256sum escapes such a name in its line: a record it cannot read vouches for nothing.
        assert not snap.file_ok(str(path), digest, None, None, None)
        return
    assert snap.file_ok(str(path), digest, None, None, None)


# ---------------------------------------------------------------- the parser and the decisions


@given(st.lists(st.text(max_size=80), max_size=30))
def test_the_parser_takes_any_lines_without_raising(lines: list[str]) -> None:
    snap = parse_snapshot(lines)
    assert snap.taken


@given(
    st.lists(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
            lambda t: not t.startswith(MARK) and "\n" not in t and "\r" not in t
        ),
        max_size=12,
    )
)
def test_a_sections_lines_come_back_as_they_were(lines: list[str]) -> None:
    snap = parse_snapshot([f"{MARK} section s", *lines, f"{MARK} section t"])
    assert snap.section("s") == lines and snap.section("t") == []


def test_an_empty_snapshot_vouches_for_nothing() -> None:
    snap = HostSnapshot.default()
    assert not snap.taken
    assert not snap.dir_ok("/")
    assert not snap.file_ok("/etc/passwd", "0" * 64, None, None, None)
    assert not snap.group_ok("root") and not snap.unit_ok(UNIT)
    assert not snap.user_ok("root", "root", [], "/root", "/bin/bash")
    assert snap.section("arch") is None


USER = UserEntry(home="/var/lib/x", shell="/usr/sbin/nologin", group="x", groups=frozenset({"x"}))
HOME = PathStat("dir", "x", "x", 0o750)


@pytest.mark.parametrize(
    ("entry", "home", "extra", "ok"),
    [
        (USER, HOME, [], True),
        (UserEntry("/var/lib/x", "/bin/sh", "x", frozenset({"x"})), HOME, [], False),
        (UserEntry("/home/x", "/usr/sbin/nologin", "x", frozenset({"x"})), HOME, [], False),
        (UserEntry("/var/lib/x", "/usr/sbin/nologin", "y", frozenset({"y"})), HOME, [], False),
        (UserEntry("/var/lib/x", "/usr/sbin/nologin", "x", frozenset({"x", "z"})), HOME, [], False),
        (USER, HOME, ["video"], False),
        (
            UserEntry("/var/lib/x", "/usr/sbin/nologin", "x", frozenset({"x", "video"})),
            HOME,
            ["video"],
            True,
        ),
        (USER, PathStat("dir", "root", "x", 0o750), [], False),
        (USER, PathStat("link", "x", "x", 0o777), [], False),
    ],
)
def test_a_user_is_vouched_for_only_exactly_as_server_user_wants_it(
    entry: UserEntry, home: PathStat, extra: list[str], ok: bool
) -> None:
    snap = Snapshot(paths={"/var/lib/x": home}, users={"x": entry}, taken=True)
    assert snap.user_ok("x", "x", extra, "/var/lib/x", "/usr/sbin/nologin") is ok


@pytest.mark.parametrize(
    ("sub", "enabled", "ok"),
    [
        ("running", "enabled", True),
        ("exited", "enabled", False),
        ("dead", "enabled", False),
        ("running", "disabled", False),
        ("running", "static", False),
        ("running", "enabled-runtime", False),
    ],
)
def test_a_unit_is_vouched_for_only_running_and_enabled(sub: str, enabled: str, ok: bool) -> None:
    other = ["", "Id=other.service", "SubState=running", "UnitFileState=enabled"]
    block = [f"{MARK} units", f"UnitFileState={enabled}", f"Id={UNIT}", f"SubState={sub}", *other]
    snap = parse_snapshot(block)
    assert snap.unit_ok(UNIT) is ok and snap.unit_ok("other.service")


# ---------------------------------------------------------------- a llama.cpp re-run on @fake


def config(base: Path) -> HostConfig:
    model = base / "smollm2.gguf"
    model.write_bytes(b"GGUF fake model")
    files = ControllerFiles(read=lambda p: Path(p).read_text(), exists=lambda p: Path(p).exists())
    cfg = validate_host(HOST, {"engine": "llamacpp", "model": f"file://{model}"}, files)
    assert not isinstance(cfg, list), [str(e) for e in cfg]
    return cfg


def served_host(cfg: HostConfig, key: str) -> list[str]:
    """The snapshot output of a host llama.cpp was deployed to with `cfg`, as the command prints it."""
    user = cfg.service_user
    owners = {
        LAYOUT.root: ("root", "root", "755"),
        "/etc/llmprov": ("root", "root", "700"),
        LAYOUT.state_dir: (user, user, "750"),
        LAYOUT.models_dir: (user, user, "750"),
        LAYOUT.cache_dir: (user, user, "750"),
        "/etc/systemd/system": ("root", "root", "755"),
    }
    assert set(engine_dir_paths(cfg)) <= set(owners)
    lines = [f"{MARK} path 41ed {u} {g} {m} {p}" for p, (u, g, m) in owners.items()]
    for f in plan_host(cfg):
        lines.append(f"{MARK} path 81a4 {f.owner} {f.owner} {f.mode:o} {f.path}")
    lines.append(f"{MARK} hashes")
    for f in plan_host(cfg):
        lines.append(f"{hashlib.sha256(f.content.encode()).hexdigest()}  {f.path}")
    lines.append(
        f"{MARK} user {user} {user} {user}:x:999:999::{LAYOUT.state_dir}:/usr/sbin/nologin"
    )
    lines.append(f"{MARK} group {user}")
    lines += [f"{MARK} units", f"Id={UNIT}", "SubState=running", "UnitFileState=enabled"]
    local = Path(cfg.model_ref.raw.removeprefix("file://"))
    digest = controller_digest.sha256(local, False)
    size = local.stat().st_size
    record = {
        "schema_version": RECORD_SCHEMA,
        "files": {
            FILE_KEY: {"size": size, "mtime_ns": int(MTIME.replace(".", "")), "sha256": digest}
        },
    }
    now_serving = Deployed(
        "llamacpp",
        llamacpp.source_for(cfg.settings.llamacpp).version,
        key,
        cfg.model_ref.raw,
        upgrade.model_digest(cfg),
        T0,
    )
    sections = {
        "arch": ["x86_64"],
        "os-release": ["ID=debian", 'VERSION_ID="12"'],
        "cpu-flags": ["cpu0"],
        f"installed {LAYOUT.root}": [f"installed {key}", f"current {LAYOUT.version_dir(key)}"],
        "state /etc/llmprov/state.json": render_state(
            {"llamacpp": EngineState(now_serving, ())}
        ).splitlines(),
        f"model {model_path(cfg)}": [f"f {size} {MTIME} .", "r " + json.dumps(record)],
    }
    for name, body in sections.items():
        lines += [f"{MARK} section {name}", *body]
    return lines


def rerun(
    cfg: HostConfig, monkeypatch: pytest.MonkeyPatch, lines: list[str], asked: list[str]
) -> Plan:
    others = loose_facts({}, asked)

    def get_fact(state: Any, host: Any, cls: type, args: Any = None, kwargs: Any = None) -> Any:
        if cls is HostSnapshot:
            asked.append("HostSnapshot")
            return HostSnapshot().process(lines)
        return others(state, host, cls, args, kwargs)

    return run_deploy(lambda: llamacpp.deploy_llamacpp(cfg), monkeypatch, get_fact, HOST, None)


@pytest.fixture
def host_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[HostConfig, str]:
    monkeypatch.setenv("LLMPROV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(upgrade, "now", lambda: T0)
    cfg = config(tmp_path)
    key = llamacpp.build_key_for_host(
        cfg,
        parse_snapshot(
            [
                f"{MARK} section arch",
                "x86_64",
                f"{MARK} section os-release",
                "ID=debian",
                'VERSION_ID="12"',
                f"{MARK} section cpu-flags",
                "cpu0",
            ]
        ),
    )
    return cfg, key


def test_a_noop_rerun_asks_one_fact_and_runs_no_command(
    host_key: tuple[HostConfig, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pin: a llama.cpp re-run with nothing to do is one round trip per host, planning and
    running together. A new fact or an operation that always runs a command fails this test."""
    cfg, key = host_key
    asked: list[str] = []
    added: list[str] = []
    real = State.set_op_data_for_host

    def add(state: State, host: Any, op_hash: str, op_data: Any) -> None:
        added.append(op_hash)
        real(state, host, op_hash, op_data)

    monkeypatch.setattr(State, "set_op_data_for_host", add)
    plan = rerun(cfg, monkeypatch, served_host(cfg, key), asked)
    assert not plan.failed
    assert asked == ["HostSnapshot"]
    # Not even an operation that would skip itself: pyinfra's handling of each costs CPU per host.
    assert added == [] and plan.ops == []
    assert f"{LAYOUT.current} already points at {key}" in plan.notes


@pytest.mark.parametrize(
    ("drift", "operation", "fact"),
    [
        (
            lambda ls: [x.replace(" 700 /etc/llmprov", " 755 /etc/llmprov") for x in ls],
            "Settings folder",
            "Directory /etc/llmprov",
        ),
        (
            lambda ls: ["0" * 64 + "  " + ENV if x.endswith("  " + ENV) else x for x in ls],
            "Upload /etc/llmprov/llamacpp.env",
            "File /etc/llmprov/llamacpp.env",
        ),
        (
            lambda ls: [x.replace("SubState=running", "SubState=dead") for x in ls],
            f"Run {UNIT}",
            "SystemdStatus",
        ),
        (lambda ls: [x.replace(":/usr/sbin/nologin", ":/bin/sh") for x in ls], "User ", "Users"),
    ],
)
def test_each_drift_hands_its_operation_back_to_pyinfra(
    host_key: tuple[HostConfig, str],
    monkeypatch: pytest.MonkeyPatch,
    drift: Any,
    operation: str,
    fact: str,
) -> None:
    cfg, key = host_key
    asked: list[str] = []
    lines = drift(served_host(cfg, key))
    assert lines != served_host(cfg, key)
    plan = rerun(cfg, monkeypatch, lines, asked)
    assert not plan.failed
    assert asked[0] == "HostSnapshot" and fact in asked, (asked, plan.names)
    # loose_facts reads every other fact as absent, so the operation handed back does its work.
    assert any(n.startswith(operation) for n in plan.names), (plan.names, shlex.join(asked))


def test_a_damaged_record_in_the_snapshot_stops_the_host_naming_it(
    host_key: tuple[HostConfig, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, key = host_key
    lines = served_host(cfg, key)
    at = lines.index(f"{MARK} section state /etc/llmprov/state.json")
    nxt = next(i for i in range(at + 1, len(lines)) if lines[i].startswith(MARK))
    damaged = [*lines[: at + 1], "{", *lines[nxt:]]
    with pytest.raises(upgrade.UpgradeError, match=rf"{HOST}: /etc/llmprov/state.json is not JSON"):
        rerun(cfg, monkeypatch, damaged, [])


def test_a_host_without_a_record_or_a_build_installs_and_records(
    host_key: tuple[HostConfig, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty sections read as the facts' own defaults: nothing installed, no record yet."""
    cfg, key = host_key
    lines = served_host(cfg, key)
    for name in (f"installed {LAYOUT.root}", "state /etc/llmprov/state.json"):
        at = lines.index(f"{MARK} section {name}")
        nxt = next(i for i in range(at + 1, len(lines)) if lines[i].startswith(MARK))
        lines = [*lines[: at + 1], *lines[nxt:]]
    cache = Path(os.environ["LLMPROV_CACHE"]) / "llamacpp"
    cache.mkdir(parents=True)
    (cache / f"{key}.tar.gz").write_bytes(b"tar")
    digest = hashlib.sha256(b"tar").hexdigest()
    (cache / f"{key}.tar.gz.sha256").write_text(f"{digest}  {key}.tar.gz\n")
    plan = rerun(cfg, monkeypatch, lines, [])
    names = plan.names
    for prefix in (f"Unpack cached build {key}", f"Switch {LAYOUT.current} to {key}", "Record "):
        assert any(n.startswith(prefix) for n in names), names
