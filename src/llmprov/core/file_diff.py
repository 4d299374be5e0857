"""Unified diffs of a file a deploy would upload against the host's copy, with secrets masked."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

MASK = "********"


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """Every occurrence of each secret replaced by MASK, longest first so none is half-masked."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def file_diff(
    path: str,
    current: Sequence[str] | None,
    desired: str,
    secrets: Iterable[str | None] = (),
) -> str:
    """The unified diff from the host's lines (None: no such file) to the uploaded content.

    Empty when nothing differs. Secrets are masked on both sides before diffing, so a changed key
    shows as a changed line of MASK rather than as its value.
    """
    secrets = list(secrets)
    old = [mask(line.rstrip("\n"), secrets) for line in (current or [])]
    new = [mask(line, secrets) for line in desired.splitlines()]
    if current is not None and old == new:
        raw_same = [line.rstrip("\n") for line in current] == desired.splitlines()
        return "" if raw_same else f"{path}: only a masked secret changes"
    before = "/dev/null" if current is None else f"{path} (on host)"
    return "\n".join(
        difflib.unified_diff(old, new, fromfile=before, tofile=f"{path} (to upload)", lineterm="")
    )
