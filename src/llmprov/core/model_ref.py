"""Model references: one class per source, picked by the reference's scheme."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import ClassVar
from urllib.parse import urlsplit


class ModelRefError(ValueError):
    """A model reference that cannot be parsed; the message says what is wrong."""


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_OLLAMA_NAME = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?$")
_HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_REVISION = re.compile(r"^[A-Za-z0-9._/-]+$")


@dataclass(frozen=True)
class ModelRef:
    """Base of every model reference. `fmt` is what the reference points at: gguf, hf or ollama."""

    scheme: ClassVar[str] = ""
    raw: str

    @property
    def fmt(self) -> str:
        raise NotImplementedError

    @property
    def default_name(self) -> str:
        """A served-model name a user would expect, derived from the reference."""
        raise NotImplementedError


@dataclass(frozen=True)
class OllamaRef(ModelRef):
    scheme: ClassVar[str] = "ollama"
    name: str
    tag: str

    @property
    def fmt(self) -> str:
        return "ollama"

    @property
    def default_name(self) -> str:
        return f"{self.name}:{self.tag}"


@dataclass(frozen=True)
class HuggingFaceRef(ModelRef):
    scheme: ClassVar[str] = "hf"
    repo: str
    revision: str | None
    filename: str | None

    @property
    def fmt(self) -> str:
        return "gguf" if self.filename and self.filename.endswith(".gguf") else "hf"

    @property
    def default_name(self) -> str:
        base = self.repo.split("/")[-1]
        if self.filename:
            base = PurePosixPath(self.filename).stem
        return base.lower()


@dataclass(frozen=True)
class HttpsRef(ModelRef):
    scheme: ClassVar[str] = "https"
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name

    @property
    def fmt(self) -> str:
        return "gguf" if self.filename.endswith(".gguf") else "hf"

    @property
    def default_name(self) -> str:
        return PurePosixPath(self.filename).stem.lower()


@dataclass(frozen=True)
class FileRef(ModelRef):
    """A file or folder on the controller, uploaded to the host."""

    scheme: ClassVar[str] = "file"
    path: str

    @property
    def fmt(self) -> str:
        return "gguf" if self.path.endswith(".gguf") else "hf"

    @property
    def default_name(self) -> str:
        # Only a file has a suffix to drop; a folder's dots are part of its name ("Qwen2.5-0.5B").
        path = PurePosixPath(self.path.rstrip("/"))
        return (path.stem if self.fmt == "gguf" else path.name).lower()


def _parse_ollama(raw: str, rest: str) -> OllamaRef:
    if not _OLLAMA_NAME.match(rest):
        raise ModelRefError(f"not an Ollama model name (expected ollama://name[:tag]): {raw!r}")
    name, _, tag = rest.partition(":")
    return OllamaRef(raw=raw, name=name, tag=tag or "latest")


def _parse_hf(raw: str, rest: str) -> HuggingFaceRef:
    parts = rest.split("/")
    if len(parts) < 2:
        raise ModelRefError(f"expected hf://org/repo[@revision][/file], got {raw!r}")
    org, repo_rev, *file_parts = parts
    repo_name, _, revision = repo_rev.partition("@")
    repo = f"{org}/{repo_name}"
    if not _HF_REPO.match(repo):
        raise ModelRefError(f"not a Hugging Face repository id: {repo!r} in {raw!r}")
    if "@" in repo_rev and not (revision and _REVISION.match(revision)):
        raise ModelRefError(f"empty or malformed revision after '@' in {raw!r}")
    filename = "/".join(file_parts) or None
    if filename is not None and (".." in file_parts or "" in file_parts):
        raise ModelRefError(f"malformed file path in {raw!r}")
    return HuggingFaceRef(raw=raw, repo=repo, revision=revision or None, filename=filename)


def _parse_https(raw: str, rest: str, sha256: str | None) -> HttpsRef:
    url, _, fragment = raw.partition("#")
    if fragment.startswith("sha256="):
        on_url = fragment.removeprefix("sha256=")
        # Two digests that disagree mean one of them is stale; neither may silently win.
        if sha256 is not None and sha256.lower() != on_url.lower():
            raise ModelRefError(
                f"model_sha256 {sha256!r} and the '#sha256=' on the URL disagree: {raw!r}"
            )
        sha256 = on_url
    split = urlsplit(url)
    if not split.netloc or not split.path.strip("/"):
        raise ModelRefError(f"an https model reference needs a host and a file path: {raw!r}")
    if sha256 is None:
        raise ModelRefError(
            f"an https model needs its expected sha256 (model_sha256, or '#sha256=' on the URL): {raw!r}"
        )
    if not _SHA256.match(sha256.lower()):
        raise ModelRefError(f"sha256 must be 64 hex digits, got {sha256!r}")
    return HttpsRef(raw=raw, url=url, sha256=sha256.lower())


def _parse_file(raw: str, rest: str) -> FileRef:
    if not rest:
        raise ModelRefError(f"empty path in {raw!r}")
    return FileRef(raw=raw, path=rest)


SCHEMES: tuple[str, ...] = ("ollama", "hf", "https", "file")


def parse_model_ref(raw: str, sha256: str | None = None) -> ModelRef:
    """Parse `raw` into the reference class its scheme names.

    An unknown or missing scheme gets an error that lists the valid ones.
    """
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise ModelRefError(
            f"model reference {raw!r} has no scheme; use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    if scheme == "ollama":
        return _parse_ollama(raw, rest)
    if scheme == "hf":
        return _parse_hf(raw, rest)
    if scheme == "https":
        return _parse_https(raw, rest, sha256)
    if scheme == "file":
        return _parse_file(raw, rest)
    raise ModelRefError(
        f"unknown scheme {scheme + '://'!r} in {raw!r}; use one of "
        + ", ".join(f"{s}://" for s in SCHEMES)
    )
