"""Where the model comes from decides the plan: exact commands against canned facts, on pyinfra's `@fake`.

Uploads, https downloads and Hugging Face pulls write `<dest>.partial` and rename it in; nothing
runs when the host holds the same model; a model in another format than the engine's is converted
on the controller (the conversions are stood in for here; tests/test_convert_roundtrip.py runs
them for real); a GGUF for Ollama is staged and imported through the API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixture_runner import Plan, loose_facts, run_deploy

from llmprov.convert.hf_gguf import ConvertedGguf
from llmprov.core.config import HostConfig
from llmprov.core.model_pull import (
    HF_HUB_MARKER,
    HF_PULL_SCRIPT,
    hf_pull_for,
    marker_path,
    ollama_marker,
    pull_identity,
)
from llmprov.core.model_record import RECORD_SCHEMA, FileStat, ModelStat, write_record_command
from llmprov.core.model_ref import HuggingFaceRef
from llmprov.core.validate import ControllerFiles, validate_host
from llmprov.core.vllm_env import UV, UV_MARKER
from llmprov.deploy import models

HOST = "@fake/model-host"
SHA = "ab" * 32
GGUF_DEST = "/var/lib/llmprov/llamacpp/models/smollm2.gguf"
HF_DEST = "/var/lib/llmprov/vllm/models/smollm2"


def config(base: Path, **data: Any) -> HostConfig:
    host_data = {"served_model_name": "smollm2", **data}
    files = ControllerFiles(
        read=lambda p: (base / p).read_text(), exists=lambda p: (base / p).exists()
    )
    cfg = validate_host(HOST, host_data, files, base_dir=str(base))
    assert not isinstance(cfg, list), [str(e) for e in cfg]
    return cfg


def gguf_file(base: Path, name: str = "m.gguf", content: bytes = b"GGUF fake") -> Path:
    path = base / name
    path.write_bytes(content)
    return path


def hf_folder(base: Path, name: str = "smol") -> Path:
    folder = base / name
    folder.mkdir()
    for f in ("config.json", "tokenizer_config.json", "tokenizer.json"):
        (folder / f).write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def run_plan(
    func: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
    answers: dict[tuple[str, str], Any] | None = None,
) -> Plan:
    """The deploy's plan on a host that answers `answers` and lacks curl; it must not fail."""
    asked: list[str] = []
    plan = run_deploy(
        func,
        monkeypatch,
        loose_facts(
            answers or {}, asked, which=lambda cmd: None if cmd == "curl" else f"/usr/bin/{cmd}"
        ),
        HOST,
        inline_chars=None,
    )
    plan.asked = asked
    assert not plan.failed
    return plan


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- uploads land whole


def test_a_gguf_upload_lands_beside_the_model_then_is_renamed_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf_file(tmp_path)
    cfg = config(tmp_path, engine="llamacpp", model="file://m.gguf")
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch)
    assert plan.names == ["Upload model m.gguf", "Move model m.gguf into place (0 MB)"]
    assert plan.commands("Upload")[-3:] == [
        {"upload": f"{GGUF_DEST}.partial", "src": "m.gguf"},
        f"chown llamacpp:llamacpp {GGUF_DEST}.partial",
        f"chmod 640 {GGUF_DEST}.partial",
    ]
    move = plan.commands("Move")
    assert move[:2] == [f"rm -f {GGUF_DEST}.llmprov.json", f"mv -f {GGUF_DEST}.partial {GGUF_DEST}"]
    assert move[2] == write_record_command(GGUF_DEST, {".": sha256(tmp_path / "m.gguf")})


def test_the_same_gguf_on_the_host_is_not_uploaded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = gguf_file(tmp_path)
    cfg = config(tmp_path, engine="llamacpp", model="file://m.gguf")
    plan = run_plan(
        lambda: models.place_model(cfg), monkeypatch, {("Sha256File", GGUF_DEST): sha256(local)}
    )
    assert plan.names == ["Record the digest of model m.gguf"], "unrecorded: hashed, then recorded"
    assert plan.notes == [f"model m.gguf is in place at {GGUF_DEST} (checked by sha256)"]


def test_a_folder_is_synced_beside_the_model_then_swapped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf_folder(tmp_path)
    cfg = config(tmp_path, engine="vllm", model="file://smol")
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch)
    assert plan.names[-1] == "Move model folder smol into place (4 files, 0 MB)"
    uploads = [c for c in plan.commands("Upload model folder smol") if isinstance(c, dict)]
    assert sorted(u["upload"] for u in uploads) == [
        f"{HF_DEST}.partial/{name}"
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    ]
    assert plan.commands("Move")[:2] == [
        f"rm -f {HF_DEST}.llmprov.json",
        f"rm -rf {HF_DEST}.old && if [ -e {HF_DEST} ]; then mv {HF_DEST} {HF_DEST}.old; fi && "
        f"mv {HF_DEST}.partial {HF_DEST} && rm -rf {HF_DEST}.old",
    ]


def test_a_folder_the_host_holds_by_content_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = hf_folder(tmp_path)
    cfg = config(tmp_path, engine="vllm", model="file://smol")
    same = models.local_manifest(folder)
    plan = run_plan(
        lambda: models.place_model(cfg), monkeypatch, {("FolderManifest", HF_DEST): same}
    )
    assert plan.names == ["Record the digest of model folder smol"]
    changed = {**same, "model.safetensors": "0" * 64}
    plan = run_plan(
        lambda: models.place_model(cfg), monkeypatch, {("FolderManifest", HF_DEST): changed}
    )
    assert plan.names[-1].startswith("Move model folder smol into place")


# ---------------------------------------------------------------- https


def test_an_https_gguf_is_downloaded_resumably_and_checked_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://models.example/smol.gguf"
    cfg = config(tmp_path, engine="llamacpp", model=f"{url}#sha256={SHA}")
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch)
    assert plan.names == [
        "Download tools",
        "Download smol.gguf and check its sha256 (resumes a partial download)",
    ]
    unrecord, script, record = plan.commands("Download smol.gguf")
    assert unrecord == f"rm -f {GGUF_DEST}.llmprov.json"
    for part in (
        f"curl -fL --silent --show-error --retry 3 --connect-timeout 30 -C - -o {GGUF_DEST}.partial {url}",
        f"chown llamacpp:llamacpp {GGUF_DEST}.partial",
        f"mv -f {GGUF_DEST}.partial {GGUF_DEST}",
        SHA,
    ):
        assert part in script
    assert script.index("sha256 does not match") < script.index("mv -f")

    assert record == write_record_command(GGUF_DEST, {".": SHA})

    done = run_plan(lambda: models.place_model(cfg), monkeypatch, {("Sha256File", GGUF_DEST): SHA})
    assert done.names == ["Record the digest of smol.gguf"]
    recorded = stat_of({".": (5, 7, SHA)})
    done = run_plan(
        lambda: models.place_model(cfg), monkeypatch, {("ModelFiles", GGUF_DEST): recorded}
    )
    assert done.ops == [] and done.notes == [
        f"smol.gguf is in place at {GGUF_DEST} (sha256 matches)"
    ]
    assert "Sha256File " + GGUF_DEST not in done.asked, "a vouching record spares the hash"


def stat_of(files: dict[str, tuple[int, int, str]], record: bool = True) -> ModelStat:
    """What ModelFiles reads from a host whose files have these (size, mtime_ns, sha256)."""
    entries = {n: {"size": s, "mtime_ns": m, "sha256": d} for n, (s, m, d) in files.items()}
    return ModelStat(
        {n: FileStat(s, m) for n, (s, m, _) in files.items()},
        {"schema_version": RECORD_SCHEMA, "files": entries} if record else None,
    )


def test_a_recorded_gguf_is_trusted_by_stat_without_hashing_on_either_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = gguf_file(tmp_path)
    cfg = config(tmp_path, engine="llamacpp", model="file://m.gguf")
    recorded = stat_of({".": (9, 1_700_000_000_123_456_789, sha256(local))})
    answers: dict[tuple[str, str], Any] = {("ModelFiles", GGUF_DEST): recorded}
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch, answers)
    assert plan.ops == [] and plan.notes == [f"model m.gguf is in place at {GGUF_DEST}"]
    assert plan.asked == [f"ModelFiles {GGUF_DEST}"]

    # Touched since it was recorded (the mtime moved): hashed; the same content is recorded anew.
    touched = ModelStat({".": FileStat(9, 1_700_000_000_123_456_790)}, recorded.record)
    answers = {("ModelFiles", GGUF_DEST): touched, ("Sha256File", GGUF_DEST): sha256(local)}
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch, answers)
    assert plan.names == ["Record the digest of model m.gguf"]

    # A record for other content: uploaded again, whatever the stat says.
    gguf_file(tmp_path, content=b"GGUF another")
    plan = run_plan(
        lambda: models.place_model(cfg), monkeypatch, {("ModelFiles", GGUF_DEST): recorded}
    )
    assert plan.names[0] == "Upload model m.gguf"
    assert f"Sha256File {GGUF_DEST}" not in plan.asked, "the record tells it apart unhashed"


def test_verify_models_hashes_the_host_copy_even_when_the_record_vouches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = gguf_file(tmp_path)
    cfg = models.verifying(config(tmp_path, engine="llamacpp", model="file://m.gguf"))
    recorded = stat_of({".": (9, 5, sha256(local))})
    answers: dict[tuple[str, str], Any] = {
        ("ModelFiles", GGUF_DEST): recorded,
        ("Sha256File", GGUF_DEST): sha256(local),
    }
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch, answers)
    assert plan.ops == [] and f"Sha256File {GGUF_DEST}" in plan.asked
    # The host's copy was corrupted in place with its size and mtime kept: only --verify sees it.
    answers[("Sha256File", GGUF_DEST)] = "0" * 64
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch, answers)
    assert plan.names[0] == "Upload model m.gguf"


def test_an_https_model_that_is_not_a_gguf_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, engine="vllm", model=f"https://m.example/model.tar#sha256={SHA}")
    with pytest.raises(models.ModelPlacementError, match=r"must be one \.gguf file"):
        models.place_model(cfg)


# ---------------------------------------------------------------- Hugging Face pulls on the host


def test_an_hf_gguf_pull_on_a_fresh_host_installs_the_tools_then_pulls_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, engine="llamacpp", model="hf://org/smol-GGUF@v1.0/smol-Q4_K_M.gguf")
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch)
    assert plan.names == [
        "Tools venv packages",
        "Install uv 0.13.9 into the tools venv",
        "Install huggingface_hub 2.4.0 into the tools venv",
        "Hugging Face pull script",
        f"Pull hf://org/smol-GGUF@v1.0 (smol-Q4_K_M.gguf) into {GGUF_DEST} (resumes a partial pull)",
    ]
    assert plan.commands("Install uv")[0].startswith(f"if [ ! -f {UV_MARKER} ] || [ ! -x {UV} ]")
    hub = plan.commands("Install huggingface_hub")
    assert hub[0].endswith("--quiet huggingface_hub==2.4.0") and hub[1] == f"touch {HF_HUB_MARKER}"
    script = plan.commands("Hugging Face pull script")
    assert {"upload": HF_PULL_SCRIPT, "src": "hf_download.py"} in script
    assert isinstance(cfg.model_ref, HuggingFaceRef)
    pull = hf_pull_for(cfg.model_ref, "gguf")
    assert plan.commands("Pull hf://") == [
        "env HF_HOME=/var/cache/llmprov/huggingface HF_HUB_DISABLE_TELEMETRY=1 "
        "HF_HUB_DISABLE_PROGRESS_BARS=1 /opt/llmprov/tools/bin/python "
        f"{HF_PULL_SCRIPT} --repo org/smol-GGUF --dest {GGUF_DEST} --owner llamacpp "
        f"--env-file /etc/llmprov/hf-pull.env --marker {marker_path(GGUF_DEST)} "
        f"--identity {pull_identity(pull)} --revision v1.0 --file smol-Q4_K_M.gguf"
    ]


def test_an_hf_folder_pull_asks_for_config_tokenizer_and_safetensors_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, engine="vllm", model="hf://HuggingFaceTB/SmolLM2-135M-Instruct")
    answers = {("File", UV_MARKER): {"size": 0}, ("File", UV): {"size": 1},
               ("File", HF_HUB_MARKER): {"size": 0}}  # fmt: skip
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch, answers)
    assert plan.names[:2] == [
        "Tools venv packages",
        "Hugging Face pull script",
    ], "uv and huggingface_hub are installed already"
    (argv,) = plan.commands("Pull hf://")
    assert "--allow '*.json' --allow '*.safetensors' --allow tokenizer.model" in argv
    assert "--ignore '*/*' --ignore 'consolidated*.safetensors'" in argv
    assert "--revision" not in argv and "--file" not in argv
    assert f"--dest {HF_DEST} --owner vllm --env-file /etc/llmprov/hf-pull.env" in argv


def test_a_pull_recorded_for_the_same_reference_is_not_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, engine="llamacpp", model="hf://org/smol-GGUF@v1.0/smol.gguf")
    assert isinstance(cfg.model_ref, HuggingFaceRef)
    pull = hf_pull_for(cfg.model_ref, "gguf")
    record = json.dumps({"identity": pull_identity(pull), "commit": "c" * 40})
    answers = {
        ("FileContents", marker_path(GGUF_DEST)): record.splitlines(),
        ("File", GGUF_DEST): {"size": 1},
    }
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch, answers)
    assert plan.ops == []
    assert plan.notes == [f"hf://org/smol-GGUF@v1.0 (smol.gguf) is already pulled into {GGUF_DEST}"]

    # Another revision in the inventory pulls again; so does a record whose model is gone.
    moved = config(tmp_path, engine="llamacpp", model="hf://org/smol-GGUF@v2.0/smol.gguf")
    assert (
        run_plan(lambda: models.place_model(moved), monkeypatch, answers)
        .names[-1]
        .startswith("Pull hf://org/smol-GGUF@v2.0")
    )
    gone = {k: v for k, v in answers.items() if k[0] != "File"}
    assert (
        run_plan(lambda: models.place_model(cfg), monkeypatch, gone)
        .names[-1]
        .startswith("Pull hf://")
    )


def test_a_file_in_an_hf_reference_must_be_a_gguf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, engine="vllm", model="hf://org/repo/weights.bin")
    with pytest.raises(models.ModelPlacementError, match=r"must be a \.gguf file"):
        models.place_model(cfg)


# ---------------------------------------------------------------- conversions on the controller


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """Stand in for the real conversions (seconds to minutes each), recording what was asked."""
    from llmprov.convert import gguf_hf, hf_gguf
    from llmprov.convert.gguf_hf import Converted

    asked: list[str] = []
    out = tmp_path / "converted"
    out.mkdir()

    def cached_hf(src: Path, root: Path, dtype: str = "bfloat16") -> Converted:
        asked.append(f"hf {src.name} {dtype}")
        return Converted(hf_folder(out, f"{src.stem}-hf"), 0.0, 1, False)

    def cached_gguf(
        src: Path, root: Path, kind: str, name: str | None = None, report: Any = None
    ) -> ConvertedGguf:
        asked.append(f"gguf {src.name} {kind} {name}")
        return ConvertedGguf(gguf_file(out, f"{src.name}-{kind}.gguf"), 0.0, 1, False)

    monkeypatch.setattr(gguf_hf, "cached_hf", cached_hf)
    monkeypatch.setattr(hf_gguf, "cached_gguf", cached_gguf)
    monkeypatch.setenv("LLMPROV_CACHE", str(tmp_path / "cache"))
    yield asked


def test_a_gguf_for_vllm_is_converted_on_the_controller_and_the_folder_uploaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[str]
) -> None:
    gguf_file(tmp_path)
    cfg = config(tmp_path, engine="vllm", model="file://m.gguf")
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch)
    assert conversions == ["hf m.gguf bfloat16"]
    label = "model m-hf (converted on the controller from file://m.gguf)"
    assert plan.names == [f"Upload {label}", f"Move {label} into place (4 files, 0 MB)"]


def test_an_hf_folder_for_llamacpp_is_converted_to_gguf_on_the_controller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[str]
) -> None:
    hf_folder(tmp_path)
    cfg = config(tmp_path, engine="llamacpp", model="file://smol")
    plan = run_plan(lambda: models.place_model(cfg), monkeypatch)
    assert conversions == ["gguf smol f16 smollm2"]
    label = "model smol-f16.gguf (converted on the controller from file://smol)"
    assert plan.names == [f"Upload {label}", f"Move {label} into place (0 MB)"]
    assert plan.commands("Move")[1] == f"mv -f {GGUF_DEST}.partial {GGUF_DEST}"


def test_a_conversion_that_fails_names_the_host_and_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmprov.convert import gguf_hf
    from llmprov.convert.spec import ConvertError

    def broken(src: Path, root: Path, dtype: str = "bfloat16") -> Any:
        raise ConvertError("converting GGUF needs torch")

    monkeypatch.setattr(gguf_hf, "cached_hf", broken)
    gguf_file(tmp_path)
    cfg = config(tmp_path, engine="vllm", model="file://m.gguf")
    with pytest.raises(models.ModelPlacementError, match=r"@fake/model-host: model: .*needs torch"):
        models.place_model(cfg)


# ---------------------------------------------------------------- Ollama imports


OLLAMA_BIN = "/opt/llmprov/ollama/current/bin/ollama"
STAGED = "/var/cache/llmprov/ollama/import/smollm2.gguf"


def test_a_gguf_for_ollama_is_staged_imported_through_the_api_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = gguf_file(tmp_path)
    cfg = config(tmp_path, engine="ollama", model="file://m.gguf")
    plan = run_plan(
        lambda: models.import_into_ollama(cfg, OLLAMA_BIN, "127.0.0.1", 11434), monkeypatch
    )
    assert plan.names == [
        "Download tools",
        "Ollama import folder",
        "Upload model m.gguf",
        "Move model m.gguf into place (0 MB)",
        "Import smollm2 into Ollama through its API (blob upload, create)",
    ]
    assert plan.commands("Upload")[-1] == f"chmod 600 {STAGED}.partial"
    (script,) = plan.commands("Import")
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    for part in (
        "http://127.0.0.1:11434/api/blobs/sha256:",
        "-X POST -T",
        "http://127.0.0.1:11434/api/create",
        '"model":"smollm2"',
        f"file://m.gguf {digest}",
        f"rm -f {STAGED}",
    ):
        assert part in script, part


def test_an_imported_model_from_the_same_source_is_not_imported_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = gguf_file(tmp_path)
    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    cfg = config(tmp_path, engine="ollama", model="file://m.gguf")
    answers: dict[tuple[str, str], Any] = {
        ("OllamaModels", ""): {"smollm2:latest"},
        ("FileContents", ollama_marker("smollm2")): [f"file://m.gguf {digest}"],
    }
    plan = run_plan(
        lambda: models.import_into_ollama(cfg, OLLAMA_BIN, "127.0.0.1", 11434),
        monkeypatch,
        answers,
    )
    assert plan.ops == [] and plan.notes == ["model smollm2 is imported from file://m.gguf"]

    gguf_file(tmp_path, content=b"GGUF another")
    again = run_plan(
        lambda: models.import_into_ollama(cfg, OLLAMA_BIN, "127.0.0.1", 11434),
        monkeypatch,
        answers,
    )
    assert again.names[-1].startswith("Import smollm2"), "a changed file is imported again"


def test_an_hf_gguf_for_ollama_is_pulled_on_the_host_into_the_staging_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, engine="ollama", model="hf://org/smol-GGUF/smol.gguf")
    plan = run_plan(lambda: models.import_into_ollama(cfg, OLLAMA_BIN, "::1", 11434), monkeypatch)
    (pull,) = plan.commands("Pull hf://")
    assert f"--dest {STAGED} --owner root" in pull
    (script,) = plan.commands("Import")
    assert "http://[::1]:11434/api/create" in script
    assert f"rm -f {STAGED} {marker_path(STAGED)}" in script


def test_ollama_imports_are_refused_off_linux(tmp_path: Path) -> None:
    gguf_file(tmp_path)
    cfg = config(tmp_path, engine="ollama", os="macos", model="file://m.gguf")
    with pytest.raises(models.ModelPlacementError, match="on Linux hosts"):
        models.import_into_ollama(cfg, "/usr/local/bin/ollama", "127.0.0.1", 11434)


def test_deploy_verify_models_flag_marks_every_host_to_hash_again(tmp_path: Path) -> None:
    import argparse

    from llmprov.cli import deploy_cmd

    parser = argparse.ArgumentParser()
    deploy_cmd.register(parser.add_subparsers())
    assert parser.parse_args(["deploy", "inv.py", "--verify-models"]).verify_models is True
    assert parser.parse_args(["deploy", "inv.py"]).verify_models is False
    gguf_file(tmp_path)
    cfg = config(tmp_path, engine="llamacpp", model="file://m.gguf")
    assert not cfg.settings.verify_models
    assert models.verifying(cfg).settings.verify_models and not cfg.settings.verify_models
    assert config(
        tmp_path, engine="llamacpp", model="file://m.gguf", verify_models=True
    ).settings.verify_models
