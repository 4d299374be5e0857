"""Parsers for what the fixture and golden tests compare as text: launchd plists, WinSW XML, PowerShell.

A text comparison pins the bytes; these make sure the bytes are a document the target reads. plists go
through plistlib and must carry what launchd needs; WinSW definitions through ElementTree with WinSW's
required elements; PowerShell through a lexer of its quoting rules (no PowerShell exists here), which
rejects an unclosed string, here-string, comment or bracket.
"""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ET
from pathlib import PurePosixPath
from typing import Any

_PAIRS = {"(": ")", "{": "}", "[": "]"}


def parse_plist(text: str) -> dict[str, Any]:
    data = plistlib.loads(text.encode())
    if not isinstance(data, dict):
        raise ValueError("a launchd plist is a dictionary")
    if not isinstance(data.get("Label"), str):
        raise ValueError("a launchd plist needs a Label string")
    args = data.get("ProgramArguments")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise ValueError("a launchd plist needs ProgramArguments, a non-empty list of strings")
    return data


def parse_winsw(text: str) -> ET.Element:
    root = ET.fromstring(text)
    if root.tag != "service":
        raise ValueError(f"a WinSW definition's root is <service>, not <{root.tag}>")
    for required in ("id", "executable"):
        node = root.find(required)
        if node is None or not (node.text or "").strip():
            raise ValueError(f"a WinSW definition needs <{required}>")
    return root


def parse_powershell(text: str) -> list[str]:
    """Lex PowerShell's strings, comments and brackets; returns the bracket tokens in order."""
    stack: list[str] = []
    seen: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("<#", i):
            end = text.find("#>", i + 2)
            if end < 0:
                raise ValueError(f"unclosed block comment at {i}")
            i = end + 2
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith(("@'", '@"'), i) and text[i + 2 : i + 3] in ("\n", "\r"):
            close = "\n" + text[i + 1] + "@"
            end = text.find(close, i + 2)
            if end < 0:
                raise ValueError(f"unclosed here-string at {i}")
            i = end + len(close)
        elif c == "'":
            i += 1
            while True:
                if i >= n:
                    raise ValueError("unclosed single-quoted string")
                if text[i] == "'":
                    if text[i + 1 : i + 2] == "'":  # '' is a quote inside the string
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ValueError("unclosed double-quoted string")
                if text[i] == "`":  # the escape character
                    i += 2
                    continue
                if text[i] == '"':
                    if text[i + 1 : i + 2] == '"':
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
        elif c == "`":
            i += 2
        elif c in _PAIRS:
            stack.append(_PAIRS[c])
            seen.append(c)
            i += 1
        elif c in _PAIRS.values():
            if not stack or stack.pop() != c:
                raise ValueError(f"unbalanced {c!r} at {i}")
            seen.append(c)
            i += 1
        else:
            i += 1
    if stack:
        raise ValueError(f"unclosed brackets, expected {''.join(reversed(stack))!r}")
    return seen


def parse_by_name(path: str, text: str) -> Any:
    """Parse `text` by the suffix of the path it is uploaded to; None for other files."""
    suffix = PurePosixPath(path.replace("\\", "/")).suffix.lower()
    if suffix == ".plist":
        return parse_plist(text)
    if suffix == ".xml":
        return parse_winsw(text)
    if suffix == ".ps1":
        return parse_powershell(text)
    return None


def parse_case_output(got: dict[str, Any], windows: bool) -> int:
    """Parse every structured upload (and, on Windows, every command) of a fixture's output.

    Returns how many documents were parsed, so a test can tell that some were.
    """
    parsed = 0
    for op in got.get("operations", []):
        for command in op["commands"]:
            if isinstance(command, dict) and "content" in command:
                text = "\n".join(command["content"]) + "\n"
                if parse_by_name(command["upload"], text) is not None:
                    parsed += 1
            elif isinstance(command, str) and windows:
                parse_powershell(command)
                parsed += 1
    return parsed
