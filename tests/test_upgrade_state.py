"""The host's state record: what a deploy records, what rollback goes back to, what pruning removes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmprov.core.upgrade import (
    UNRECORDED,
    Deployed,
    EngineState,
    StateError,
    forget,
    parse_state,
    prune_plan,
    record_deploy,
    record_rollback,
    render_state,
)


def dep(
    key: str, model: str = "file:///m.gguf", time: str = "t0", engine: str = "llamacpp"
) -> Deployed:
    return Deployed(engine, f"v-{key}", key, model, "d" + model[-4:], time)


def test_a_first_deploy_records_it_with_nothing_earlier() -> None:
    new = record_deploy({}, dep("a"), keep=1)
    assert new == {"llamacpp": EngineState(dep("a"), ())}


def test_a_rerun_of_the_same_deploy_changes_nothing_even_at_a_later_time() -> None:
    state = record_deploy({}, dep("a"), keep=1)
    assert state is not None
    assert record_deploy(state, dep("a", time="t9"), keep=1) is None


def test_an_upgrade_keeps_the_replaced_version_as_the_earlier_one() -> None:
    state = record_deploy({}, dep("a"), keep=1)
    assert state is not None
    new = record_deploy(state, dep("b", time="t1"), keep=1)
    assert new is not None
    assert new["llamacpp"] == EngineState(dep("b", time="t1"), (dep("a"),))
    assert new["llamacpp"].keys() == ["b", "a"]


def test_keep_bounds_the_earlier_versions_newest_first() -> None:
    state: dict[str, EngineState] = {}
    for i, key in enumerate("abcd"):
        nxt = record_deploy(state, dep(key, time=f"t{i}"), keep=2)
        assert nxt is not None
        state = nxt
    assert state["llamacpp"].keys() == ["d", "c", "b"]
    assert prune_plan(["a", "b", "c", "d"], state["llamacpp"].keys()) == ["a"]


def test_keep_zero_prunes_every_earlier_version() -> None:
    state = record_deploy({}, dep("a"), keep=0)
    assert state is not None
    state = record_deploy(state, dep("b"), keep=0)
    assert state is not None
    assert prune_plan(["a", "b"], state["llamacpp"].keys()) == ["a"]


def test_a_model_change_on_the_same_version_is_recorded_but_not_an_earlier_version() -> None:
    state = record_deploy({}, dep("a"), keep=1)
    assert state is not None
    state = record_deploy(state, dep("b"), keep=1)
    assert state is not None
    new = record_deploy(state, dep("b", model="file:///other.gguf"), keep=1)
    assert new is not None
    assert new["llamacpp"].current == dep("b", model="file:///other.gguf")
    assert [d.key for d in new["llamacpp"].previous] == ["a"]


def test_a_host_deployed_before_records_existed_keeps_its_running_version() -> None:
    new = record_deploy({}, dep("b"), keep=1, running="a")
    assert new is not None
    (earlier,) = new["llamacpp"].previous
    assert (earlier.key, earlier.version) == ("a", UNRECORDED)


def test_other_engines_records_are_left_alone() -> None:
    ollama = EngineState(dep("0.12.6", engine="ollama"))
    new = record_deploy({"ollama": ollama}, dep("a"), keep=1)
    assert new is not None and new["ollama"] == ollama
    assert forget(new, "llamacpp") == {"ollama": ollama}


def test_rollback_goes_to_the_earlier_version_and_a_second_rollback_undoes_it() -> None:
    state = record_deploy({}, dep("a"), keep=1)
    assert state is not None
    state = record_deploy(state, dep("b"), keep=1)
    assert state is not None
    back, target = record_rollback(state, "llamacpp", "t5", installed=["a", "b"])
    assert target == dep("a", time="t5")
    assert back["llamacpp"].keys() == ["a", "b"]
    again, target2 = record_rollback(back, "llamacpp", "t6", installed=["a", "b"])
    assert target2.key == "b"
    assert again["llamacpp"].keys() == ["b", "a"]


def test_rollback_without_an_installed_earlier_version_says_what_is_there() -> None:
    state = record_deploy({}, dep("a"), keep=1)
    assert state is not None
    state = record_deploy(state, dep("b"), keep=1)
    assert state is not None
    with pytest.raises(StateError, match=r"earlier: a; installed: b"):
        record_rollback(state, "llamacpp", "t5", installed=["b"])
    with pytest.raises(StateError, match="records no vllm deploy"):
        record_rollback(state, "vllm", "t5", installed=["b"])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "not JSON"),
        ('{"schema": 2}', "expected schema 1"),
        ('{"schema": 1, "engines": []}', "engines is not an object"),
        (
            '{"schema": 1, "engines": {"vllm": {"current": {"engine": "vllm"}}}}',
            "missing 'version'",
        ),
        (
            '{"schema": 1, "engines": {"vllm": {"current": null, "previous": {}}}}',
            "expected a list",
        ),
    ],
)
def test_a_damaged_record_is_an_error_naming_the_fault(text: str, match: str) -> None:
    with pytest.raises(StateError, match=match):
        parse_state(text)


def test_no_file_is_an_empty_record() -> None:
    assert parse_state(None) == {} and parse_state("\n") == {}


keys = st.text(alphabet="abcdef0123456789.-", min_size=1, max_size=8)
models = st.sampled_from(["file:///a.gguf", "hf://x/y", "ollama://q:1"])


@given(
    st.lists(st.tuples(keys, models), min_size=1, max_size=12),
    st.integers(min_value=0, max_value=4),
)
def test_any_deploy_sequence_keeps_a_bounded_distinct_history(
    deploys: list[tuple[str, str]], keep: int
) -> None:
    state: dict[str, EngineState] = {}
    for i, (key, model) in enumerate(deploys):
        new = record_deploy(state, dep(key, model, time=f"t{i}"), keep)
        if new is None:
            assert state["llamacpp"].current is not None
            assert state["llamacpp"].current.same_as(dep(key, model))
            continue
        state = new
        es = state["llamacpp"]
        kept = es.keys()
        assert es.current is not None and es.current.key == key
        assert len(kept) == len(set(kept)) <= keep + 1
        # The record round-trips through the file it is written to.
        assert parse_state(render_state(state)) == state
        json.loads(render_state(state))
    # The most recent other version is always the one kept first.
    last = deploys[-1][0]
    others = [k for k, _ in reversed(deploys) if k != last]
    if keep and others:
        assert state["llamacpp"].previous[0].key == others[0]


@given(st.sets(keys, max_size=8), st.sets(keys, max_size=4))
def test_pruning_removes_exactly_what_is_installed_and_not_kept(
    installed: set[str], keep: set[str]
) -> None:
    removed = prune_plan(installed, keep)
    assert set(removed) == installed - keep
    assert removed == sorted(removed)
