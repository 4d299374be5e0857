"""Which hosts a run is about: --engine selects hosts by engine, --limit works as pyinfra's does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmprov.core.host_selection import InventoryHost, limit_patterns, match_limit, select_hosts
from llmprov.inventory import InventoryError, load_inventory

CLIENT = Path(__file__).resolve().parents[1] / "inventories" / "client.py"

HOSTS = [
    InventoryHost("gpu-1", ("gpu_servers",), "vllm"),
    InventoryHost("gpu-2", ("gpu_servers",), "vllm"),
    InventoryHost("mac-studio", ("macs",), "ollama"),
    InventoryHost("edge-1", ("edge",), "llamacpp"),
    InventoryHost("edge-2", ("edge",), "ollama"),
    InventoryHost("spare", ("edge",), None),
]


def test_engine_keeps_hosts_naming_it_and_hosts_naming_none() -> None:
    sel = select_hosts(HOSTS, engine="vllm")
    assert sel.selected == ["gpu-1", "gpu-2", "spare"]
    assert sel.overrides == {"spare": "vllm"}
    assert sel.left_out == {
        "mac-studio": "runs ollama, not vllm",
        "edge-1": "runs llamacpp, not vllm",
        "edge-2": "runs ollama, not vllm",
    }
    assert sel.errors == []


def test_without_engine_every_host_is_selected_with_its_own_engine() -> None:
    sel = select_hosts(HOSTS)
    assert sel.selected == [h.name for h in HOSTS]
    assert sel.overrides == {} and sel.left_out == {}


def test_a_host_with_an_unknown_engine_stays_selected_so_validation_names_the_typo() -> None:
    sel = select_hosts([InventoryHost("a", (), "vlm")], engine="vllm")
    assert sel.selected == ["a"] and sel.overrides == {} and sel.left_out == {}


def test_engine_that_no_host_runs_is_an_error_listing_the_left_out_hosts() -> None:
    sel = select_hosts(HOSTS[:2], engine="ollama")
    assert sel.selected == []
    assert len(sel.errors) == 1
    assert "no host runs ollama" in str(sel.errors[0])
    assert "gpu-1 (runs vllm, not ollama)" in str(sel.errors[0])


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (["edge"], ["edge-1", "edge-2", "spare"]),  # a group name
        (["gpu-*"], ["gpu-1", "gpu-2"]),  # a glob
        (["mac-studio,edge-1"], ["mac-studio", "edge-1"]),  # a comma list, in inventory order
        (["edge-2", "gpu-1"], ["gpu-1", "edge-2"]),  # repeated --limit
        (["gpu-?", "gpu-1"], ["gpu-1", "gpu-2"]),  # overlaps counted once
    ],
)
def test_limit_takes_names_groups_globs_and_comma_lists(
    limit: list[str], expected: list[str]
) -> None:
    names, errors = match_limit(HOSTS, limit)
    assert errors == [] and names == expected


def test_limit_miss_suggests_close_names() -> None:
    names, errors = match_limit(HOSTS, ["gpu1", "edgy"])
    assert names == []
    assert [str(e) for e in errors] == [
        "gpu1: --limit: matches no host or group in the inventory; did you mean 'gpu-1' or 'gpu-2'?",
        "edgy: --limit: matches no host or group in the inventory; did you mean 'edge' or 'edge-2' or 'edge-1'?",
    ]


def test_limit_then_engine() -> None:
    sel = select_hosts(HOSTS, engine="ollama", limit=["edge"])
    assert sel.selected == ["edge-2", "spare"]
    assert sel.left_out == {"edge-1": "runs llamacpp, not ollama"}


names_st = st.lists(
    st.text(alphabet="abcdefgh-_.0123456789", min_size=1, max_size=8), min_size=1, unique=True
)


@given(names_st, st.data())
def test_an_exact_host_name_selects_that_host_alone(names: list[str], data: st.DataObject) -> None:
    hosts = [InventoryHost(n) for n in names]
    pick = data.draw(st.sampled_from(names))
    selected, errors = match_limit(hosts, [pick])
    assert errors == []
    assert selected == [pick]


@given(st.lists(st.text(alphabet="ab, ", max_size=6), max_size=4))
def test_limit_patterns_never_hold_empty_or_padded_items(values: list[str]) -> None:
    for p in limit_patterns(values):
        assert p and p == p.strip() and "," not in p


@pytest.mark.parametrize(
    ("engine", "expected", "left_out"),
    [
        ("vllm", ["gpu-1", "gpu-2"], {"mac-studio", "@winrm/win-box", "edge-1", "edge-2"}),
        ("ollama", ["mac-studio", "@winrm/win-box", "edge-2"], {"gpu-1", "gpu-2", "edge-1"}),
        ("llamacpp", ["edge-1"], {"gpu-1", "gpu-2", "mac-studio", "@winrm/win-box", "edge-2"}),
    ],
)
def test_client_template_validates_for_each_engine(
    engine: str, expected: list[str], left_out: set[str]
) -> None:
    try:
        loaded = load_inventory(CLIENT, engine_override=engine)
    except InventoryError as exc:
        # Another branch may add rules the shipped template must meet; the selection is what's pinned.
        pytest.fail(f"client.py does not validate for --engine {engine}:\n{exc}")
    assert list(loaded.hosts) == expected
    assert set(loaded.left_out) == left_out
    assert all(loaded.hosts[n].engine == engine for n in expected)


def test_limit_miss_on_a_real_inventory_names_the_pattern(tmp_path: Path) -> None:
    inv = tmp_path / "inv.py"
    inv.write_text(
        "web = [('web-1', {'engine': 'vllm', 'model': 'hf://a/b'})]\n"
        "db = [('db-1', {'engine': 'ollama', 'model': 'ollama://llama3.2:3b'})]\n"
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(inv, limit=["wbe"])
    assert [str(e) for e in info.value.errors] == [
        "wbe: --limit: matches no host or group in the inventory; did you mean 'web' or 'web-1'?"
    ]
    loaded = load_inventory(inv, limit=["web,db"])
    assert list(loaded.hosts) == ["web-1", "db-1"]
