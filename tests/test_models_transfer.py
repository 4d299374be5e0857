"""The commands and scripts that move models, run for real against local stand-ins.

The https download script (bash + curl) and the Hugging Face pull script (the file uploaded to
hosts) run here as they would on a host, against the hub stand-in on 127.0.0.1; the Ollama import
runs both ways (curl script on the host, httpx from the controller) against the Ollama stand-in.
What is pinned: nothing half-written ever sits at the model's path, partials are resumed, a bad
checksum leaves nothing behind, the token comes from the environment file.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standins.hf_hub_standin import Hub, HubServer

from llmprov.convert import hf_download
from llmprov.convert.fetch import FetchError, fetch_hf, fetch_https
from llmprov.convert.ollama_import import OllamaImportError, import_gguf
from llmprov.convert.progress import Step
from llmprov.core.model_pull import (
    HF_FOLDER_ALLOW,
    HF_FOLDER_IGNORE,
    HfPull,
    https_download_script,
    marker_identity,
    move_file_command,
    ollama_import_script,
    swap_folder_command,
)
from llmprov.core.model_ref import HttpsRef

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "standins" / "ollama_standin.py"
ME = pwd.getpwuid(os.getuid()).pw_name
SAME_GROUP = grp.getgrgid(os.getgid()).gr_name == ME


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small repository: what vLLM needs, and what it does not (a subfolder, a .bin)."""
    folder = tmp_path / "repo"
    (folder / "onnx").mkdir(parents=True)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(os.urandom(300_000))
    (folder / "pytorch_model.bin").write_bytes(b"old weights")
    (folder / "onnx" / "model.json").write_text("{}")
    (folder / "smol-Q4_K_M.gguf").write_bytes(b"GGUF" + os.urandom(200_000))
    return folder


@pytest.fixture
def hub(repo: Path) -> Iterator[HubServer]:
    state = Hub(token="hf_testTokenNotReal42")
    state.add("org/smol", repo)
    with HubServer(state) as server:
        yield server


def file_url(hub: HubServer, name: str) -> str:
    return f"{hub.url}/org/smol/resolve/main/{name}"


def bash(script: str) -> subprocess.CompletedProcess[str]:
    # The scripts are `bash -c '<script>'` lines, as pyinfra runs them.
    return subprocess.run(script, shell=True, capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------- https on the host (curl)

needs_owner = pytest.mark.skipif(not SAME_GROUP, reason="the scripts chown to USER:USER")


@needs_owner
def test_https_download_lands_whole_and_resumes_a_partial(
    tmp_path: Path, hub: HubServer, repo: Path
) -> None:
    data = (repo / "smol-Q4_K_M.gguf").read_bytes()
    dest = tmp_path / "models" / "smol.gguf"
    dest.parent.mkdir()
    partial = Path(f"{dest}.partial")
    partial.write_bytes(data[:50_000])  # left by an interrupted run
    script = https_download_script(file_url(hub, "smol-Q4_K_M.gguf"), sha256(data), str(dest), ME)
    hub.hub.token = None
    done = bash(script)
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == data and not partial.exists()
    assert oct(dest.stat().st_mode & 0o777) == "0o640"
    ranges = [r["range"] for r in hub.hub.requests if r["path"].endswith(".gguf")]
    assert ranges == ["bytes=50000-"], "the partial is resumed, not fetched again"
    # Run again: the partial is gone, the file is fetched whole and moved over the same file.
    assert bash(script).returncode == 0 and dest.read_bytes() == data


@needs_owner
def test_https_download_with_a_wrong_checksum_leaves_nothing(
    tmp_path: Path, hub: HubServer
) -> None:
    hub.hub.token = None
    dest = tmp_path / "smol.gguf"
    done = bash(https_download_script(file_url(hub, "smol-Q4_K_M.gguf"), "0" * 64, str(dest), ME))
    assert done.returncode == 1
    assert "sha256 does not match the expected 0000" in done.stderr
    assert not dest.exists() and not Path(f"{dest}.partial").exists()


@needs_owner
def test_https_download_starts_over_where_the_server_cannot_resume(
    tmp_path: Path, hub: HubServer, repo: Path
) -> None:
    hub.hub.token = None
    hub.hub.ranges = False
    data = (repo / "smol-Q4_K_M.gguf").read_bytes()
    dest = tmp_path / "smol.gguf"
    Path(f"{dest}.partial").write_bytes(b"GGUF stale bytes")
    done = bash(
        https_download_script(file_url(hub, "smol-Q4_K_M.gguf"), sha256(data), str(dest), ME)
    )
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == data


def test_a_failed_download_keeps_the_model_the_engine_loads(tmp_path: Path, hub: HubServer) -> None:
    hub.hub.token = None
    dest = tmp_path / "smol.gguf"
    dest.write_bytes(b"the model being served")
    done = bash(https_download_script(file_url(hub, "absent.gguf"), "0" * 64, str(dest), ME))
    assert done.returncode != 0
    assert dest.read_bytes() == b"the model being served"


def test_move_and_swap_put_a_partial_in_place(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    Path(f"{f}.partial").write_text("new")
    f.write_text("old")
    assert bash(move_file_command(f"{f}.partial", str(f))).returncode == 0
    assert f.read_text() == "new"
    d = tmp_path / "smol"
    (d).mkdir()
    (d / "old.safetensors").write_text("old")
    Path(f"{d}.partial").mkdir()
    Path(f"{d}.partial/model.safetensors").write_text("new")
    assert bash(swap_folder_command(f"{d}.partial", str(d))).returncode == 0
    assert sorted(p.name for p in d.iterdir()) == ["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf", "smol"]
    # A first placement has nothing to swap out.
    e = tmp_path / "fresh"
    Path(f"{e}.partial").mkdir()
    assert bash(swap_folder_command(f"{e}.partial", str(e))).returncode == 0 and e.is_dir()


# ---------------------------------------------------------------- the pull script on the host


def run_pull_script(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(extra, HF_HUB_DISABLE_PROGRESS_BARS="1")
    env["HF_HOME"] = str(Path(args[args.index("--dest") + 1]).parent / ".hf-home")
    return subprocess.run(
        [sys.executable, hf_download.__file__, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@needs_owner
def test_the_pull_script_fetches_what_vllm_loads_with_the_token_from_the_env_file(
    tmp_path: Path, hub: HubServer
) -> None:
    env_file = tmp_path / "vllm.env"
    env_file.write_text(f'HF_TOKEN="hf_testTokenNotReal42"\nHF_ENDPOINT={hub.url}\nOTHER=1\n')
    dest = tmp_path / "models" / "smol"
    dest.parent.mkdir()
    marker = tmp_path / "models" / "smol.llmprov-source.json"
    args = ["--repo", "org/smol", "--dest", str(dest), "--owner", ME, "--env-file",
            str(env_file), "--marker", str(marker), "--identity", "abc123"]  # fmt: skip
    for p in HF_FOLDER_ALLOW:
        args += ["--allow", p]
    for p in HF_FOLDER_IGNORE:
        args += ["--ignore", p]
    done = run_pull_script(*args)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in dest.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert oct(dest.stat().st_mode & 0o777) == "0o750"
    record = json.loads(marker.read_text())
    assert marker_identity(marker.read_text()) == "abc123"
    assert record["commit"] == hub.hub.repos["org/smol"].commit and record["revision"] is None
    assert {r["auth"] for r in hub.hub.requests} == {"Bearer hf_testTokenNotReal42"}
    fetched = {r["path"].rsplit("/", 1)[-1] for r in hub.hub.requests if r["method"] == "GET"}
    assert "pytorch_model.bin" not in fetched and "model.json" not in fetched
    assert not list(dest.parent.glob("*.partial"))


def test_the_pull_script_without_the_token_fails_saying_what_is_needed(
    tmp_path: Path, hub: HubServer
) -> None:
    env_file = tmp_path / "absent.env"
    dest = tmp_path / "smol.gguf"
    done = run_pull_script(
        "--repo", "org/smol", "--file", "smol-Q4_K_M.gguf", "--dest", str(dest),
        "--env-file", str(env_file), HF_ENDPOINT=hub.url,
    )  # fmt: skip
    assert done.returncode == 1
    assert "pull of org/smol failed" in done.stderr and "hf_token_file" in done.stderr
    assert not dest.exists()


def test_an_interrupted_folder_pull_leaves_no_model_and_the_next_run_keeps_what_it_had(
    tmp_path: Path, hub: HubServer, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.file_download

    # huggingface_hub waits a second between its own retries of a broken transfer.
    monkeypatch.setattr(huggingface_hub.file_download.time, "sleep", lambda s: None)
    hub.hub.token = None
    cuts = {"model.safetensors": 100_000}

    class Always(dict[str, int]):
        def pop(self, key: str, default: int | None = None) -> int | None:  # type: ignore[override]
            return cuts.get(key, default)

    hub.hub.cut_once = Always()
    dest = tmp_path / "smol"
    pull = dict(allow=HF_FOLDER_ALLOW, ignore=HF_FOLDER_IGNORE, endpoint=hub.url)
    with pytest.raises(Exception, match="peer closed connection"):
        hf_download.download("org/smol", dest, **pull)  # type: ignore[arg-type]
    assert not dest.exists(), "nothing half-written where the engine loads"
    kept = sorted(p.name for p in Path(f"{dest}.partial").iterdir() if p.is_file())
    assert "config.json" in kept and "model.safetensors" not in kept

    cuts.clear()
    before = len(hub.hub.requests)
    pulled = hf_download.download("org/smol", dest, **pull)  # type: ignore[arg-type]
    assert (dest / "model.safetensors").read_bytes() == (repo / "model.safetensors").read_bytes()
    again = [
        r["path"].rsplit("/", 1)[-1] for r in hub.hub.requests[before:] if r["method"] == "GET"
    ]
    assert "config.json" not in again, "files completed before are not fetched again"
    assert pulled.files == (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    )


def test_a_partial_left_by_another_pull_is_started_over(tmp_path: Path, hub: HubServer) -> None:
    hub.hub.token = None
    dest = tmp_path / "smol"
    stale = Path(f"{dest}.partial")
    stale.mkdir()
    (stale / "leftover.safetensors").write_text("from another revision")
    hf_download.download(
        "org/smol", dest, allow=["*.json", "*.safetensors"], ignore=["*/*"], endpoint=hub.url
    )
    assert "leftover.safetensors" not in {p.name for p in dest.iterdir()}


def test_the_env_file_is_read_as_llmprov_writes_it(tmp_path: Path) -> None:
    env = tmp_path / "x.env"
    env.write_text('# llmprov\nHF_TOKEN="a\\"b\\\\c\\$d"\nHF_ENDPOINT=https://mirror.example\n')
    assert hf_download.read_env_file(env) == {
        "HF_TOKEN": 'a"b\\c$d',
        "HF_ENDPOINT": "https://mirror.example",
    }


# ---------------------------------------------------------------- controller fetches


def test_controller_https_fetch_resumes_checks_and_reports_bytes(
    tmp_path: Path, hub: HubServer, repo: Path
) -> None:
    hub.hub.token = None
    data = (repo / "smol-Q4_K_M.gguf").read_bytes()
    ref = HttpsRef(raw="x", url=file_url(hub, "smol-Q4_K_M.gguf"), sha256=sha256(data))
    folder = tmp_path / "downloads"
    folder.mkdir()
    Path(folder / f"{ref.sha256[:16]}-smol-Q4_K_M.gguf.partial").write_bytes(data[:1000])
    steps: list[Step] = []
    got = fetch_https(ref, folder, report=steps.append)
    assert got.read_bytes() == data
    assert steps[-1].finished and steps[-1].done == len(data)
    assert [r["range"] for r in hub.hub.requests] == ["bytes=1000-"]
    assert fetch_https(ref, folder) == got and len(hub.hub.requests) == 1, "reused"

    bad = HttpsRef(raw="x", url=ref.url, sha256="0" * 64)
    with pytest.raises(FetchError, match="does not match"):
        fetch_https(bad, tmp_path / "other")
    assert not list((tmp_path / "other").iterdir())


def test_controller_hf_fetch_is_reused_once_complete(tmp_path: Path, hub: HubServer) -> None:
    pull = HfPull("org/smol", None, "smol-Q4_K_M.gguf", (), ())
    steps: list[Step] = []
    token = "hf_testTokenNotReal42"
    path = fetch_hf(pull, tmp_path, token=token, endpoint=hub.url, report=steps.append)
    assert path.name == "smol-Q4_K_M.gguf" and path.read_bytes().startswith(b"GGUF")
    assert any(s.unit == "B" and s.done for s in steps), "bytes are reported"
    count = len(hub.hub.requests)
    assert fetch_hf(pull, tmp_path, token=token, endpoint=hub.url) == path
    assert len(hub.hub.requests) == count, "a completed pull is not asked for again"
    with pytest.raises(FetchError, match="hf://org/smol"):
        fetch_hf(HfPull("org/smol", None, "absent.gguf", (), ()), tmp_path, token, hub.url)


# ---------------------------------------------------------------- Ollama imports


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ollama(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    """The Ollama stand-in serving on a free port; (address, port, its models folder)."""
    port = _free_port()
    models = tmp_path / "ollama-models"
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(models)}
    proc = subprocess.Popen(
        [sys.executable, str(STANDIN), "serve"], env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield "127.0.0.1", port, models
    finally:
        proc.terminate()
        proc.wait(5)


def tags(port: int) -> list[str]:
    return [m["name"] for m in httpx.get(f"http://127.0.0.1:{port}/api/tags").json()["models"]]


def test_import_gguf_uploads_the_blob_once_and_creates_the_model(
    tmp_path: Path, ollama: tuple[str, int, Path]
) -> None:
    address, port, models = ollama
    gguf = tmp_path / "smol.gguf"
    gguf.write_bytes(b"GGUF" + os.urandom(3_000_000))
    steps: list[Step] = []
    with httpx.Client(base_url=f"http://{address}:{port}") as client:
        digest = import_gguf(client, gguf, "smol:q4", steps.append)
        assert digest == sha256(gguf.read_bytes())
        assert (models / "blobs" / f"sha256-{digest}").read_bytes() == gguf.read_bytes()
        assert tags(port) == ["smol:q4"]
        uploads = [s for s in steps if s.task.startswith("upload")]
        assert uploads[-1].finished and uploads[-1].done == gguf.stat().st_size
        # A second import finds the blob and uploads nothing.
        steps.clear()
        import_gguf(client, gguf, "smol:again", steps.append)
        assert not [s for s in steps if s.task.startswith("upload")]
        assert sorted(tags(port)) == ["smol:again", "smol:q4"]


def test_import_gguf_says_what_ollama_refused(
    tmp_path: Path, ollama: tuple[str, int, Path]
) -> None:
    address, port, _ = ollama
    with httpx.Client(base_url=f"http://{address}:{port}") as client:
        with pytest.raises(OllamaImportError, match="no such GGUF"):
            import_gguf(client, tmp_path / "absent.gguf", "x")
        gguf = tmp_path / "m.gguf"
        gguf.write_bytes(b"GGUF")
        with pytest.raises(
            OllamaImportError, match="did not create : model and files are required"
        ):
            import_gguf(client, gguf, "")  # an empty name is refused by the server


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_import_script_does_the_same_with_curl_and_cleans_up(
    tmp_path: Path, ollama: tuple[str, int, Path]
) -> None:
    address, port, models = ollama
    staged = tmp_path / "import" / "smollm2.gguf"
    staged.parent.mkdir()
    staged.write_bytes(b"GGUF" + os.urandom(2_000_000))
    digest = sha256(staged.read_bytes())
    marker = tmp_path / "import" / "smollm2.source"
    pull_marker = tmp_path / "import" / "smollm2.gguf.llmprov-source.json"
    pull_marker.write_text("{}")
    script = ollama_import_script(
        str(staged), "smollm2", address, port, str(marker), f"file://m.gguf {digest}",
        str(pull_marker),
    )  # fmt: skip
    done = bash(script)
    assert done.returncode == 0, done.stderr
    assert tags(port) == ["smollm2:latest"]
    assert (models / "blobs" / f"sha256-{digest}").is_file()
    assert marker.read_text() == f"file://m.gguf {digest}\n"
    assert not staged.exists() and not pull_marker.exists()


def test_the_import_script_fails_when_ollama_refuses(
    tmp_path: Path, ollama: tuple[str, int, Path]
) -> None:
    address, port, _ = ollama
    staged = tmp_path / "m.gguf"
    staged.write_bytes(b"GGUF")
    marker = tmp_path / "m.source"
    done = bash(ollama_import_script(str(staged), "", address, port, str(marker), "id"))
    assert done.returncode != 0 and not marker.exists()
    assert staged.exists(), "kept for the next run"
