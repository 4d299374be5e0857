"""The Ollama stand-in (tests only) answers like Ollama's API, and says everywhere that it is not Ollama;
the product never reaches it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from standins.ollama_archive import build_release

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    sums = build_release(tmp_path / "mirror", "0.12.6", formats=("tgz",))
    archive = tmp_path / "mirror" / "v0.12.6" / "ollama-linux-amd64.tgz"
    assert list(sums) == ["ollama-linux-amd64.tgz"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "install", filter="data")
    assert "bin/ollama" in names and "lib/ollama" in names
    binary = tmp_path / "install" / "bin" / "ollama"
    assert binary.stat().st_mode & 0o111
    port = _free_port()
    env = {
        **os.environ,
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(tmp_path / "models"),
    }
    proc = subprocess.Popen([sys.executable, str(binary), "serve"], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield url, binary
    finally:
        proc.terminate()
        proc.wait(5)


def _get(url: str) -> tuple[dict[str, str], object]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return dict(r.headers), json.loads(r.read())


def _post(url: str, body: dict[str, object]) -> bytes:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as r:
        return bytes(r.read())


def test_standin_answers_the_api_with_the_archive_version_and_says_what_it_is(
    server: tuple[str, Path],
) -> None:
    url, binary = server
    headers, version = _get(url + "/api/version")
    assert version == {"version": "0.12.6", "standin": "llmprov test stand-in, not Ollama"}
    assert "stand-in" in headers["X-Llmprov-Standin"]
    assert _get(url + "/api/tags")[1] == {"models": []}
    lines = [
        json.loads(x) for x in _post(url + "/api/pull", {"model": "smollm2:135m"}).splitlines()
    ]
    assert lines[0] == {"status": "pulling manifest"} and lines[-1] == {"status": "success"}
    assert [m["name"] for m in _get(url + "/api/tags")[1]["models"]] == ["smollm2:135m"]  # type: ignore[index]
    assert _get(url + "/v1/models")[1]["data"][0]["id"] == "smollm2:135m"  # type: ignore[index]
    chat = json.loads(
        _post(url + "/v1/chat/completions", {"model": "smollm2:135m", "messages": []})
    )
    assert chat["choices"][0]["message"]["content"].startswith("Blue")
    streamed = _post(url + "/api/chat", {"model": "smollm2:135m", "messages": []}).splitlines()
    assert json.loads(streamed[-1])["done"] is True
    generated = json.loads(_post(url + "/api/generate", {"model": "smollm2:135m", "stream": False}))
    assert generated["response"].startswith("Blue")
    out = subprocess.run([sys.executable, str(binary), "--version"], capture_output=True, text=True)
    assert out.stdout.splitlines() == [
        "ollama version is 0.12.6",
        "llmprov test stand-in, not Ollama",
    ]


def test_the_product_never_refers_to_the_standin() -> None:
    for path in (REPO / "src").rglob("*.py"):
        assert "standin" not in path.read_text().lower(), path
