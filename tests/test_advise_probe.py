"""Commands advise runs on hosts, and the parsers of their output."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmprov.core.advise.probe import (
    ProbeOutputError,
    declared_not,
    memory_command,
    parse_gpu_memory,
    parse_memory,
    stop_command,
    unit_of,
)


def test_units_are_the_deploys_units() -> None:
    assert [unit_of(e) for e in ("vllm", "llamacpp", "ollama")] == [
        "llmprov-vllm.service",
        "llmprov-llamacpp.service",
        "ollama.service",
    ]


def test_stop_command_skips_units_never_deployed_and_can_disable() -> None:
    assert stop_command([]) == "true"
    assert stop_command(["a.service", "b.service"], disable=True) == (
        "if systemctl cat a.service >/dev/null 2>&1; then systemctl disable --now a.service; fi"
        " && if systemctl cat b.service >/dev/null 2>&1; then systemctl disable --now b.service; fi"
    )


@pytest.mark.parametrize("command", [stop_command(["x.service"]), memory_command("x.service")])
def test_commands_are_valid_shell(command: str) -> None:
    subprocess.run(["bash", "-n", "-c", command], check=True)


@given(st.lists(st.tuples(st.integers(1, 4_000_000), st.integers(0, 10**9)), min_size=1))
def test_memory_sums_every_process_of_the_unit(rows: list[tuple[int, int]]) -> None:
    pids, rss = parse_memory([f"{p} {kb}" for p, kb in rows] + [""])
    assert pids == [p for p, _ in rows]
    assert rss == 1024 * sum(kb for _, kb in rows)


@pytest.mark.parametrize("lines", [[], ["12"], ["12 3 4"], ["x 5"]])
def test_memory_output_of_another_shape_is_refused(lines: list[str]) -> None:
    with pytest.raises(ProbeOutputError):
        parse_memory(lines)


def test_gpu_memory_counts_only_the_units_processes() -> None:
    lines = ["101, 1024", "102, 512", "900, 4000", ""]
    assert parse_gpu_memory(lines, [101, 102]) == 1536
    assert parse_gpu_memory(lines, [5]) is None
    assert parse_gpu_memory([], [5]) is None
    with pytest.raises(ProbeOutputError, match="not a number"):
        parse_gpu_memory(["101, [N/A]"], [101])
    with pytest.raises(ProbeOutputError, match="pid, used_memory"):
        parse_gpu_memory(["No running processes found"], [101])


def test_a_server_saying_it_is_not_the_engine_is_told_by_its_own_words() -> None:
    note = "llmprov test stand-in, not Ollama"
    assert declared_not("Ollama", {"version": "0.12.5", "standin": note}) == note
    assert declared_not("Ollama", {"version": "0.12.6"}) is None
    # The version string itself is not read, nor text that does not say "not Ollama".
    assert declared_not("Ollama", {"version": "not Ollama", "note": "ollama, genuine"}) is None
