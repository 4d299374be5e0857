"""Escaping at the edge: one function per target format, each the only way a value enters that format."""

from __future__ import annotations

import json
import plistlib
import re
import shlex
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any
from xml.sax.saxutils import escape as _xml_escape
from xml.sax.saxutils import quoteattr as _xml_quoteattr

import yaml

from llmprov.core.values import bad_char


class EscapeError(ValueError):
    """A value that no quoting can carry into the format (a line break into a one-line format)."""


def _one_line(value: str, what: str) -> str:
    found = bad_char(value)
    if found is not None:
        # Validation refuses these; reaching here means a value skipped its type.
        raise EscapeError(f"{what} cannot hold {found}: {value!r}")
    return value


# ---------------------------------------------------------------- comments


def comment(value: str) -> str:
    """Text for a `#` comment line (units, env files, YAML, nftables, PowerShell): one line."""
    return value if bad_char(value) is None else ascii(value)


def xml_comment(value: str) -> str:
    """Text for inside `<!-- -->`: XML forbids `--` there and a `-` right before the close."""
    text = comment(value)
    while "--" in text:
        text = text.replace("--", "- -")
    return text + " " if text.endswith("-") else text


# ---------------------------------------------------------------- systemd (systemd.syntax, systemd.service)

_SYSTEMD_PLAIN = re.compile(r"[A-Za-z0-9_@.,:/+=-]+")


def systemd_specifiers(value: str) -> str:
    """Any unit setting: `%` starts a specifier there, so a literal one is doubled."""
    return _one_line(value, "a unit setting").replace("%", "%%")


def systemd_word(arg: str) -> str:
    """One argument of ExecStart=: quoted per systemd.syntax, `%` and `$` doubled, `;` escaped."""
    _one_line(arg, "a command-line argument")
    text = arg.replace("%", "%%").replace("$", "$$")
    if text and _SYSTEMD_PLAIN.fullmatch(text):
        return text
    # Inside double quotes systemd takes C escapes; a lone ";" would still end the command line.
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return "\\;" if arg == ";" else f'"{quoted}"'


def systemd_exec(argv: Sequence[str]) -> str:
    """A whole ExecStart= command line; the first item is the absolute path of the program."""
    if not argv or not argv[0].startswith("/"):
        raise EscapeError(f"ExecStart= needs an absolute program path, got {argv[:1]!r}")
    return " ".join(systemd_word(a) for a in argv)


def systemd_environment(key: str, value: str) -> str:
    """The value of one Environment= assignment, quoted whole: `"KEY=value"`.

    systemd.exec: specifiers are expanded there (so `%` is doubled); `$` is not expanded in
    Environment=, so it stays as it is.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise EscapeError(f"not an environment variable name: {key!r}")
    text = systemd_specifiers(f"{key}={value}").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def env_file_value(value: str) -> str:
    """A value in a systemd EnvironmentFile and a compose .env alike (one line, quoted if needed)."""
    _one_line(value, "an environment value")
    if value and all(c.isalnum() or c in "._-/:,@+=" for c in value):
        return value
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    )
    return f'"{escaped}"'


# ---------------------------------------------------------------- POSIX shell


def shell_join(argv: Iterable[str]) -> str:
    """A command for `sh -c`: each item quoted by shlex, so it tokenises back to `argv`."""
    return shlex.join(_one_line(a, "a shell argument") for a in argv)


def shell_quote(value: str) -> str:
    return shlex.quote(_one_line(value, "a shell argument"))


# ---------------------------------------------------------------- PowerShell

# PowerShell ends a single-quoted string at ' and at the typographic quotes U+2018-U+201B too.
_PS_QUOTES = "'\u2018\u2019\u201a\u201b"


def powershell_quote(value: str, multiline: bool = False) -> str:
    """A PowerShell single-quoted string literal; every quote variant is doubled.

    `multiline` lets line feeds through (a single-quoted string may span lines in a script);
    nothing else that is a control character passes.
    """
    _one_line(value.replace("\n", "") if multiline else value, "a PowerShell string")
    return "'" + "".join(c + c if c in _PS_QUOTES else c for c in value) + "'"


# ---------------------------------------------------------------- YAML, JSON


class _Dumper(yaml.SafeDumper):
    """YAML without anchors or aliases: every document reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def yaml_dump(data: Any) -> str:
    """A YAML document from plain data, through the serializer."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def yaml_scalar(value: str | int | float | bool) -> str:
    """One YAML flow scalar (a JSON string is a valid YAML double-quoted scalar)."""
    if isinstance(value, str):
        _one_line(value, "a YAML scalar")
    return json.dumps(value, ensure_ascii=False)


def json_dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


# ---------------------------------------------------------------- plist, XML


def plist_dump(data: dict[str, Any]) -> str:
    """A property list through plistlib, which escapes every string it writes."""
    return plistlib.dumps(data, sort_keys=False).decode("utf-8")


def xml_text(value: str) -> str:
    return _xml_escape(_one_line(value, "XML text"))


def xml_attr(value: str) -> str:
    """An attribute value with its quotes."""
    return _xml_quoteattr(_one_line(value, "an XML attribute"))


# ---------------------------------------------------------------- nftables


def nft_set_elements(networks: Iterable[str]) -> str:
    """The elements of an nftables set, each parsed as an IP network first (never raw text)."""
    parsed: list[IPv4Network | IPv6Network] = [ip_network(n, strict=False) for n in networks]
    if not parsed:
        raise EscapeError("an nftables set needs one element at least")
    return ", ".join(
        str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in parsed
    )
