"""GGUF → HF conversion: naming, completeness, the CLI, and the real conversion where installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from llmprov.cli.main import build_parser, main
from llmprov.convert.spec import (
    CONVERT_RECIPE,
    PROVENANCE_FILE,
    ConvertError,
    Provenance,
    cached_folder,
    check_dtype,
    is_complete,
    missing_files,
)

SHA = "b179c9523d0e6a0f" + "0" * 48
HF_FILES = ("config.json", "tokenizer_config.json", "tokenizer.json", "model.safetensors")


def make_folder(path: Path, names: tuple[str, ...] = HF_FILES, **prov: object) -> Path:
    path.mkdir(parents=True)
    for name in names:
        (path / name).write_text("{}")
    fields = {"source_name": "m.gguf", "source_sha256": SHA, "dtype": "bfloat16"}
    fields.update(prov)  # type: ignore[arg-type]
    text = Provenance(
        str(fields["source_name"]),
        str(fields["source_sha256"]),
        str(fields["dtype"]),
        int(fields.get("recipe", CONVERT_RECIPE)),  # type: ignore[call-overload]
        {"transformers": "5.24.0"},
    ).to_json()
    (path / PROVENANCE_FILE).write_text(text)
    return path


def test_cache_folder_is_keyed_by_content_dtype_and_recipe(tmp_path: Path) -> None:
    a = cached_folder(tmp_path, SHA, "bfloat16", "SmolLM2")
    assert a == tmp_path / "models" / "hf" / f"SmolLM2-{SHA[:16]}-bfloat16-r{CONVERT_RECIPE}"
    assert cached_folder(tmp_path, SHA, "float16", "SmolLM2") != a
    assert cached_folder(tmp_path, "f" * 64, "bfloat16", "SmolLM2") != a


def test_missing_files_names_what_an_engine_needs() -> None:
    assert missing_files(HF_FILES) == []
    assert missing_files(["config.json"]) == [
        "tokenizer_config.json",
        "tokenizer.json or tokenizer.model",
        "*.safetensors",
    ]
    assert (
        missing_files(["config.json", "tokenizer_config.json", "tokenizer.model", "a.safetensors"])
        == []
    )


def test_a_folder_is_complete_only_for_its_source_and_dtype(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "ok")
    assert is_complete(folder, SHA, "bfloat16")
    assert not is_complete(folder, "f" * 64, "bfloat16")
    assert not is_complete(folder, SHA, "float32")
    assert not is_complete(make_folder(tmp_path / "old", recipe=0), SHA, "bfloat16")
    assert not is_complete(make_folder(tmp_path / "half", names=("config.json",)), SHA, "bfloat16")
    bad = make_folder(tmp_path / "bad")
    (bad / PROVENANCE_FILE).write_text("{")
    assert not is_complete(bad, SHA, "bfloat16")
    assert not is_complete(tmp_path / "absent", SHA, "bfloat16")


def test_provenance_round_trips() -> None:
    p = Provenance("m.gguf", SHA, "bfloat16", CONVERT_RECIPE, {"torch": "2.13.0+cpu"})
    assert Provenance.from_json(p.to_json()) == p
    assert json.loads(p.to_json())["versions"] == {"torch": "2.13.0+cpu"}


def test_unknown_dtype_is_refused() -> None:
    assert check_dtype("float16") == "float16"
    with pytest.raises(ConvertError, match="bfloat16, float16, float32"):
        check_dtype("int4")


def test_cli_parses_convert_with_its_defaults() -> None:
    args = build_parser().parse_args(["models", "convert", "m.gguf", "--to", "hf", "--out", "d"])
    assert (args.src, args.to, args.dtype, args.out, args.force) == (
        "m.gguf",
        "hf",
        "bfloat16",
        "d",
        False,
    )


def test_cli_refuses_a_file_that_is_not_gguf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"x")
    assert main(["models", "convert", str(src), "--out", str(tmp_path / "out")]) == 2
    assert "not a .gguf file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_does_not_overwrite_an_unrelated_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "m.gguf"
    src.write_bytes(b"GGUF")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["models", "convert", str(src), "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


_HAVE_CONVERT = all(
    importlib.util.find_spec(m) for m in ("torch", "transformers", "gguf", "accelerate")
)


@pytest.mark.engine
@pytest.mark.skipif(not _HAVE_CONVERT, reason="needs the convert extra")
def test_smollm2_gguf_converts_to_a_loadable_hf_folder(tmp_path: Path) -> None:
    from llmprov.cache import cache_root, demo_model
    from llmprov.convert.gguf_hf import gguf_to_hf

    src = demo_model(cache_root())
    out = tmp_path / "smollm2"
    result = gguf_to_hf(src, out, "bfloat16")
    assert not result.reused and is_complete(
        out, json.loads((out / PROVENANCE_FILE).read_text())["source_sha256"], "bfloat16"
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no partial left"
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config.get("quantization_config") is None
    # Loadable: transformers builds the model and tokenizer from the folder alone, and it answers.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6  # SmolLM2-135M
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        made = model.generate(ids, max_new_tokens=4, do_sample=False)
    text = tokenizer.decode(made[0, ids.shape[1] :])
    assert made.shape[1] == ids.shape[1] + 4 and text.strip(), text
    again = gguf_to_hf(src, out, "bfloat16")
    assert again.reused
