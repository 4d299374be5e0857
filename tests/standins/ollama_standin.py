#!/usr/bin/python3
"""A stand-in for the `ollama` binary, for tests only: it is NOT Ollama and says so everywhere.

The test archives (tests/standins/ollama_archive.py) ship this file as `bin/ollama`, with the
archive's version written into STANDIN_VERSION, laid out like an official release. Python 3
standard library only, because it runs on bare test hosts.

    ollama serve              HTTP on $OLLAMA_HOST (default 127.0.0.1:11434):
                              GET /, /api/version, /api/tags, /api/ps, /v1/models;
                              POST /api/pull (streamed status lines), /api/chat, /api/generate,
                              /v1/chat/completions (plain or streamed);
                              HEAD and POST /api/blobs/sha256:<digest> (the digest is checked),
                              POST /api/create with `files` naming uploaded blobs
    ollama pull NAME          asks the server to pull NAME
    ollama list               the server's models as a table
    ollama --version          the version, and that this is a stand-in

Models are manifests under $OLLAMA_MODELS (default ~/.ollama/models), as Ollama keeps them, so
that a pull proves the service can write its models folder. Answers are canned text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STANDIN_VERSION = "0.0.0"
# Set by the archive builder to make a release whose server cannot start (for rollback tests).
STANDIN_BROKEN = False
STANDIN_NOTE = "llmprov test stand-in, not Ollama"
REPLY = "Blue is a colour of the sky and the sea"
REGISTRY = "registry.ollama.ai"


def _address() -> tuple[str, int]:
    raw = os.environ.get("OLLAMA_HOST", "").strip() or "127.0.0.1:11434"
    raw = raw.split("://", 1)[-1].rstrip("/")
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = rest.lstrip(":") or "11434"
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    else:
        host, port = raw, "11434"
    return host or "127.0.0.1", int(port)


def _models_dir() -> Path:
    env = os.environ.get("OLLAMA_MODELS")
    return Path(env) if env else Path.home() / ".ollama" / "models"


def _split(name: str) -> tuple[str, str]:
    base, _, tag = name.partition(":")
    return base, tag or "latest"


def _manifest(name: str) -> Path:
    base, tag = _split(name)
    namespace, _, model = base.rpartition("/")
    return _models_dir() / "manifests" / REGISTRY / (namespace or "library") / model / tag


def _models() -> list[dict[str, Any]]:
    root = _models_dir() / "manifests" / REGISTRY
    found = []
    for path in sorted(root.glob("*/*/*")) if root.is_dir() else []:
        namespace, model, tag = path.parts[-3:]
        name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
        data = path.read_bytes()
        found.append(
            {
                "name": name,
                "model": name,
                "modified_at": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime)
                ),
                "size": len(data),
                "digest": hashlib.sha256(data).hexdigest(),
                "details": {"format": "gguf", "family": "standin"},
            }
        )
    return found


def _blob(digest: str) -> Path | None:
    """Where a blob named `sha256:<hex>` is kept, as Ollama keeps it; None for a bad name."""
    algo, _, hexdigest = digest.partition(":")
    if (
        algo != "sha256"
        or len(hexdigest) != 64
        or not all(c in "0123456789abcdef" for c in hexdigest)
    ):
        return None
    return _models_dir() / "blobs" / f"sha256-{hexdigest}"


def _known(name: str) -> bool:
    return _manifest(name).is_file()


class Handler(BaseHTTPRequestHandler):
    server_version = f"ollama-standin/{STANDIN_VERSION}"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[{STANDIN_NOTE}] {self.command} {self.path}\n")

    # --- replies -----------------------------------------------------------------------------

    def _head(self, status: int, ctype: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("X-Llmprov-Standin", STANDIN_NOTE)
        if length is None:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._head(status, "application/json; charset=utf-8", len(body))
        self.wfile.write(body)

    def _stream(self, ctype: str, chunks: list[bytes]) -> None:
        # Streamed until the connection closes, which every HTTP client reads to the end.
        self._head(200, ctype, None)
        for chunk in chunks:
            self.wfile.write(chunk)
            self.wfile.flush()

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    # --- routes ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            body = f"Ollama is running ({STANDIN_NOTE})".encode()
            self._head(200, "text/plain; charset=utf-8", len(body))
            self.wfile.write(body)
        elif path == "/api/version":
            self._json(200, {"version": STANDIN_VERSION, "standin": STANDIN_NOTE})
        elif path == "/api/tags":
            self._json(200, {"models": _models()})
        elif path == "/api/ps":
            self._json(200, {"models": []})
        elif path == "/v1/models":
            data = [
                {"id": m["name"], "object": "model", "created": 0, "owned_by": "library"}
                for m in _models()
            ]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, {"error": "not found"})

    def do_HEAD(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/api/blobs/"):
            found = _blob(path.removeprefix("/api/blobs/"))
            self._head(200 if found is not None and found.is_file() else 404, "text/plain", 0)
        else:
            self._head(404, "text/plain", 0)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/api/blobs/"):
            self._upload_blob(path.removeprefix("/api/blobs/"))
            return
        body = self._body()
        if path == "/api/create":
            self._create(body)
        elif path == "/api/pull":
            self._pull(str(body.get("model") or body.get("name") or ""), body.get("stream", True))
        elif path in ("/api/chat", "/api/generate"):
            self._native(path, body)
        elif path == "/v1/chat/completions":
            self._openai(body)
        else:
            self._json(404, {"error": "not found"})

    def _pull(self, name: str, stream: Any) -> None:
        if not name:
            self._json(400, {"error": "model is required"})
            return
        manifest = _manifest(name)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        layer = hashlib.sha256(f"{STANDIN_NOTE}:{name}".encode()).hexdigest()
        manifest.write_text(
            json.dumps(
                {
                    "schemaVersion": 2,
                    "standin": STANDIN_NOTE,
                    "layers": [{"digest": f"sha256:{layer}"}],
                }
            )
        )
        steps = [
            {"status": "pulling manifest"},
            {
                "status": f"pulling {layer[:12]}",
                "digest": f"sha256:{layer}",
                "total": 1024,
                "completed": 1024,
            },
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        if stream is False:
            self._json(200, steps[-1])
            return
        self._stream("application/x-ndjson", [json.dumps(s).encode() + b"\n" for s in steps])

    def _upload_blob(self, name: str) -> None:
        # Read the whole body first: answering before it is read would break the connection.
        length = int(self.headers.get("Content-Length") or 0)
        target = _blob(name)
        h = hashlib.sha256()
        partial = None
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
        with partial.open("wb") if partial else contextlib.nullcontext() as out:
            left = length
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                h.update(chunk)
                if out is not None:
                    out.write(chunk)
        if target is None or partial is None:
            self._json(400, {"error": f"invalid digest format {name!r}"})
            return
        if f"sha256:{h.hexdigest()}" != name:
            partial.unlink()
            self._json(400, {"error": "digest mismatch"})
            return
        partial.replace(target)
        self._head(201, "text/plain", 0)

    def _create(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        files = body.get("files") or {}
        if not name or not isinstance(files, dict) or not files:
            self._json(400, {"error": "model and files are required"})
            return
        layers = []
        for filename, digest in files.items():
            blob = _blob(str(digest))
            if blob is None or not blob.is_file():
                self._json(400, {"error": f"blob {digest} for {filename} not found"})
                return
            layers.append(
                {
                    "mediaType": "application/vnd.ollama.image.model",
                    "digest": str(digest),
                    "size": blob.stat().st_size,
                    "from": filename,
                }
            )
        manifest = _manifest(name)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(
            json.dumps({"schemaVersion": 2, "standin": STANDIN_NOTE, "layers": layers})
        )
        steps = [{"status": "parsing GGUF"}, {"status": "writing manifest"}, {"status": "success"}]
        if body.get("stream", True) is False:
            self._json(200, steps[-1])
            return
        self._stream("application/x-ndjson", [json.dumps(s).encode() + b"\n" for s in steps])

    def _missing(self, model: str) -> bool:
        if _known(model):
            return False
        self._json(404, {"error": f"model '{model}' not found"})
        return True

    def _native(self, path: str, body: dict[str, Any]) -> None:
        model = str(body.get("model") or "")
        if self._missing(model):
            return
        key = "message" if path == "/api/chat" else "response"
        words = REPLY.split()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def piece(text: str) -> Any:
            return {"role": "assistant", "content": text} if key == "message" else text

        done = {"model": model, "created_at": stamp, key: piece(""), "done": True,
                "done_reason": "stop", "eval_count": len(words), "prompt_eval_count": 8}  # fmt: skip
        if body.get("stream", True) is False:
            self._json(200, {**done, key: piece(" ".join(words))})
            return
        lines = [
            {"model": model, "created_at": stamp, key: piece(w + " "), "done": False} for w in words
        ]
        self._stream(
            "application/x-ndjson", [json.dumps(x).encode() + b"\n" for x in [*lines, done]]
        )

    def _openai(self, body: dict[str, Any]) -> None:
        model = str(body.get("model") or "")
        if not _known(model):
            self._json(
                404, {"error": {"message": f"model '{model}' not found", "type": "api_error"}}
            )
            return
        words = REPLY.split()[: int(body.get("max_tokens") or 16)]
        usage = {
            "prompt_tokens": 8,
            "completion_tokens": len(words),
            "total_tokens": 8 + len(words),
        }
        base = {"id": "chatcmpl-standin", "created": int(time.time()), "model": model,
                "system_fingerprint": STANDIN_NOTE}  # fmt: skip
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(words)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self._json(
                200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
            return
        events = [{"index": 0, "delta": {"role": "assistant", "content": w + " "}} for w in words]
        chunks = [{**base, "object": "chat.completion.chunk", "choices": [e]} for e in events]
        chunks.append({**base, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})  # fmt: skip
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
        data = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
        self._stream("text/event-stream", data)


def serve() -> int:
    host, port = _address()
    if STANDIN_BROKEN:
        sys.stderr.write(f"{STANDIN_NOTE} {STANDIN_VERSION}: built broken on purpose, exiting\n")
        return 1
    _models_dir().mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    sys.stderr.write(f"{STANDIN_NOTE} {STANDIN_VERSION}: listening on {host}:{port}\n")
    sys.stderr.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def _client(method: str, path: str, payload: Any = None) -> urllib.request.Request:
    host, port = _address()
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    url = f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"
    data = json.dumps(payload).encode() if payload is not None else None
    return urllib.request.Request(url, data=data, method=method)


def pull(name: str) -> int:
    try:
        with urllib.request.urlopen(_client("POST", "/api/pull", {"model": name}), timeout=60) as r:
            last: dict[str, Any] = {}
            for line in r:
                if line.strip():
                    last = json.loads(line)
                    print(last.get("status") or last.get("error"))
    except (urllib.error.URLError, OSError) as exc:
        print(f"Error: could not connect to the server: {exc}", file=sys.stderr)
        return 1
    return 0 if last.get("status") == "success" else 1


def list_models() -> int:
    try:
        with urllib.request.urlopen(_client("GET", "/api/tags"), timeout=10) as r:
            models = json.load(r)["models"]
    except (urllib.error.URLError, OSError) as exc:
        print(f"Error: could not connect to the server: {exc}", file=sys.stderr)
        return 1
    print(f"{'NAME':<32}{'ID':<16}{'SIZE':<10}MODIFIED")
    for m in models:
        print(f"{m['name']:<32}{m['digest'][:12]:<16}{m['size']:<10}{m['modified_at']}")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(f"ollama ({STANDIN_NOTE}): serve | pull NAME | list | --version")
        return 0
    if argv[0] in ("-v", "--version"):
        print(f"ollama version is {STANDIN_VERSION}")
        print(STANDIN_NOTE)
        return 0
    if argv[0] == "serve":
        return serve()
    if argv[0] == "pull" and len(argv) == 2:
        return pull(argv[1])
    if argv[0] in ("list", "ls"):
        return list_models()
    print(f"ollama ({STANDIN_NOTE}): unsupported command {' '.join(argv)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
