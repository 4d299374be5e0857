"""What every renderer shares: the rendered file, the values facts decide, and the templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

import llmprov
from llmprov.core.render import escape


class RenderError(ValueError):
    """A file cannot be rendered from what is known; the message is `host: field: reason`."""


@dataclass(frozen=True)
class RenderedFile:
    """One file as the deploy uploads it: its path on the host, text, mode and owner."""

    path: str
    content: str
    mode: int = 0o644
    owner: str = "root"


@dataclass(frozen=True)
class Resolved:
    """Values a deploy learns from facts and the matrix, passed in so rendering probes nothing.

    `vllm_version` pins the compose image; `gpu_count` is the detected or stated count.
    """

    vllm_version: str | None = None
    vllm_cpu: bool = True
    gpu_count: int = 0
    llamacpp_image_tag: str | None = None
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def templates_dir() -> Path:
    """The templates/ folder: top level in a source checkout, package data when installed."""
    checkout = Path(__file__).resolve().parents[4] / "templates"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("llmprov") / "templates"))


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    # Every value enters a template through the escaping function of the template's format.
    env.filters.update(
        q=escape.yaml_scalar,
        comment=escape.comment,
        xml_comment=escape.xml_comment,
        xml_text=escape.xml_text,
        xml_attr=escape.xml_attr,
        ps=escape.powershell_quote,
        systemd=escape.systemd_specifiers,
        systemd_exec=escape.systemd_exec,
        systemd_env=escape.systemd_environment,
        nft_set=escape.nft_set_elements,
    )
    return env


def render_template(name: str, **context: Any) -> str:
    # Read through the package at call time: tests pin the version shown in rendered files by
    # patching `llmprov.core.render.__version__`.
    from llmprov.core import render

    version = getattr(render, "__version__", llmprov.__version__)
    return _env().get_template(name).render(llmprov_version=version, **context)


def env_value(value: str) -> str:
    """Quote a value for a systemd EnvironmentFile and a compose .env alike."""
    return escape.env_file_value(value)
