"""`llmprov bench` and `llmprov check`: output, files written and exit codes."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from standins.openai_app import OpenAIStandIn

from llmprov.checks import bench, smoke
from llmprov.cli import bench_cmd, check_cmd
from llmprov.core.bench_stats import results_from_lines

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cli(*argv: str) -> int:
    # The two commands on their own parser, as main.build_parser registers them.
    parser = argparse.ArgumentParser(prog="llmprov")
    sub = parser.add_subparsers(dest="command", required=True)
    bench_cmd.register(sub)
    check_cmd.register(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        assert isinstance(exc.code, int)
        return exc.code
    code: int = args.func(args)
    return code


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> OpenAIStandIn:
    """A stand-in that both commands reach whatever URL they are given."""
    standin = OpenAIStandIn(api_key=None)
    monkeypatch.setattr(
        bench,
        "open_async_client",
        functools.partial(bench.open_async_client, transport=standin.async_transport()),
    )
    monkeypatch.setattr(
        smoke, "open_client", functools.partial(smoke.open_client, transport=standin.transport())
    )
    return standin


URL = "http://llm.test:8000"
RUN = ("bench", URL, "--engine", "vllm", "--model", "smollm2")


def test_bench_prints_a_row_per_level_and_appends_records(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.jsonl"
    args = ("--concurrency", "1,2", "--requests", "4", "--max-tokens", "3", "--json", str(out))
    assert cli(*RUN, *args) == 0
    assert cli(*RUN, *args) == 0
    stdout = capsys.readouterr().out
    assert "vllm · smollm2" in stdout
    results = results_from_lines(out.read_text().splitlines(), str(out))
    assert [r.concurrency for r in results] == [1, 2, 1, 2]
    assert all(r.stats.succeeded == 4 and r.stats.output_tokens == 12 for r in results)
    assert {(r.engine, r.model, r.url, r.max_tokens, r.requests) for r in results} == {
        ("vllm", "smollm2", URL, 3, 4)
    }
    # One warm-up per run, then the levels.
    assert len(server.chat_bodies) == 2 * (1 + 4 + 4)


@pytest.mark.parametrize(
    ("engine", "flags", "sent"),
    [
        ("vllm", (), True),
        ("llamacpp", (), True),
        ("ollama", (), False),
        ("sglang", (), False),
        ("sglang", ("--ignore-eos",), True),
        ("vllm", ("--no-ignore-eos",), False),
    ],
)
def test_bench_asks_to_ignore_eos_by_engine_unless_told(
    server: OpenAIStandIn, engine: str, flags: tuple[str, ...], sent: bool
) -> None:
    argv = ("--engine", engine, "--model", "smollm2", "--requests", "1", *flags)
    assert cli("bench", URL, *argv) == 0
    assert len(server.chat_bodies) == 1 + 3  # warm-up, then one request at each default level
    assert all(body.get("ignore_eos", False) is sent for body in server.chat_bodies)


def test_bench_uses_the_prompts_file_and_api_key(server: OpenAIStandIn, tmp_path: Path) -> None:
    server.api_key = "k3y"
    key = tmp_path / "key"
    key.write_text("k3y\n")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "one"}\n{"prompt": "two"}\n')
    argv = ("--requests", "2", "--concurrency", "1", "--prompts", str(prompts))
    assert cli(*RUN, *argv, "--api-key-file", str(key)) == 0
    # The warm-up takes the first prompt, the level goes on from the next one.
    assert [b["messages"][0]["content"] for b in server.chat_bodies] == ["one", "two", "one"]


def test_bench_sends_new_synthetic_prompts_at_each_level(server: OpenAIStandIn) -> None:
    assert cli(*RUN, "--concurrency", "1,2", "--requests", "3", "--max-tokens", "2") == 0
    sent = [str(body["messages"]) for body in server.chat_bodies]
    assert len(sent) == 1 + 3 + 3
    assert len(set(sent)) == len(sent)


def test_bench_notes_a_prompts_file_too_short_for_new_prompts_throughout(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(f'{{"prompt": "p{i}"}}\n' for i in range(5)))
    argv = ("--requests", "2", "--prompts", str(prompts))
    assert cli(*RUN, *argv, "--concurrency", "1,2") == 0
    assert "prefix cache" not in capsys.readouterr().err
    assert cli(*RUN, *argv, "--concurrency", "1,2,3") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"{prompts} has 5 prompts for 7 requests" in err


def test_bench_writes_a_png_chart(server: OpenAIStandIn, tmp_path: Path) -> None:
    png = tmp_path / "bench.png"
    assert cli(*RUN, "--concurrency", "1,2", "--requests", "2", "--chart", str(png)) == 0
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_bench_exits_1_when_requests_fail(
    server: OpenAIStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    server.fail_every = 2  # the warm-up is request 1 and passes
    assert cli(*RUN, "--requests", "4", "--concurrency", "1") == 1
    assert "2 × HTTP 500" in capsys.readouterr().out


def test_bench_exits_1_when_the_warm_up_fails(
    server: OpenAIStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("bench", URL, "--engine", "vllm", "--model", "absent") == 1
    assert "warm-up request failed: HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((*RUN, "--concurrency", "1,x"), "comma-separated whole numbers"),
        ((*RUN, "--concurrency", ""), "comma-separated whole numbers"),
        ((*RUN, "--concurrency", "0,4"), "at least 1"),
        ((*RUN, "--concurrency", "4,4"), "repeat"),
        ((*RUN, "--requests", "0"), "must be at least 1"),
        ((*RUN, "--max-tokens", "-1"), "must be at least 1"),
        ((*RUN, "--time-limit", "0"), "greater than 0"),
        ((*RUN, "--prompts", "/nonexistent/p.jsonl"), "cannot read prompts file"),
        ((*RUN, "--api-key-file", "/nonexistent/key"), "cannot read API key file"),
        ((*RUN, "--json", "/nonexistent/dir/out.jsonl"), "does not exist"),
        (("bench", "compare", "a", "b", "--chart", "/nonexistent/c.png"), "does not exist"),
        (("bench", URL, "--model", "smollm2"), "--engine and --model are required"),
        (("bench", "llm.test:8000", "--engine", "e", "--model", "m"), "http:// or https://"),
        (("bench", URL, "extra", "--engine", "e", "--model", "m"), "unexpected arguments: extra"),
        ((*RUN, "extra"), "unexpected arguments: extra"),
        ((*RUN, "--bogus"), "unrecognized arguments: --bogus"),
        ((*RUN, "--slo", "ttft=0"), "must be a positive number"),
        ((*RUN, "--slo", "latency=5"), "KEY one of ttft, tpot, e2el"),
        ((*RUN, "--request-rate", "0"), "greater than 0"),
        (("bench", "compare", "a", "b", "--bogus"), "unrecognized arguments: --bogus"),
        (("bench", "compare", "a.jsonl"), "two results files"),
    ],
)
def test_bench_bad_input_exits_2_with_a_message(
    server: OpenAIStandIn, argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*argv) == 2
    assert message in capsys.readouterr().err
    assert server.chat_bodies == []


def test_bench_bad_prompts_line_exits_2_naming_it(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "ok"}\n{"promt": "typo"}\n')
    assert cli(*RUN, "--prompts", str(prompts)) == 2
    assert f"{prompts}:2: expected an object with one of" in capsys.readouterr().err


def _run_to(path: Path, engine: str) -> None:
    argv = ("--engine", engine, "--model", "smollm2", "--concurrency", "1,2", "--requests", "2")
    assert cli("bench", URL, *argv, "--json", str(path)) == 0


def test_compare_shows_both_runs_and_ratios(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, png = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "cmp.png"
    _run_to(a, "vllm")
    _run_to(b, "llama.cpp")
    capsys.readouterr()
    assert cli("bench", "compare", str(a), str(b), "--chart", str(png)) == 0
    out = capsys.readouterr().out
    assert "vllm (a.jsonl)" in out and "llama.cpp (b.jsonl)" in out
    assert "×" in out
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_compare_bad_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema_version": 9}\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cli("bench", "compare", str(bad), str(bad)) == 2
    assert "bad.jsonl:1: schema_version 9 is not supported" in capsys.readouterr().err
    assert cli("bench", "compare", str(tmp_path / "absent.jsonl"), str(bad)) == 2
    assert "cannot read results file" in capsys.readouterr().err
    assert cli("bench", "compare", str(empty), str(empty)) == 2
    assert "no result records" in capsys.readouterr().err


CHECK = ("check", "--url", URL, "--api", "openai")


def test_check_passes_and_prints_each_step(
    server: OpenAIStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*CHECK, "--model", "smollm2") == 0
    out = capsys.readouterr().out
    for step in ("ready", "model listed", "chat completion"):
        assert step in out
    assert "FAILED" not in out


def test_check_exits_1_when_a_step_fails(
    server: OpenAIStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*CHECK, "--model", "absent") == 1
    assert "FAILED" in capsys.readouterr().out


def test_check_with_key_file_checks_enforcement(server: OpenAIStandIn, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k3y")
    # The stand-in does not enforce a key: that step fails.
    assert cli(*CHECK, "--model", "smollm2", "--api-key-file", str(key)) == 1
    server.api_key = "k3y"
    assert cli(*CHECK, "--model", "smollm2", "--api-key-file", str(key)) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((*CHECK, "--model", "m", "--api-key-file", "/nonexistent/key"), "cannot read API key"),
        ((*CHECK, "--model", "m", "--ready-timeout", "x"), "not a number"),
        (("check", "--url", URL, "--api", "vllm", "--model", "m"), "invalid choice"),
        (("check", "--url", URL, "--api", "openai"), "--model"),
    ],
)
def test_check_bad_input_exits_2(
    server: OpenAIStandIn, argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*argv) == 2
    assert message in capsys.readouterr().err


def test_check_empty_key_file_exits_2(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "key"
    key.write_text("\n")
    assert cli(*CHECK, "--model", "m", "--api-key-file", str(key)) == 2
    assert "is empty" in capsys.readouterr().err


# ---------------------------------------------------------------- a bench you can trust with data


def test_ctrl_c_keeps_the_finished_levels_and_prints_them(
    server: OpenAIStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = bench.run_level
    calls = 0

    async def interrupted_at_the_second_level(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return await real(*args, **kwargs)

    monkeypatch.setattr(bench, "run_level", interrupted_at_the_second_level)
    out = tmp_path / "runs.jsonl"
    argv = ("--concurrency", "1,2,4", "--requests", "2", "--json", str(out))
    assert cli(*RUN, *argv) == 130
    captured = capsys.readouterr()
    assert "interrupted: 1 of 3 levels finished, written to" in " ".join(captured.err.split())
    assert "Traceback" not in captured.err + captured.out
    assert "output tokens/s" in captured.out, "the summary so far"
    (kept,) = results_from_lines(out.read_text().splitlines(), str(out))
    assert (kept.concurrency, kept.stats.succeeded) == (1, 2)


def test_each_level_is_on_disk_before_the_next_starts(
    server: OpenAIStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "runs.jsonl"
    real = bench.run_level
    seen_on_disk: list[int] = []

    async def watching(*args: Any, **kwargs: Any) -> Any:
        seen_on_disk.append(len(out.read_text().splitlines()) if out.exists() else 0)
        return await real(*args, **kwargs)

    monkeypatch.setattr(bench, "run_level", watching)
    assert cli(*RUN, "--concurrency", "1,2,3", "--requests", "1", "--json", str(out)) == 0
    assert seen_on_disk == [0, 1, 2]


def test_a_level_above_the_request_count_says_so(
    server: OpenAIStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*RUN, "--concurrency", "1,64", "--requests", "4") == 0
    captured = capsys.readouterr()
    assert "concurrency 64 is above the 4 requests per level" in " ".join(captured.err.split())
    assert "64 (≤4 in flight)" in captured.out


def test_bench_reports_input_total_and_goodput_in_ms(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.jsonl"
    argv = ("--concurrency", "1", "--requests", "3", "--slo", "ttft=60000,tpot=60000")
    assert cli(*RUN, *argv, "--request-rate", "50", "--json", str(out)) == 0
    text = capsys.readouterr().out
    for row in ("input tokens/s", "total tokens/s", "goodput req/s", "E2E p99 ms", "req/s Poisson"):
        assert row in text, row
    (record,) = results_from_lines(out.read_text().splitlines(), str(out))
    assert record.stats.input_tokens == 3 * 20
    assert record.request_rate == 50 and record.slo is not None
    assert record.stats.goodput_requests_per_s == pytest.approx(record.stats.requests_per_s)
    assert record.run_id and record.prompts_sha256 and len(record.prompts_sha256) == 64


def test_compare_help_is_compares_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("bench", "compare", "--help") == 0
    text = capsys.readouterr().out
    assert "usage: llmprov bench compare" in text and "--mixed" in text
    assert "--concurrency" not in text


def _two_runs(path: Path, *extra: str) -> list[str]:
    argv = ("--concurrency", "1", "--requests", "2", "--json", str(path))
    assert cli(*RUN, *argv) == 0
    assert cli(*RUN, *argv, *extra) == 0
    return [r.run for r in results_from_lines(path.read_text().splitlines(), str(path))]


def test_compare_refuses_a_file_of_several_runs_unless_one_is_named(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs.jsonl"
    first, second = _two_runs(runs)
    capsys.readouterr()
    assert cli("bench", "compare", str(runs), str(runs)) == 2
    err = capsys.readouterr().err
    assert "runs.jsonl holds 2 runs" in err and first in err and second in err
    assert cli("bench", "compare", f"{runs}#{first}", f"{runs}#{second[:4]}") == 0
    assert f"runs: A {first}, B {second}" in capsys.readouterr().out


def test_compare_refuses_runs_that_differ_unless_mixed(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs.jsonl"
    first, second = _two_runs(runs, "--max-tokens", "5", "--seed", "9")
    capsys.readouterr()
    a, b = f"{runs}#{first}", f"{runs}#{second}"
    assert cli("bench", "compare", a, b) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "max_tokens: A 64, B 5" in err and "prompts:" in err and "--mixed" in err
    assert cli("bench", "compare", a, b, "--mixed") == 0
    assert "not like for like: max_tokens (A 64, B 5)" in " ".join(capsys.readouterr().out.split())


def test_compare_json_is_one_object_with_a_schema_version(
    server: OpenAIStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs.jsonl"
    first, second = _two_runs(runs)
    capsys.readouterr()
    assert cli("bench", "compare", f"{runs}#{first}", f"{runs}#{second}", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema_version"] == bench_cmd.COMPARE_SCHEMA_VERSION
    assert (data["a"]["run_id"], data["b"]["run_id"]) == (first, second)
    assert data["differences"] == {}
    (row,) = data["levels"]
    tokens = row["metrics"]["output_tokens_per_s"]
    assert tokens["ratio"] == pytest.approx(tokens["b"] / tokens["a"])
