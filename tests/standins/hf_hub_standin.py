"""A stand-in for the Hugging Face hub's HTTP API, for tests only: it is NOT the hub.

Serves repositories from local folders, enough for huggingface_hub's `model_info`,
`list_repo_tree`, `hf_hub_download` and `snapshot_download` pointed at it through `endpoint`
(HF_ENDPOINT): repository info at a revision, the file tree, and files under
/{repo}/resolve/{revision}/{path} with ETag, X-Repo-Commit, Content-Length and byte ranges.

It can require a token (401 without `Authorization: Bearer <token>`), and cut a file off after a
number of bytes the first time it is sent, so that resuming can be tested. Every request is
recorded (method, path, Range, Authorization) for tests to assert on.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

STANDIN_NOTE = "llmprov test stand-in, not the Hugging Face hub"


@dataclass
class Repo:
    folder: Path
    commit: str
    branches: dict[str, str] = field(default_factory=lambda: {"main": ""})

    def files(self) -> list[str]:
        return sorted(
            str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file()
        )


@dataclass
class Hub:
    repos: dict[str, Repo] = field(default_factory=dict)
    token: str | None = None
    # file path -> bytes to send before cutting the connection, the first time it is sent only
    cut_once: dict[str, int] = field(default_factory=dict)
    # Off: byte ranges are ignored and every file is sent whole (200), as some servers do.
    ranges: bool = True
    requests: list[dict[str, str]] = field(default_factory=list)

    def add(self, repo_id: str, folder: Path) -> Repo:
        digest = hashlib.sha1(repo_id.encode()).hexdigest()
        repo = Repo(folder, digest, {"main": digest})
        self.repos[repo_id] = repo
        return repo


def _etag(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self) -> None:
            hub.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "range": self.headers.get("Range", ""),
                    "auth": self.headers.get("Authorization", ""),
                }
            )

        def _json(self, status: int, payload: Any, head_only: bool = False) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Llmprov-Standin", STANDIN_NOTE)
            if status == 401:
                self.send_header("X-Error-Code", "RepoNotFound")
                self.send_header("X-Error-Message", "Invalid credentials in Authorization header")
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _authorized(self) -> bool:
            if hub.token is None:
                return True
            return self.headers.get("Authorization") == f"Bearer {hub.token}"

        def _repo_rev(self, repo_id: str, rev: str) -> tuple[Repo, str] | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return None
            rev = unquote(rev)
            commit = repo.branches.get(rev) or (rev if rev == repo.commit else None)
            return (repo, commit) if commit else None

        def do_HEAD(self) -> None:
            self._serve(head_only=True)

        def do_GET(self) -> None:
            self._serve(head_only=False)

        def _serve(self, head_only: bool) -> None:
            self._record()
            if not self._authorized():
                self._json(401, {"error": "Invalid credentials in Authorization header"}, head_only)
                return
            parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo_id = "/".join(parts[2:4])
                rest = parts[4:]
                if not rest:
                    rest = ["revision", "main"]
                if rest[0] == "revision" and len(rest) >= 2:
                    self._info(repo_id, "/".join(rest[1:]), head_only)
                    return
                if rest[0] == "tree" and len(rest) >= 2:
                    self._tree(repo_id, rest[1], "/".join(rest[2:]), head_only)
                    return
            if len(parts) >= 5 and parts[2] == "resolve":
                self._file(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head_only)
                return
            self._json(404, {"error": "not found"}, head_only)

        def _info(self, repo_id: str, rev: str, head_only: bool) -> None:
            found = self._repo_rev(repo_id, rev)
            if found is None:
                self._json(404, {"error": f"{repo_id}@{rev} not found"}, head_only)
                return
            repo, commit = found
            siblings = []
            for name in repo.files():
                path = repo.folder / name
                siblings.append(
                    {"rfilename": name, "size": path.stat().st_size, "blobId": _etag(path)[:40]}
                )
            payload = {"_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": commit,
                       "private": False, "gated": False, "disabled": False, "tags": [],
                       "siblings": siblings, "note": STANDIN_NOTE}  # fmt: skip
            self._json(200, payload, head_only)

        def _tree(self, repo_id: str, rev: str, sub: str, head_only: bool) -> None:
            found = self._repo_rev(repo_id, rev)
            if found is None:
                self._json(404, {"error": f"{repo_id}@{rev} not found"}, head_only)
                return
            repo, _ = found
            entries = []
            dirs: set[str] = set()
            for name in repo.files():
                if sub and not name.startswith(sub.rstrip("/") + "/"):
                    continue
                path = repo.folder / name
                parent = name.rpartition("/")[0]
                while parent:
                    dirs.add(parent)
                    parent = parent.rpartition("/")[0]
                entries.append(
                    {
                        "type": "file",
                        "path": name,
                        "size": path.stat().st_size,
                        "oid": _etag(path)[:40],
                    }
                )
            entries += [{"type": "directory", "path": d, "oid": "0" * 40, "size": 0} for d in dirs]
            self._json(200, entries, head_only)

        def _file(self, repo_id: str, rev: str, name: str, head_only: bool) -> None:
            found = self._repo_rev(repo_id, rev)
            path = found[0].folder / name if found else None
            if found is None or path is None or not path.is_file():
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            start = 0
            ranged = self.headers.get("Range", "")
            if hub.ranges and ranged.startswith("bytes="):
                start = int(ranged.removeprefix("bytes=").split("-", 1)[0] or 0)
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            if hub.ranges:
                self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("ETag", f'"{_etag(path)}"')
            self.send_header("X-Repo-Commit", found[1])
            self.send_header("X-Llmprov-Standin", STANDIN_NOTE)
            self.end_headers()
            if head_only:
                return
            cut = hub.cut_once.pop(name, None) if not start else None
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class HubServer:
    """The stand-in on 127.0.0.1 (or `host`), in a thread; `url` is the endpoint to point at."""

    def __init__(self, hub: Hub, host: str = "127.0.0.1") -> None:
        self.hub = hub
        self.server = ThreadingHTTPServer((host, 0), make_handler(hub))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
