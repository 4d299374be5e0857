"""How a model lands on a host whole: partial paths, pull markers, and the commands that move it in.

Every way a model reaches the engine's path (upload, https download, Hugging Face pull, Ollama
import) first writes beside it under `<dest>.partial` and renames when complete, so a failed or
interrupted transfer never leaves a half-written model where the engine would load it. A partial
is kept between runs, so the next run resumes it. Commands are built as argv lists and joined with
shlex at the edge; nothing here runs them.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from llmprov.core.layout import CACHE_ROOT, EngineLayout, safe_name
from llmprov.core.model_ref import HuggingFaceRef
from llmprov.core.vllm_env import TOOLS_DIR, UV, uv_env_vars

# huggingface_hub in the host's tools venv (/opt/llmprov/tools), beside uv.
HF_HUB_VERSION = "2.4.0"
HF_HUB_MARKER = f"{TOOLS_DIR}/.huggingface_hub-{HF_HUB_VERSION}"
# convert/hf_download.py, uploaded as a standalone script (stdlib and huggingface_hub only).
HF_PULL_SCRIPT = f"{TOOLS_DIR}/llmprov-hf-download.py"
# huggingface_hub's own state (its file-tree cache) on the host, out of root's home.
HF_HOME = f"{CACHE_ROOT}/huggingface"
# Bump when a pull's result changes for the same inputs, so that hosts pull again.
PULL_RECIPE = 1

# What vLLM loads from a Hugging Face repository: config, tokenizer, safetensors weights, at the
# top level. Subfolders (onnx/, original/, gguf/) and Mistral's consolidated copy of the weights
# are left out: they would double the download for nothing the engine reads.
HF_FOLDER_ALLOW: tuple[str, ...] = (
    "*.json", "*.safetensors", "tokenizer.model", "*.tiktoken", "*.jinja", "merges.txt",
    "vocab.txt",
)  # fmt: skip
HF_FOLDER_IGNORE: tuple[str, ...] = ("*/*", "consolidated*.safetensors")

# Where a GGUF waits on an Ollama host until it is imported through the API, then removed.
OLLAMA_IMPORT_DIR = f"{EngineLayout('ollama').cache_dir}/import"

MODEL_MODE = "640"
MODEL_DIR_MODE = "750"


class PullPlanError(ValueError):
    """A model reference that cannot be pulled the way it is written; the message says why."""


def partial_path(dest: str) -> str:
    """Where a transfer to `dest` writes until it is complete (a file or a folder, like `dest`)."""
    return f"{dest}.partial"


def marker_path(dest: str) -> str:
    """Beside the model: what it was pulled from, written once it is in place."""
    return f"{dest}.llmprov-source.json"


# ---------------------------------------------------------------- Hugging Face pulls


@dataclass(frozen=True)
class HfPull:
    """One Hugging Face pull: a single GGUF file, or the files of a folder that match `allow`."""

    repo: str
    revision: str | None
    filename: str | None
    allow: tuple[str, ...]
    ignore: tuple[str, ...]

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    @property
    def label(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        what = self.filename or f"{len(self.allow)} file patterns"
        return f"hf://{self.repo}{rev} ({what})"


def hf_pull_for(ref: HuggingFaceRef, want: str) -> HfPull:
    """What to fetch of `ref` for an engine that serves `want` (gguf or hf)."""
    if ref.filename is not None and ref.fmt != "gguf":
        raise PullPlanError(
            f"{ref.raw}: a file in an hf:// reference must be a .gguf file; "
            "name the repository alone for a Hugging Face folder"
        )
    if ref.fmt != want:
        raise PullPlanError(f"{ref.raw} is {ref.fmt}, not {want}")
    if ref.filename is not None:
        return HfPull(ref.repo, ref.revision, ref.filename, (), ())
    return HfPull(ref.repo, ref.revision, None, HF_FOLDER_ALLOW, HF_FOLDER_IGNORE)


def pull_identity(pull: HfPull) -> str:
    """A digest of everything that decides what a pull fetches: equal means already pulled."""
    payload = {
        "repo": pull.repo,
        "revision": pull.revision,
        "file": pull.filename,
        "allow": list(pull.allow),
        "ignore": list(pull.ignore),
        "recipe": PULL_RECIPE,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def marker_identity(text: str | None) -> str | None:
    """The identity a pull marker records, or None when the marker is absent or unreadable."""
    if not text:
        return None
    try:
        data: Any = json.loads(text)
        return str(data["identity"]) if isinstance(data, dict) and "identity" in data else None
    except ValueError:
        return None


def install_hf_hub_argv(pip_sources: Sequence[str]) -> list[list[str]]:
    """huggingface_hub into the tools venv with its uv, then the marker a re-run keys on."""
    install = ["env", *uv_env_vars(), UV, "pip", "install", "--python", f"{TOOLS_DIR}/bin/python",
               "--quiet", *pip_sources, f"huggingface_hub=={HF_HUB_VERSION}"]  # fmt: skip
    return [install, ["touch", HF_HUB_MARKER]]


def hf_pull_argv(pull: HfPull, dest: str, owner: str, env_file: str) -> list[str]:
    """Run the pull script on the host: into `<dest>.partial`, owned by `owner`, then renamed.

    The token (HF_TOKEN) and a mirror endpoint (HF_ENDPOINT) are read by the script from the
    engine's environment file, so that no secret is on a command line or in pyinfra's output.
    """
    argv = [f"{TOOLS_DIR}/bin/python", HF_PULL_SCRIPT, "--repo", pull.repo, "--dest", dest,
            "--owner", owner, "--env-file", env_file, "--marker", marker_path(dest),
            "--identity", pull_identity(pull)]  # fmt: skip
    if pull.revision:
        argv += ["--revision", pull.revision]
    if pull.filename:
        argv += ["--file", pull.filename]
    for pattern in pull.allow:
        argv += ["--allow", pattern]
    for pattern in pull.ignore:
        argv += ["--ignore", pattern]
    quiet = ["HF_HUB_DISABLE_TELEMETRY=1", "HF_HUB_DISABLE_PROGRESS_BARS=1"]
    return ["env", f"HF_HOME={HF_HOME}", *quiet, *argv]


# ---------------------------------------------------------------- https downloads and moves


def https_download_script(url: str, sha256: str, dest: str, owner: str) -> str:
    """Download into `<dest>.partial` (resuming one left before), check the sha256, then rename.

    A partial the server cannot resume from (HTTP 416, or no range support) is started over once;
    one that fails its checksum is removed, so the next run starts clean.
    """
    q = shlex.quote
    partial = partial_path(dest)
    curl = ["curl", "-fL", "--silent", "--show-error", "--retry", "3", "--connect-timeout", "30",
            "-o", partial, url]  # fmt: skip
    resume = [*curl[:-3], "-C", "-", *curl[-3:]]
    msg = q(f"{url}: sha256 does not match the expected {sha256}; got ")
    lines = [
        "set -u",
        'sum() { sha256sum "$1" 2>/dev/null | cut -d" " -f1; }',
        f'if [ "$(sum {q(partial)})" != {q(sha256)} ]; then',
        f"  {shlex.join(resume)}",
        "  rc=$?",
        f'  if [ "$rc" = 22 ] || [ "$rc" = 33 ]; then rm -f {q(partial)}; {shlex.join(curl)}; rc=$?; fi',
        '  [ "$rc" = 0 ] || exit "$rc"',
        "fi",
        "set -e",
        f"got=$(sum {q(partial)})",
        f'if [ "$got" != {q(sha256)} ]; then rm -f {q(partial)}; echo {msg}"$got" >&2; exit 1; fi',
        shlex.join(["chown", f"{owner}:{owner}", partial]),
        shlex.join(["chmod", MODEL_MODE, partial]),
        shlex.join(["mv", "-f", partial, dest]),
    ]
    return "bash -c " + q("\n".join(lines))


def move_file_command(partial: str, dest: str) -> str:
    """A file written whole beside `dest` takes its place in one rename."""
    return shlex.join(["mv", "-f", partial, dest])


def swap_folder_command(partial: str, dest: str) -> str:
    """A folder written whole beside `dest` takes its place; the old one is removed after."""
    old = f"{dest}.old"
    q = shlex.quote
    return (
        f"rm -rf {q(old)} && if [ -e {q(dest)} ]; then mv {q(dest)} {q(old)}; fi && "
        f"mv {q(partial)} {q(dest)} && rm -rf {q(old)}"
    )


def folder_manifest_command(path: str) -> str:
    """sha256 of every file under `path`, relative names, sorted; nothing when it is absent."""
    q = shlex.quote(path)
    return (
        f"if [ -d {q} ]; then cd {q} && find . -type f -print0 | LC_ALL=C sort -z | "
        "xargs -0 -r sha256sum; fi; true"
    )


def parse_manifest(lines: Iterable[str]) -> dict[str, str]:
    """`sha256sum` lines (`<hex>  ./<name>`) as {name: hex}."""
    out: dict[str, str] = {}
    for line in lines:
        digest, sep, name = line.strip().partition("  ")
        if sep and len(digest) == 64:
            out[name.removeprefix("./")] = digest
    return out


# ---------------------------------------------------------------- Ollama import


def ollama_staging(served_name: str) -> str:
    return f"{OLLAMA_IMPORT_DIR}/{safe_name(served_name)}.gguf"


def ollama_marker(served_name: str) -> str:
    return f"{OLLAMA_IMPORT_DIR}/{safe_name(served_name)}.source"


def ollama_create_body(name: str, filename: str, digest: str) -> dict[str, Any]:
    """The body of POST /api/create that makes `name` from one uploaded GGUF blob."""
    return {"model": name, "files": {filename: f"sha256:{digest}"}, "stream": False}


def api_base(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


def ollama_import_script(
    staged: str,
    name: str,
    address: str,
    port: int,
    marker: str,
    identity: str,
    pull_marker: str | None = None,
) -> str:
    """Import a GGUF on the host through Ollama's API: blob upload, then create; then clean up.

    The same two calls as convert/ollama_import.py makes with httpx on the controller: `HEAD`
    then (if absent) `POST /api/blobs/sha256:<digest>` with the file, then `POST /api/create`
    with `files`. curl streams the file (`-T`), so a large model is never held in memory.
    """
    q = shlex.quote
    base = api_base(address, port)
    placeholder = "@DIGEST@"
    body = json.dumps(ollama_create_body(name, "model.gguf", placeholder), separators=(",", ":"))
    blob = f"{base}/api/blobs/sha256:"
    lines = [
        "set -eu",
        f"d=$(sha256sum {q(staged)} | cut -d' ' -f1)",
        f'if ! curl -fsS -o /dev/null -I {q(blob)}"$d"; then',
        f"  curl -sS --fail-with-body -X POST -T {q(staged)} "
        f"-H 'Content-Type: application/octet-stream' {q(blob)}\"$d\"",
        "fi",
        f'body=$(printf %s {q(body)} | sed "s/{placeholder}/$d/")',
        f"out=$(curl -sS --fail-with-body -H 'Content-Type: application/json' "
        f'--data-binary "$body" {q(base + "/api/create")})',
        'case "$out" in *\'"success"\'*) ;; *) echo "Ollama did not create the model: $out" >&2; exit 1;; esac',
        f"printf '%s\\n' {q(identity)} > {q(marker)}",
        shlex.join(["rm", "-f", staged, *([pull_marker] if pull_marker else [])]),
    ]
    return "bash -c " + q("\n".join(lines))


def ollama_identity(ref_raw: str, content: str | None) -> str:
    """What an imported model was made from: the reference, and its content digest where known."""
    return f"{ref_raw} {content}" if content else ref_raw


def read_marker(lines: Sequence[str] | None) -> str | None:
    """A marker file's text from a FileContents fact (lines, or None when absent)."""
    return "\n".join(lines) if lines else None
