"""Putting the served model on the host, whole, in the format its engine serves, owned by its user.

Where the reference's format is the engine's, the model goes to the host as it is: a file or
folder uploaded from the controller, an https file downloaded on the host (sha256 checked), a
Hugging Face file or folder pulled on the host (deploy/hf_pull.py). Where it is not, the model is
converted on the controller first (convert/) and the result uploaded: a GGUF for vLLM becomes a
Hugging Face folder, a Hugging Face folder for llama.cpp becomes a GGUF. For Ollama a GGUF is
imported through Ollama's API on the host (blob upload, then create).

Every transfer writes beside the model (`<dest>.partial`) and renames it into place when complete,
and only when the content differs from what is there: a re-run with the same model changes nothing,
and a failed transfer leaves the model the engine loads as it was. Once placed, the model's sha256
is recorded beside it (core/model_record.py), so a re-run compares stat and record, not content:
its cost does not grow with the model. `verify_models` (`deploy --verify-models`) hashes again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pyinfra.context import host
from pyinfra.facts.files import FileContents, Sha256File
from pyinfra.facts.server import Which
from pyinfra.operations import apt, files, server

from llmprov.cache import CacheError, cache_root
from llmprov.convert.fetch import fetch_model, local_path
from llmprov.convert.spec import DEPLOY_GGUF_TYPE, ConvertError
from llmprov.core.config import HostConfig
from llmprov.core.layout import ENGINE_FORMAT, model_path
from llmprov.core.model_pull import (
    MODEL_DIR_MODE,
    MODEL_MODE,
    OLLAMA_IMPORT_DIR,
    PullPlanError,
    hf_pull_for,
    https_download_script,
    marker_path,
    move_file_command,
    ollama_identity,
    ollama_import_script,
    ollama_marker,
    ollama_staging,
    partial_path,
    pull_identity,
    read_marker,
    swap_folder_command,
)
from llmprov.core.model_record import (
    FILE_KEY,
    ModelStat,
    parse_stat,
    recorded_digests,
    remove_record_command,
    stat_command,
    write_record_command,
)
from llmprov.core.model_ref import FileRef, HttpsRef, HuggingFaceRef, ModelRef, OllamaRef
from llmprov.core.ollama_release import model_present
from llmprov.core.snapshot import Snapshot
from llmprov.deploy import controller_digest
from llmprov.deploy.common import NO_SNAPSHOT
from llmprov.deploy.hf_pull import pull_ops
from llmprov.facts.models import FolderManifest, ModelFiles
from llmprov.facts.ollama import OllamaModels


class ModelPlacementError(Exception):
    """The model cannot be placed on this host as referenced; the message says what to change."""


def verifying(cfg: HostConfig) -> HostConfig:
    """`cfg` with `verify_models` set: its model is hashed again on the controller and the host."""
    settings = cfg.settings.model_copy(update={"verify_models": True})
    return cfg.model_copy(update={"settings": settings})


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def local_manifest(folder: Path, verify: bool = False) -> dict[str, str]:
    """{relative name: sha256} of a folder on the controller, as FolderManifest reads a host's."""
    return {
        p.relative_to(folder).as_posix(): controller_digest.sha256(p, verify)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def model_section(dest: str) -> tuple[str, str]:
    """The snapshot section that reads what ModelFiles reads at `dest`: (name, command)."""
    return f"model {dest}", stat_command(dest)


def _model_files(dest: str, snap: Snapshot) -> ModelStat:
    lines = snap.section(model_section(dest)[0])
    return host.get_fact(ModelFiles, path=dest) if lines is None else parse_stat(lines)


def _held(
    dest: str, wanted: dict[str, str], folder: bool, verify: bool, snap: Snapshot = NO_SNAPSHOT
) -> tuple[bool, bool]:
    """(the host holds `wanted` at `dest`, the record beside it vouches for that).

    The record is read by stat alone (from the snapshot where it has it); only when it cannot be
    trusted (no record, a file touched since, or `verify`) is the host's copy hashed, which reads
    the whole model.
    """
    recorded = recorded_digests(_model_files(dest, snap))
    vouched = recorded == wanted
    if recorded is not None and not verify:
        # The record still matches the files' stat: it tells a different model apart too,
        # without hashing the old one first.
        return vouched, vouched
    if folder:
        held = host.get_fact(FolderManifest, path=dest)
    else:
        digest = host.get_fact(Sha256File, path=dest)
        held = {FILE_KEY: digest} if digest else {}
    return held == wanted, vouched


def _record_only(dest: str, wanted: dict[str, str], label: str) -> list[Any]:
    """The model is in place but unrecorded (placed by an older llmprov, or touched): record it."""
    host.noop(f"{label} is in place at {dest} (checked by sha256)")
    return [
        server.shell(
            name=f"Record the digest of {label}", commands=[write_record_command(dest, wanted)]
        )
    ]


def upload_file(
    local: Path,
    dest: str,
    owner: str,
    label: str,
    mode: str = MODEL_MODE,
    verify: bool = False,
    record: bool = True,
    snap: Snapshot = NO_SNAPSHOT,
) -> list[Any]:
    """Upload to `<dest>.partial`, then rename; nothing when the host's file is the same.

    Compared by sha256: the record beside the host's file where it still matches the file's stat
    (see core/model_record.py), else by hashing the host's file. `record=False` for a staged file
    that is removed once used (an Ollama import), which keeps no record.
    """
    wanted = {FILE_KEY: controller_digest.sha256(local, verify)}
    if record:
        held, vouched = _held(dest, wanted, folder=False, verify=verify, snap=snap)
    else:
        held = vouched = host.get_fact(Sha256File, path=dest) == wanted[FILE_KEY]
    if held and vouched:
        host.noop(f"{label} is in place at {dest}")
        return []
    if held:
        return _record_only(dest, wanted, label)
    partial = partial_path(dest)
    size = _size(local.stat().st_size)
    move = [move_file_command(partial, dest)]
    if record:
        move = [remove_record_command(dest), *move, write_record_command(dest, wanted)]
    return [
        files.put(
            name=f"Upload {label}",
            src=str(local),
            dest=partial,
            user=owner,
            group=owner,
            mode=mode,
        ),
        server.shell(name=f"Move {label} into place ({size})", commands=move),
    ]


def upload_folder(
    local: Path,
    dest: str,
    owner: str,
    label: str,
    verify: bool = False,
    snap: Snapshot = NO_SNAPSHOT,
) -> list[Any]:
    """Sync into `<dest>.partial` (a partial left before is reused), then swap it in."""
    wanted = local_manifest(local, verify)
    held, vouched = _held(dest, wanted, folder=True, verify=verify, snap=snap)
    if held and vouched:
        host.noop(f"{label} is in place at {dest}")
        return []
    if held:
        return _record_only(dest, wanted, label)
    partial = partial_path(dest)
    size = sum((local / name).stat().st_size for name in wanted)
    return [
        files.sync(
            name=f"Upload {label}",
            src=str(local),
            dest=partial,
            user=owner,
            group=owner,
            mode=MODEL_MODE,
            dir_mode=MODEL_DIR_MODE,
            delete=True,
        ),
        server.shell(
            name=f"Move {label} into place ({len(wanted)} file{'s' * (len(wanted) != 1)}, "
            f"{_size(size)})",
            commands=[
                remove_record_command(dest),
                swap_folder_command(partial, dest),
                write_record_command(dest, wanted),
            ],
        ),
    ]


def _curl() -> list[Any]:
    if host.get_fact(Which, command="curl"):
        return []
    if not host.get_fact(Which, command="apt-get"):
        raise ModelPlacementError(f"{host.name}: the host has no curl and no apt-get to install it")
    return [
        apt.packages(
            name="Download tools",
            packages=["curl", "ca-certificates"],
            update=True,
            cache_time=3600,
        )
    ]


def https_download(
    ref: HttpsRef,
    dest: str,
    owner: str,
    verify: bool = False,
    record: bool = True,
    snap: Snapshot = NO_SNAPSHOT,
) -> list[Any]:
    """Download on the host into `<dest>.partial` (resumed), check the sha256, then rename."""
    wanted = {FILE_KEY: ref.sha256}
    if record:
        held, vouched = _held(dest, wanted, folder=False, verify=verify, snap=snap)
    else:
        held = vouched = host.get_fact(Sha256File, path=dest) == ref.sha256
    if held and vouched:
        host.noop(f"{ref.filename} is in place at {dest} (sha256 matches)")
        return []
    if held:
        return _record_only(dest, wanted, ref.filename)
    download = [https_download_script(ref.url, ref.sha256, dest, owner)]
    if record:
        download = [remove_record_command(dest), *download, write_record_command(dest, wanted)]
    return [
        *_curl(),
        server.shell(
            name=f"Download {ref.filename} and check its sha256 (resumes a partial download)",
            commands=download,
        ),
    ]


def _controller_model(cfg: HostConfig, want: str) -> Path:
    """The model on the controller in format `want`: fetched, then converted, both cached."""
    from llmprov.convert.gguf_hf import cached_hf
    from llmprov.convert.hf_gguf import cached_gguf

    ref = cfg.model_ref
    root = cache_root()
    try:
        src = fetch_model(ref, root, base_dir=cfg.base_dir, token=cfg.hf_token)
        if ref.fmt == want:
            return src
        if want == "hf":
            return cached_hf(src, root).folder
        return cached_gguf(src, root, DEPLOY_GGUF_TYPE, name=cfg.served_model_name).path
    except (ConvertError, CacheError, OSError) as exc:
        raise ModelPlacementError(
            f"{cfg.name}: model: cannot make {ref.raw} ({ref.fmt}) into {want} on the controller: "
            f"{exc}"
        ) from exc


def _as_is(cfg: HostConfig, ref: ModelRef, dest: str, want: str, snap: Snapshot) -> list[Any]:
    owner = cfg.service_user
    verify = cfg.settings.verify_models
    if isinstance(ref, FileRef):
        local = local_path(ref, cfg.base_dir)
        if want == "hf":
            if not local.is_dir():
                raise ModelPlacementError(
                    f"{cfg.name}: model: {local} is not a folder; vllm serves a Hugging Face "
                    "folder (or give a .gguf file, which is converted)"
                )
            return upload_folder(local, dest, owner, f"model folder {local.name}", verify, snap)
        return upload_file(local, dest, owner, f"model {local.name}", verify=verify, snap=snap)
    if isinstance(ref, HttpsRef):
        if ref.fmt != "gguf":
            raise ModelPlacementError(
                f"{cfg.name}: model: an https:// model must be one .gguf file; "
                "a Hugging Face folder comes from hf:// or file://"
            )
        return https_download(ref, dest, owner, verify, snap=snap)
    if isinstance(ref, HuggingFaceRef):
        try:
            return pull_ops(cfg, hf_pull_for(ref, want), dest)
        except PullPlanError as exc:
            raise ModelPlacementError(f"{cfg.name}: model: {exc}") from exc
    raise ModelPlacementError(f"{cfg.name}: model: {ref.raw} cannot be placed for {cfg.engine}")


def place_model(cfg: HostConfig, snap: Snapshot = NO_SNAPSHOT) -> list[Any]:
    """The operations that put the model at the engine's path; none when it is there already.

    `snap` may hold `model_section(model_path(cfg))`, read instead of its own fact."""
    ref = cfg.model_ref
    want = ENGINE_FORMAT[cfg.engine]
    if want == "ollama" or isinstance(ref, OllamaRef):
        raise ModelPlacementError(
            f"{cfg.name}: model: {ref.raw} for {cfg.engine} is pulled or imported by Ollama"
        )
    dest = model_path(cfg)
    if ref.fmt == want:
        return _as_is(cfg, ref, dest, want, snap)
    local = _controller_model(cfg, want)
    label = f"model {local.name} (converted on the controller from {ref.raw})"
    verify = cfg.settings.verify_models
    if want == "hf":
        return upload_folder(local, dest, cfg.service_user, label, verify, snap)
    return upload_file(local, dest, cfg.service_user, label, verify=verify, snap=snap)


# ---------------------------------------------------------------- Ollama


def import_into_ollama(cfg: HostConfig, binary: str, address: str, port: int) -> list[Any]:
    """Import a GGUF (or a Hugging Face model, converted to one) into the host's running Ollama.

    The GGUF is staged on the host (uploaded, downloaded, or pulled from the hub; pulled on the
    controller instead where the inventory gives an HF token, since Ollama hosts keep no
    environment file for it), then imported with Ollama's blob and create calls, then removed.
    A re-run is a no-op while Ollama lists the model and the record says it came from the same
    source.
    """
    ref = cfg.model_ref
    if cfg.os != "linux":
        raise ModelPlacementError(
            f"{cfg.name}: model: llmprov imports {ref.raw} into Ollama on Linux hosts; "
            f"on {cfg.os} give an ollama:// model"
        )
    name = cfg.served_model_name
    staged = ollama_staging(name)
    root_only = "root"
    stage: list[Any]
    local: Path | None = None
    if isinstance(ref, HttpsRef) and ref.fmt == "gguf":
        identity = ollama_identity(ref.raw, ref.sha256)
    elif isinstance(ref, HuggingFaceRef) and ref.fmt == "gguf" and cfg.hf_token is None:
        pull = hf_pull_for(ref, "gguf")
        identity = ollama_identity(ref.raw, pull_identity(pull))
    else:
        local = _controller_model(cfg, "gguf")
        identity = ollama_identity(
            ref.raw, controller_digest.sha256(local, cfg.settings.verify_models)
        )
    present = host.get_fact(OllamaModels, binary=binary, address=f"{address}:{port}")
    recorded = read_marker(host.get_fact(FileContents, path=ollama_marker(name)))
    if present is not None and model_present(present, name) and recorded == identity:
        host.noop(f"model {name} is imported from {ref.raw}")
        return []
    ops: list[Any] = [
        *_curl(),
        files.directory(
            name="Ollama import folder",
            path=OLLAMA_IMPORT_DIR,
            user="root",
            group="root",
            mode="700",
        ),
    ]
    if local is not None:
        stage = upload_file(
            local, staged, root_only, f"model {local.name}", mode="600", record=False
        )
    elif isinstance(ref, HttpsRef):
        stage = https_download(ref, staged, root_only, record=False)
    else:
        assert isinstance(ref, HuggingFaceRef)
        stage = pull_ops(cfg, hf_pull_for(ref, "gguf"), staged, owner=root_only)
    ops += stage
    ops.append(
        server.shell(
            name=f"Import {name} into Ollama through its API (blob upload, create)",
            commands=[
                ollama_import_script(
                    staged, name, address, port, ollama_marker(name), identity, marker_path(staged)
                )
            ],
        )
    )
    return ops


# ---------------------------------------------------------------- the record


def model_digest(cfg: HostConfig) -> str | None:
    """A digest of the model as referenced, for the host's state record (None for Ollama names).

    A stated sha256 first; a controller file's sha256 (cached per content version); a folder's
    digest over its manifest; a Hugging Face pull's identity (repository, revision, file set).
    """
    ref = cfg.model_ref
    if cfg.settings.model_sha256:
        return cfg.settings.model_sha256.lower()
    if isinstance(ref, HttpsRef):
        return ref.sha256.lower()
    if isinstance(ref, FileRef):
        local = local_path(ref, cfg.base_dir)
        if local.is_file():
            return controller_digest.sha256(local, cfg.settings.verify_models)
        if local.is_dir():
            manifest = "\n".join(f"{k} {v}" for k, v in local_manifest(local).items())
            return hashlib.sha256(manifest.encode()).hexdigest()
        return None
    if isinstance(ref, HuggingFaceRef):
        try:
            return "hf-pull:" + pull_identity(hf_pull_for(ref, ref.fmt))
        except PullPlanError:
            return None
    return None
