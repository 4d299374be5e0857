"""GGUF into a running Ollama through its API: the blob upload, then a create that names it.

`HEAD /api/blobs/sha256:<digest>` says whether Ollama has the file already; if not,
`POST /api/blobs/sha256:<digest>` streams it (Ollama checks the digest). Then `POST /api/create`
with `files` makes the model. The client is injected, so that the same code is tested against an
in-process stand-in and used against a real server. On a host, the deploy makes the same two
calls with curl (core/model_pull.py: ollama_import_script).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx

from llmprov.cache import sha256_file
from llmprov.convert.progress import Report, Step, silent
from llmprov.convert.spec import ConvertError
from llmprov.core.model_pull import ollama_create_body

CHUNK = 1 << 20


class OllamaImportError(ConvertError):
    """Ollama refused the blob or the create; the message carries its answer."""


def _chunks(path: Path, task: str, report: Report) -> Iterator[bytes]:
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            done += len(chunk)
            report(Step(task, done, total, "B"))
            yield chunk
    report(Step(task, done, total, "B", finished=True))


def _error(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:300] or f"HTTP {response.status_code}"
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return str(data)[:300]


def import_gguf(client: httpx.Client, gguf: Path, name: str, report: Report = silent) -> str:
    """Make Ollama serve `gguf` as `name`; returns the blob's sha256. `client` has the base URL."""
    if not gguf.is_file():
        raise OllamaImportError(f"{gguf}: no such GGUF file")
    report(Step(f"sha256 of {gguf.name}", 0, None))
    digest = sha256_file(gguf)
    report(Step(f"sha256 of {gguf.name}", 1, 1, finished=True))
    blob = f"/api/blobs/sha256:{digest}"
    try:
        if client.head(blob).status_code != 200:
            response = client.post(
                blob,
                content=_chunks(gguf, f"upload {gguf.name} to Ollama", report),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(gguf.stat().st_size),
                },
                timeout=httpx.Timeout(30.0, write=None, read=600.0),
            )
            if response.status_code not in (200, 201):
                raise OllamaImportError(
                    f"Ollama refused the blob of {gguf.name}: {_error(response)}"
                )
        filename = gguf.name if gguf.suffix == ".gguf" else "model.gguf"
        task = f"create {name}"
        report(Step(task, 0, None))
        response = client.post(
            "/api/create",
            json=ollama_create_body(name, filename, digest),
            timeout=httpx.Timeout(30.0, read=None),
        )
    except httpx.HTTPError as exc:
        raise OllamaImportError(f"{client.base_url}: {exc}") from exc
    if response.status_code != 200:
        raise OllamaImportError(f"Ollama did not create {name}: {_error(response)}")
    status = response.json().get("status") if response.content else None
    if status != "success":
        raise OllamaImportError(f"Ollama did not create {name}: {_error(response)}")
    report(Step(task, 1, 1, finished=True))
    return digest
