"""`llmprov advise` input checks, all before any host is touched, and re-rendering a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_advise_report import sample_report

from llmprov.cli.main import main
from llmprov.core.advise.report import report_from_json, report_to_json

WORKLOAD = '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}\n'


def inventory(tmp_path: Path, *hosts: tuple[str, dict[str, object]]) -> Path:
    path = tmp_path / "inv.py"
    path.write_text(f"hosts = {list(hosts)!r}\n")
    return path


LINUX = ("box-1", {"engine": "llamacpp", "model": "hf://org/repo/m.gguf"})


@pytest.fixture
def workload(tmp_path: Path) -> Path:
    path = tmp_path / "w.jsonl"
    path.write_text(WORKLOAD)
    return path


def advise(*args: str) -> int:
    return main(["advise", *args, "-y"])


def test_bad_slo_is_refused_before_any_host_is_touched(
    tmp_path: Path, workload: Path, no_connections: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    inv = inventory(tmp_path, LINUX)
    assert advise(str(inv), "--workload", str(workload), "--slo", "ttft_p95=2s") == 2
    assert "SLO 'ttft_p95=2s'" in capsys.readouterr().err
    assert no_connections == []


def test_bad_workload_line_is_named(
    tmp_path: Path, no_connections: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(WORKLOAD + '{"messages": "x"}\n')
    assert advise(str(inventory(tmp_path, LINUX)), "--workload", str(bad)) == 2
    assert f'{bad}:2: "messages" must be a non-empty list' in capsys.readouterr().err
    assert advise(str(inventory(tmp_path, LINUX)), "--workload", str(tmp_path / "none")) == 2
    assert "cannot read workload" in capsys.readouterr().err
    assert no_connections == []


def test_hosts_advise_cannot_measure_are_named_with_their_field(
    tmp_path: Path, workload: Path, no_connections: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    mac = (
        "mac-1",
        {"engine": "ollama", "os": "macos", "arch": "aarch64", "model": "ollama://smollm2"},
    )
    inv = inventory(tmp_path, LINUX, mac)
    assert advise(str(inv), "--workload", str(workload), "--engines", "ollama") == 2
    err = capsys.readouterr().err
    assert "mac-1" in err and "runtime" in err and "macos/launchd" in err
    assert "box-1" not in err
    assert no_connections == []


def test_inventory_faults_under_a_candidate_engine_are_reported(
    tmp_path: Path, workload: Path, no_connections: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    inv = inventory(tmp_path, ("box-1", {"engine": "llamacpp", "model": "hf://org/repo/m.gguf",
                                          "port": 70000}))  # fmt: skip
    assert advise(str(inv), "--workload", str(workload), "--engines", "vllm,llamacpp") == 2
    err = capsys.readouterr().err
    assert "box-1" in err and "port" in err
    # Once, though both candidate engines see the same fault.
    assert err.count("port") == 1
    assert no_connections == []


@pytest.mark.parametrize(
    ("engines", "message"), [("vllm,tgi", "unknown engine(s) tgi"), ("vllm,vllm", "engines repeat")]
)
def test_engine_list_is_checked(
    tmp_path: Path, workload: Path, engines: str, message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    with pytest.raises(SystemExit):
        advise(str(inventory(tmp_path, LINUX)), "--workload", str(workload), "--engines", engines)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rates", "message"),
    [("1,x", "expected numbers"), ("0,1", "must be positive"), ("nan", "must be positive"),
     ("1,1.0", "request rates repeat")],
)  # fmt: skip
def test_rate_list_is_checked(
    tmp_path: Path, workload: Path, rates: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        advise(str(inventory(tmp_path, LINUX)), "--workload", str(workload), "--rates", rates)
    assert message in capsys.readouterr().err


def test_from_report_writes_json_markdown_html_and_the_raw_records(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(report_to_json(sample_report()))
    out = tmp_path / "out"
    assert main(["advise", "--from-report", str(source), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "advise.html", "advise.json", "advise.md",
        "bench-box-1-llamacpp.jsonl", "bench-box-1-ollama.jsonl", "bench-box-1-vllm.jsonl",
    ]  # fmt: skip
    assert report_from_json((out / "advise.json").read_text(), "out") == sample_report()
    # The raw records read back as `llmprov bench` results, the same as the report's.
    records = [json.loads(x) for x in (out / "bench-box-1-vllm.jsonl").read_text().splitlines()]
    assert [r["stats"] for r in records] == [
        r.stats.model_dump() for r in sample_report().hosts[0].engines[1].results
    ]
    assert main(["bench", "compare", str(out / "bench-box-1-llamacpp.jsonl"),
                 str(out / "bench-box-1-vllm.jsonl")]) == 0  # fmt: skip


def test_missing_inputs_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise"]) == 2
    assert "INVENTORY and --workload are required" in capsys.readouterr().err
