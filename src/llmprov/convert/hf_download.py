"""Hugging Face downloads that land whole: into `<dest>.partial`, checked, then renamed into place.

Used on the controller (`llmprov models pull`, conversions during a deploy) and uploaded to hosts,
where the tools venv's python runs it as a script: so it imports the standard library and
huggingface_hub only, never llmprov.

The revision is resolved to a commit first and everything is fetched at that commit, so a branch
that moves during the pull cannot mix two versions. huggingface_hub keeps its resume state inside
the partial folder (`.cache/huggingface`), which is kept when a pull fails: the next run resumes.
Before the rename every expected file is checked to be there with the size the hub lists.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What a pull records in its partial folder: a partial left by a different pull is started over.
PARTIAL_NOTE = ".llmprov-partial"
# The keys read from an engine's environment file (a systemd EnvironmentFile).
ENV_KEYS = ("HF_TOKEN", "HF_ENDPOINT")


class PullError(Exception):
    """A pull that cannot complete; the message says what was missing or refused."""


@dataclass(frozen=True)
class Pulled:
    path: Path
    commit: str
    files: tuple[str, ...]
    bytes: int
    seconds: float


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, values plain or double-quoted with backslash escapes (as llmprov writes)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            chars = iter(value[1:-1])
            value = "".join(next(chars, "") if c == "\\" else c for c in chars)
        out[key.strip()] = value
    return out


def _expected(info: Any, allow: Sequence[str], ignore: Sequence[str]) -> dict[str, int | None]:
    """The files of the repo that the patterns select, with the sizes the hub lists."""
    from huggingface_hub.utils._paths import filter_repo_objects

    sizes = {s.rfilename: s.size for s in (info.siblings or [])}
    chosen = filter_repo_objects(
        items=list(sizes), allow_patterns=list(allow) or None, ignore_patterns=list(ignore) or None
    )
    return {name: sizes[name] for name in chosen}


def _check(folder: Path, expected: dict[str, int | None]) -> int:
    total = 0
    for name, size in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            raise PullError(f"{name} is missing after the download")
        got = path.stat().st_size
        if size is not None and got != size:
            raise PullError(f"{name} is {got} bytes, the hub lists {size}")
        total += got
    return total


def _own(path: Path, owner: str | None) -> None:
    """Give the model to the service user: files 0640, folders 0750."""
    if owner is None:
        return
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        shutil.chown(p, owner, owner)
        p.chmod(0o750 if p.is_dir() else 0o640)


def _start_partial(partial: Path, identity: str) -> None:
    note = partial / PARTIAL_NOTE
    if partial.exists() and not (note.is_file() and note.read_text().strip() == identity):
        shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
    partial.mkdir(parents=True, exist_ok=True)
    note.write_text(identity + "\n")


def _swap(partial: Path, dest: Path) -> None:
    old = dest.with_name(f"{dest.name}.old")
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    if dest.exists() or dest.is_symlink():
        dest.rename(old)
    partial.rename(dest)
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def download(
    repo: str,
    dest: Path,
    *,
    revision: str | None = None,
    filename: str | None = None,
    allow: Sequence[str] = (),
    ignore: Sequence[str] = (),
    token: str | None = None,
    endpoint: str | None = None,
    owner: str | None = None,
    tqdm_class: Any = None,
) -> Pulled:
    """Fetch one file (`filename`) or the matching files of `repo` into `dest`, whole."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    started = time.monotonic()
    api = HfApi(endpoint=endpoint, token=token)
    info = api.model_info(repo, revision=revision, files_metadata=True)
    commit = info.sha
    if not commit:
        raise PullError(f"the hub named no commit for {repo}@{revision or 'main'}")
    partial = dest.with_name(f"{dest.name}.partial")
    identity = json.dumps([repo, commit, filename, list(allow), list(ignore)])
    _start_partial(partial, identity)
    common: dict[str, Any] = {"revision": commit, "token": token, "endpoint": endpoint}
    if filename is not None:
        expected = _expected(info, [filename], [])
        if filename not in expected:
            raise PullError(f"{repo}@{commit[:12]} has no file {filename}")
        got = Path(
            hf_hub_download(repo, filename, local_dir=partial, tqdm_class=tqdm_class, **common)
        )
        size = _check(partial, expected)
        _own(got, owner)
        os.replace(got, dest)
        shutil.rmtree(partial)
        files: tuple[str, ...] = (filename,)
    else:
        expected = _expected(info, allow, ignore)
        if not expected:
            raise PullError(f"no file of {repo}@{commit[:12]} matches {', '.join(allow)}")
        snapshot_download(
            repo, local_dir=partial, allow_patterns=list(allow) or None,
            ignore_patterns=list(ignore) or None, tqdm_class=tqdm_class, max_workers=4, **common,
        )  # fmt: skip
        size = _check(partial, expected)
        shutil.rmtree(partial / ".cache", ignore_errors=True)
        (partial / PARTIAL_NOTE).unlink()
        _own(partial, owner)
        _swap(partial, dest)
        files = tuple(sorted(expected))
    return Pulled(dest, commit, files, size, time.monotonic() - started)


def write_marker(
    marker: Path, identity: str, repo: str, revision: str | None, pulled: Pulled
) -> None:
    record = {
        "identity": identity,
        "repo": repo,
        "revision": revision,
        "commit": pulled.commit,
        "files": list(pulled.files),
        "bytes": pulled.bytes,
        "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = marker.with_name(f"{marker.name}.partial")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, marker)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pull a model from the Hugging Face hub, whole.")
    p.add_argument("--repo", required=True)
    p.add_argument("--revision")
    p.add_argument("--file", dest="filename")
    p.add_argument("--allow", action="append", default=[])
    p.add_argument("--ignore", action="append", default=[])
    p.add_argument("--dest", required=True, type=Path)
    p.add_argument("--owner")
    p.add_argument("--env-file", type=Path)
    p.add_argument("--marker", type=Path)
    p.add_argument("--identity", default="")
    args = p.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k in ENV_KEYS}
    if args.env_file is not None and args.env_file.is_file():
        env.update({k: v for k, v in read_env_file(args.env_file).items() if k in ENV_KEYS})
    try:
        pulled = download(
            args.repo, args.dest, revision=args.revision, filename=args.filename,
            allow=args.allow, ignore=args.ignore, token=env.get("HF_TOKEN") or None,
            endpoint=env.get("HF_ENDPOINT") or None, owner=args.owner,
        )  # fmt: skip
    except Exception as exc:  # the host's log is all the user sees: one line that says why
        hint = ""
        if type(exc).__name__ in ("GatedRepoError", "RepositoryNotFoundError"):
            hint = " (a gated or private repository needs hf_token_file in the inventory)"
        print(f"pull of {args.repo} failed: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        return 1
    if args.marker is not None:
        write_marker(args.marker, args.identity, args.repo, args.revision, pulled)
    print(
        f"pulled {args.repo}@{pulled.commit[:12]}: {len(pulled.files)} file(s), "
        f"{pulled.bytes / 1e6:.0f} MB in {pulled.seconds:.0f} s into {pulled.path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
