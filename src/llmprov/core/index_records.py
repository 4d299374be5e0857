"""Reading a package index's answers (PEP 691 JSON or PEP 503 HTML, PEP 658 metadata) into matrix records."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from llmprov.core.resolve import _torch_pin

ARCHES = ("x86_64", "aarch64")
_PLATFORM_RE = re.compile(r"^(manylinux\w*?)_(x86_64|aarch64)$")
_LEGACY = {
    "manylinux1": "manylinux_2_5",
    "manylinux2010": "manylinux_2_12",
    "manylinux2014": "manylinux_2_17",
}


class IndexFormatError(ValueError):
    """The index answered something that is neither PEP 691 JSON nor a PEP 503 page."""


@dataclass(frozen=True)
class IndexWheel:
    """One Linux wheel of a release on the index."""

    version: str
    arch: str
    manylinux: str
    filename: str
    url: str
    sha256: str | None
    metadata_advertised: bool


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


def _files(text: str, content_type: str) -> list[dict[str, Any]]:
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IndexFormatError(f"index JSON does not parse: {exc}") from exc
        if not isinstance(data, Mapping) or not isinstance(data.get("files"), list):
            raise IndexFormatError("index JSON has no 'files' list (PEP 691)")
        return [dict(f) for f in data["files"] if isinstance(f, Mapping)]
    if "<a" not in text:
        raise IndexFormatError("the index answered neither PEP 691 JSON nor a PEP 503 page")
    parser = _Anchors()
    parser.feed(text)
    files: list[dict[str, Any]] = []
    for link in parser.links:
        href = link.get("href") or ""
        url, _, fragment = href.partition("#")
        meta = link.get("data-core-metadata") or link.get("data-dist-info-metadata")
        files.append(
            {
                "filename": url.rsplit("/", 1)[-1],
                "url": url,
                "hashes": dict([fragment.split("=", 1)]) if "=" in fragment else {},
                "core-metadata": meta not in (None, "false"),
                "yanked": link.get("data-yanked") is not None,
            }
        )
    return files


def linux_wheels(text: str, content_type: str, base_url: str, since: Version) -> list[IndexWheel]:
    """The manylinux x86_64/aarch64 wheels of releases >= `since`, one per release and arch
    (abi3 or cp312 preferred), from a simple-index answer; relative URLs joined to `base_url`."""
    chosen: dict[tuple[str, str], tuple[int, IndexWheel]] = {}
    for f in _files(text, content_type):
        name = str(f.get("filename", ""))
        if not name.endswith(".whl") or f.get("yanked"):
            continue
        try:
            _, version, _, tags = parse_wheel_filename(name)
        except InvalidWheelFilename:
            continue
        if version < since:
            continue
        for tag in tags:
            match = _PLATFORM_RE.match(tag.platform)
            if match is None:
                continue
            rank = {"abi3": 0, "cp312": 1}.get(tag.abi if tag.abi == "abi3" else tag.interpreter, 2)
            # PEP 503/691: a relative link is relative to the page (a mirror's
            # "../../packages/..." leaves the project's folder), as a browser joins it.
            url = urljoin(base_url, str(f.get("url", "")))
            hashes = f.get("hashes") or {}
            meta = f.get("core-metadata", f.get("data-dist-info-metadata", False))
            wheel = IndexWheel(
                version=str(version),
                arch=match.group(2),
                manylinux=_LEGACY.get(match.group(1), match.group(1)),
                filename=name,
                url=url,
                sha256=hashes.get("sha256") if isinstance(hashes, Mapping) else None,
                metadata_advertised=bool(meta),
            )
            key = (wheel.version, wheel.arch)
            if key not in chosen or rank < chosen[key][0]:
                chosen[key] = (rank, wheel)
    return [w for _, w in sorted(chosen.values(), key=lambda p: (Version(p[1].version), p[1].arch))]


def requires_dist(metadata: str) -> list[str]:
    """The Requires-Dist lines of a core metadata file (headers end at the first blank line)."""
    header = metadata.split("\n\n", 1)[0]
    return [
        line.split(":", 1)[1].strip()
        for line in header.splitlines()
        if line.lower().startswith("requires-dist:")
    ]


def torch_pin(metadata: str, arch: str) -> str | None:
    """The exact torch== pin the metadata states for Linux on `arch`."""
    pin = _torch_pin(requires_dist(metadata), arch, "3.12")
    return pin if pin and pin[0].isdigit() else None


def records(
    wheels: Sequence[IndexWheel], pins: Mapping[tuple[str, str], str | None], source: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Matrix rows ({version, torch, wheels, source}) and the releases left out, with why.

    A release is recorded when every arch it has a wheel for states the same torch pin; the
    x86_64 pin stands for an arch whose metadata could not be read.
    """
    by_version: dict[str, dict[str, IndexWheel]] = {}
    for w in wheels:
        by_version.setdefault(w.version, {})[w.arch] = w
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for version in sorted(by_version, key=Version, reverse=True):
        arches = by_version[version]
        found = {a: pins.get((version, a)) for a in arches}
        known = {p for p in found.values() if p}
        if not known:
            skipped.append(f"{version}: no readable metadata states a torch== pin")
            continue
        if len(known) > 1:
            skipped.append(f"{version}: its wheels pin different torch releases {sorted(known)}")
            continue
        rows.append(
            {
                "version": version,
                "torch": known.pop(),
                "wheels": {a: arches[a].manylinux for a in ARCHES if a in arches},
                "sha256": {a: arches[a].sha256 for a in ARCHES if a in arches},
                "source": source,
            }
        )
    return rows, skipped
