"""llmprov's inventory loader builds what pyinfra 3.10's builds: the same hosts, groups and data.

Each case is loaded twice, by `read_inventory` (no pyinfra) and by pyinfra's own
`make_inventory_from_files`, and the two views must be equal, in order, or fail with the same faults.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyinfra_cli import util as pyinfra_cli_util

from llmprov import inventory as inv
from llmprov.inventory_file import InventoryFile, from_pyinfra

REPO = Path(__file__).resolve().parents[1]
SHIPPED = [
    REPO / "inventories" / "client.py",
    REPO / "inventories" / "vagrant.py",
    *sorted((REPO / "tests" / "golden").glob("*.py")),
    *sorted((REPO / "tests" / "corpus").glob("*.py")),
]

Outcome = tuple[str, Any]


def _view(loaded: InventoryFile) -> Outcome:
    hosts = [(h.name, h.groups, h.data) for h in loaded]
    return "ok", (hosts, list(loaded.groups.items()))


def _outcome(load: Callable[[], InventoryFile]) -> Outcome:
    try:
        return _view(load())
    except inv.InventoryError as exc:
        return "error", [str(e) for e in exc.errors]


def _pyinfra(path: Path) -> Outcome:
    # pyinfra caches compiled files by name for the life of the process.
    pyinfra_cli_util.PYTHON_CODES.clear()
    return _outcome(lambda: from_pyinfra(path, inv.load_pyinfra_inventory(path)))


def _ours(path: Path, *, may_use_pyinfra: bool = False) -> Outcome:
    with mock.patch.object(
        inv, "load_pyinfra_inventory", wraps=inv.load_pyinfra_inventory
    ) as fallback:
        pyinfra_cli_util.PYTHON_CODES.clear()
        outcome = _outcome(lambda: inv.read_inventory(path))
    assert fallback.called == may_use_pyinfra
    return outcome


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_inventory_loads_as_pyinfra_loads_it(path: Path) -> None:
    assert _ours(path) == _pyinfra(path)


def test_the_sandbox_inventory_loads_as_pyinfra_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = {
        "address": "10.231.1.2",
        "gateway": "10.231.1.1",
        "ssh_key": str(tmp_path / "id"),
        "leader": 1,
        "nspawn_pid": 2,
        "index": 1,
        "host_dir": str(tmp_path / "h"),
    }
    state = {
        "version": 1,
        "harness_id": "t",
        "work_dir": str(tmp_path),
        "owns_work_dir": False,
        "hosts": [{**host, "name": "sbx-1"}, {**host, "name": "sbx-2", "index": 2}],
        "rules": [],
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    monkeypatch.setenv("LLMPROV_SANDBOX_STATE", str(tmp_path / "state.json"))
    path = REPO / "inventories" / "sandbox.py"

    ours = _ours(path)

    assert ours == _pyinfra(path)
    assert [h[0] for h in ours[1][0]] == ["sbx-1", "sbx-2"]


# --------------------------------------------------------------------- generated inventories

HOST_NAMES = st.sampled_from(
    [
        "a",
        "b",
        "web-1",
        "10.0.0.5",
        "@local",
        "@fake",
        "@fake/f1",
        "@ssh/s1",
        "@docker/box",
        "@podman/p1",
        "@winrm/win",
    ]
)
KEYS = st.sampled_from(["engine", "port", "ssh_user", "x_a", "x_b"])
VALUES = st.one_of(
    st.integers(-2, 2), st.sampled_from(["v", "w"]), st.none(), st.lists(st.integers(0, 1))
)
DATA = st.dictionaries(KEYS, VALUES, max_size=3)
HOST = st.one_of(HOST_NAMES, st.tuples(HOST_NAMES, DATA))
HOSTS = st.lists(HOST, max_size=4)
# Now and then a fault, which both loaders must report alike.
BAD_HOSTS = st.sampled_from(["[('c', {}, 3)]", "[('d', 'not data')]", "['has space']", "[()]"])


def _rarely(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> Any:
    # Hypothesis leans to small integers: the rare branch is the largest.
    return st.integers(0, 29).flatmap(lambda i: rare if i == 29 else common)


# `all` is pyinfra's special group; `inventory` is this file's own name, which pyinfra adds
# as a group unless the file defines it.
GROUP_NAMES = st.sampled_from(["web", "gpu", "db", "all", "inventory"])
# A group's data: inline, or one dict two groups share (pyinfra updates it in place).
GROUP_DATA = _rarely(st.one_of(DATA.map(repr), st.just("_shared")), st.just("'not data'"))
GROUP_HOSTS = _rarely(HOSTS.map(repr), BAD_HOSTS)
GROUP = st.one_of(
    GROUP_HOSTS, st.tuples(GROUP_HOSTS, GROUP_DATA).map(lambda t: f"({t[0]}, {t[1]})")
)
# Files in group_data/: for groups of the file, `all`, connector groups, and a group no host has.
DATA_FILES = st.dictionaries(
    st.sampled_from(["web", "gpu", "all", "inventory", "@docker", "@winrm", "leftover"]),
    st.tuples(
        DATA,
        st.booleans(),
        st.one_of(st.none(), st.lists(KEYS, max_size=2)),
        _rarely(st.just(False), st.just(True)),
    ),
    max_size=3,
)


def _inventory_text(groups: dict[str, str], shared: dict[str, Any], extras: bool) -> str:
    lines = [f"_shared = {shared!r}"]
    if extras:
        # Names pyinfra does not take for groups: private, not a list, a list of non-hosts.
        lines += ["_private = ['a']", "VERSION = 3", "numbers = [1, 2]", "import os"]
    lines += [f"{name} = {value}" for name, value in groups.items()]
    return "\n".join(lines) + "\n"


def _group_data_text(
    data: dict[str, Any], imports: bool, exported: list[str] | None, fails: bool
) -> str:
    lines = ["import os", "from os import path as joined"] if imports else []
    lines += ["x_ratio = 1 / 0"] if fails else []
    lines += [f"{key} = {value!r}" for key, value in data.items()]
    lines.append("_single = 1")
    if exported is not None:
        lines.append(f"__all__ = {exported!r}")
    return "\n".join(lines) + "\n"


def _write_case(
    folder: Path,
    groups: dict[str, str],
    shared: dict[str, Any],
    extras: bool,
    data_files: dict[str, tuple[dict[str, Any], bool, list[str] | None, bool]],
) -> Path:
    path = folder / "inventory.py"
    path.write_text(_inventory_text(groups, shared, extras))
    if data_files:
        (folder / "group_data").mkdir()
    for name, spec in data_files.items():
        (folder / "group_data" / f"{name}.py").write_text(_group_data_text(*spec))
    return path


def _kind(outcome: Outcome) -> str:
    if outcome[0] == "ok":
        return f"ok, {min(len(outcome[1][0]), 3)}+ hosts"
    return "error: " + outcome[1][0].split(": ", 2)[-1][:40]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    groups=st.dictionaries(GROUP_NAMES, GROUP, min_size=1, max_size=4),
    shared=DATA,
    extras=st.booleans(),
    data_files=DATA_FILES,
)
def test_generated_inventories_load_as_pyinfra_loads_them(
    groups: dict[str, str],
    shared: dict[str, Any],
    extras: bool,
    data_files: dict[str, tuple[dict[str, Any], bool, list[str] | None, bool]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="llmprov-inv-") as folder:
        path = _write_case(Path(folder), groups, shared, extras, data_files)
        ours = _ours(path)
        event(_kind(ours))
        assert ours == _pyinfra(path)


def _case(folder: Path, inventory: str, group_data: dict[str, str] | None = None) -> Path:
    path = folder / "inventory.py"
    path.write_text(inventory)
    for name, text in (group_data or {}).items():
        (folder / "group_data").mkdir(exist_ok=True)
        (folder / "group_data" / f"{name}.py").write_text(text)
    return path


def test_a_dict_two_groups_share_takes_the_file_data_of_both_as_in_pyinfra(
    tmp_path: Path,
) -> None:
    # pyinfra updates a group's data dict in place with its group_data file: a dict that
    # another group shares gets that data as well.
    path = _case(
        tmp_path,
        "_shared = {'x_a': 0}\nweb = (['a'], _shared)\ndb = (['b'], _shared)\n",
        {"web": "x_b = 1\n"},
    )

    ours = _ours(path)

    assert ours == _pyinfra(path)
    hosts = {name: data for name, _, data in ours[1][0]}
    assert hosts["b"] == {"x_a": 0, "x_b": 1}


def test_host_data_wins_over_groups_in_order_over_all(tmp_path: Path) -> None:
    path = _case(
        tmp_path,
        "web = (['a', ('b', {'x_a': 'host'})], {'x_a': 'web', 'x_b': 'web'})\n"
        "gpu = (['a', 'b'], {'x_b': 'gpu'})\n",
        {"all": "x_a = 'all'\nx_c = 'all'\n", "gpu": "x_c = 'gpu file'\n"},
    )

    ours = _ours(path)

    assert ours == _pyinfra(path)
    hosts = {name: (groups, data) for name, groups, data in ours[1][0]}
    assert hosts["a"] == (
        ("web", "gpu", "inventory"),
        {"x_a": "web", "x_b": "gpu", "x_c": "gpu file"},
    )
    assert hosts["b"][1]["x_a"] == "host"


def test_group_data_that_imports_pyinfra_is_loaded_by_pyinfra(tmp_path: Path) -> None:
    # Group data may read the hosts through pyinfra's inventory context, which only its loader sets.
    path = _case(
        tmp_path,
        "web = ['a', 'b']\n",
        {"web": "from pyinfra import inventory\nx_hosts = len(inventory.hosts)\n"},
    )

    ours = _ours(path, may_use_pyinfra=True)

    assert ours == _pyinfra(path)
    assert ours[1][0][0][2] == {"x_hosts": 2}


def test_a_connector_llmprov_does_not_mirror_is_left_to_pyinfra(tmp_path: Path) -> None:
    path = _case(tmp_path, "boxes = ['@chroot/box', 'a']\n")

    ours = _ours(path, may_use_pyinfra=True)

    assert ours == _pyinfra(path)
    # pyinfra extends a connector host's groups with those of its own name: twice over.
    groups = ("boxes", "inventory", "@chroot")
    assert ours[1][0][0][:2] == ("@chroot/box", groups + groups)


def test_an_unknown_connector_fails_as_in_pyinfra(tmp_path: Path) -> None:
    path = _case(tmp_path, "boxes = ['@nope/x']\n")

    ours = _ours(path, may_use_pyinfra=True)

    assert ours == _pyinfra(path)
    assert ours == (
        "error",
        [f"{path}: load: the inventory file raised NoConnectorError: Invalid connector: nope"],
    )


def test_a_fault_in_a_group_data_file_names_that_file_and_line(tmp_path: Path) -> None:
    path = _case(tmp_path, "web = ['a']\n", {"web": "x_a = 1\nx_b = 1 / 0\n"})

    ours = _ours(path)

    assert ours == _pyinfra(path)
    assert ours == (
        "error",
        [
            f"{tmp_path}/group_data/web.py: line 2: the group data file raised "
            "ZeroDivisionError: division by zero"
        ],
    )


def test_validate_and_render_do_not_import_pyinfra(tmp_path: Path) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from llmprov.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rcs = [main(['validate', 'inventories/client.py']),\n"
        f"           main(['render', 'inventories/client.py', '--out', {str(tmp_path)!r}])]\n"
        "print(rcs, sorted({m.split('.')[0] for m in sys.modules if m.startswith('pyinfra')}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[0, 0] []"


def test_a_group_data_file_that_does_not_parse_is_named_with_its_line(tmp_path: Path) -> None:
    path = _case(tmp_path, "web = ['a']\n", {"web": "x_a = 1\nx_b = (\n"})

    ours = _ours(path)

    assert ours == _pyinfra(path)
    assert ours[1][0].startswith(
        f"{tmp_path}/group_data/web.py: line 2: the group data file raised"
    )
