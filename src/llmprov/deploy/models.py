"""Putting the served model on the host, in the format its engine serves, owned by the service user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyinfra.operations import apt, files

from llmprov.core.config import HostConfig
from llmprov.core.layout import ENGINE_FORMAT, model_path
from llmprov.core.model_ref import FileRef, HttpsRef


class ModelPlacementError(Exception):
    """The model cannot be placed on this host as referenced; the message says what to change."""


def place_model(cfg: HostConfig) -> list[Any]:
    ref = cfg.model_ref
    want = ENGINE_FORMAT[cfg.engine]
    dest = model_path(cfg)
    user = cfg.service_user
    if ref.fmt != want:
        raise ModelPlacementError(
            f"{cfg.name}: model: {ref.raw} is {ref.fmt}, {cfg.engine} serves {want}; "
            f"convert it first with `llmprov models convert` and point model at the result"
        )
    if isinstance(ref, FileRef):
        local = Path(ref.path).expanduser()
        if not local.is_absolute() and cfg.base_dir is not None:
            local = Path(cfg.base_dir) / local
        if local.is_dir():
            return [
                files.sync(
                    name=f"Upload model folder {local.name}",
                    src=str(local),
                    dest=dest,
                    user=user,
                    group=user,
                    mode="640",
                    dir_mode="750",
                    delete=True,
                )
            ]
        return [
            files.put(
                name=f"Upload model {local.name}",
                src=str(local),
                dest=dest,
                user=user,
                group=user,
                mode="640",
            )
        ]
    if isinstance(ref, HttpsRef):
        return [
            apt.packages(
                name="Download tools",
                packages=["curl", "ca-certificates"],
                update=True,
                cache_time=3600,
            ),
            files.download(
                name=f"Download model {ref.filename}",
                src=ref.url,
                dest=dest,
                sha256sum=ref.sha256,
                user=user,
                group=user,
                mode="640",
            ),
        ]
    raise ModelPlacementError(
        f"{cfg.name}: model: pulling {ref.raw} onto the host is not supported yet"
    )
