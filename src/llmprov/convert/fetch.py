"""Models fetched onto the controller, for `llmprov models pull` and for conversions in a deploy.

https files are checked against their sha256 and resumed from a partial left before; Hugging Face
files come through huggingface_hub (convert/hf_download.py). Both land under the controller cache
whole, keyed by what identifies them, and are reused by later runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from llmprov.cache import sha256_file
from llmprov.convert.hf_download import PullError, download, write_marker
from llmprov.convert.progress import Report, Step, bar_class, silent
from llmprov.convert.spec import ConvertError
from llmprov.core.model_pull import (
    HfPull,
    PullPlanError,
    hf_pull_for,
    marker_identity,
    pull_identity,
)
from llmprov.core.model_ref import FileRef, HttpsRef, HuggingFaceRef, ModelRef

CHUNK = 1 << 20


class FetchError(ConvertError):
    """A model could not be fetched onto the controller; the message says why."""


def downloads_dir(root: Path) -> Path:
    return root / "models" / "downloads"


def fetch_https(
    ref: HttpsRef,
    folder: Path,
    client: httpx.Client | None = None,
    report: Report = silent,
    target: Path | None = None,
) -> Path:
    """`ref`'s file in `folder` (named by digest and file name) or at `target`, sha256 checked."""
    target = target or folder / f"{ref.sha256[:16]}-{ref.filename}"
    if target.is_file() and sha256_file(target) == ref.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.partial")
    own = client is None
    http = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=300.0))
    task = f"download {ref.filename}"
    try:
        start = partial.stat().st_size if partial.is_file() else 0
        headers = {"Range": f"bytes={start}-"} if start else {}
        with http.stream("GET", ref.url, headers=headers) as response:
            if response.status_code == 416 or (start and response.status_code == 200):
                start = 0  # the server cannot resume: start over
            elif response.status_code >= 400:
                raise FetchError(f"{ref.url}: HTTP {response.status_code}")
            length = response.headers.get("Content-Length")
            total = start + int(length) if length and response.status_code != 416 else None
            done = start
            if response.status_code != 416:
                with partial.open("ab" if start else "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        report(Step(task, done, total, "B"))
    except httpx.HTTPError as exc:
        raise FetchError(
            f"{ref.url}: {exc} (kept {partial.name}; the next pull resumes it)"
        ) from exc
    finally:
        if own:
            http.close()
    got = sha256_file(partial)
    if got != ref.sha256:
        partial.unlink()
        raise FetchError(f"{ref.url}: sha256 {got} does not match the expected {ref.sha256}")
    os.replace(partial, target)
    report(Step(task, done, done, "B", finished=True))
    return target


def hf_pull_dir(root: Path, pull: HfPull) -> Path:
    """Where a Hugging Face pull lands in the controller cache."""
    repo = pull.repo.replace("/", "--")
    name = pull.filename.replace("/", "--") if pull.filename else "folder"
    return (
        root / "models" / "pulls" / repo / f"{pull.revision or 'main'}-{pull_identity(pull)}" / name
    )


def fetch_hf(
    pull: HfPull,
    root: Path,
    token: str | None = None,
    endpoint: str | None = None,
    report: Report = silent,
    dest: Path | None = None,
) -> Path:
    """A Hugging Face pull in the controller cache (or at `dest`), reused once complete.

    A reference without a revision is pinned to the commit first pulled, as on hosts.
    """
    target = dest or hf_pull_dir(root, pull)
    marker = target.with_name(f"{target.name}.llmprov-source.json")
    identity = pull_identity(pull)
    if target.exists() and marker.is_file() and marker_identity(marker.read_text()) == identity:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        pulled = download(
            pull.repo, target, revision=pull.revision, filename=pull.filename,
            allow=pull.allow, ignore=pull.ignore, token=token, endpoint=endpoint,
            tqdm_class=bar_class(report, prefix=f"{pull.repo}: "),
        )  # fmt: skip
    except PullError as exc:
        raise FetchError(f"hf://{pull.repo}: {exc}") from exc
    except Exception as exc:  # huggingface_hub's errors are many; each says what happened
        raise FetchError(f"hf://{pull.repo}: {type(exc).__name__}: {exc}") from exc
    write_marker(marker, identity, pull.repo, pull.revision, pulled)
    return target


def local_path(ref: FileRef, base_dir: str | None) -> Path:
    path = Path(ref.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def fetch_model(
    ref: ModelRef,
    root: Path,
    *,
    base_dir: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    client: httpx.Client | None = None,
    report: Report = silent,
) -> Path:
    """The model `ref` names, as a path on the controller: a GGUF file or a HF folder."""
    if isinstance(ref, FileRef):
        path = local_path(ref, base_dir)
        if not path.exists():
            raise FetchError(f"{ref.raw}: {path} does not exist")
        return path
    if isinstance(ref, HttpsRef):
        if ref.fmt != "gguf":
            raise FetchError(f"{ref.raw}: an https:// model must be one .gguf file")
        return fetch_https(ref, downloads_dir(root), client, report)
    if isinstance(ref, HuggingFaceRef):
        try:
            pull = hf_pull_for(ref, ref.fmt)
        except PullPlanError as exc:
            raise FetchError(str(exc)) from exc
        return fetch_hf(pull, root, token, endpoint, report)
    raise FetchError(f"{ref.raw}: {type(ref).scheme}:// models are pulled by Ollama on the host")
