"""Typed inventory values, each checked whole before it may reach a file, a unit or a command."""

from __future__ import annotations

import re
import unicodedata
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name
from pydantic import AfterValidator, BeforeValidator, Field

# Unicode categories that end or split a line somewhere (a unit, YAML, a shell, PowerShell) or are
# invisible controls: Cc (C0, C1, DEL), Zl and Zp (U+2028, U+2029), Cs (lone surrogates).
_BAD_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})

# Folders a service must never be given as its own: writable paths and models folders go below.
SYSTEM_DIRS: frozenset[str] = frozenset(
    {
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt",
        "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin",
        "/usr/lib", "/usr/local", "/usr/local/bin", "/usr/sbin", "/var", "/var/lib", "/var/log",
        "/var/run", "/var/tmp", "/Applications", "/Library", "/System", "/Users", "/private",
        "/private/etc", "/private/var",
    }
)  # fmt: skip
_WINDOWS_SYSTEM_DIRS = frozenset({"c:/", "c:/windows", "c:/program files", "c:/users"})

HOST_NAME = re.compile(
    # pyinfra host names: a plain name (DNS name, IP, alias), `@connector` or `@connector/name`.
    r"(?:@[a-z][a-z0-9_]*(?:/[A-Za-z0-9_][A-Za-z0-9._:-]{0,252})?|[A-Za-z0-9_][A-Za-z0-9._:-]{0,252})"
)
VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){1,3}(?:[a-z0-9.+-]{0,32})")
DURATION = re.compile(r"-1|0|(?:[0-9]{1,9}(?:\.[0-9]{1,9})?(?:ns|us|ms|s|m|h)){1,6}")
# A command-line flag or its value: printable, no newline; spaces are fine (it is one argv item).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")


def bad_char(text: str) -> str | None:
    """The first character that may not appear in any inventory value, shown as U+XXXX."""
    for ch in text:
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            return f"U+{ord(ch):04X}"
    return None


def _text(value: str) -> str:
    found = bad_char(value)
    if found is not None:
        raise ValueError(f"holds the control or line-separator character {found}")
    return value


def _strict_str(value: Any) -> Any:
    # Pydantic would turn bytes into str; an inventory value of another type is an error.
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__} {value!r}"[:200])
    return value


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        _text(value)
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return check


StrOnly = BeforeValidator(_strict_str)
Text = Annotated[str, StrOnly, AfterValidator(_text)]
Version = Annotated[
    str, BeforeValidator(_strict_str), AfterValidator(_matching(VERSION, "a version like 1.2.3"))
]
Duration = Annotated[
    str,
    BeforeValidator(_strict_str),
    AfterValidator(_matching(DURATION, "a duration like 5m, 1h30m, 0 or -1")),
]
ServedName = Annotated[
    str,
    BeforeValidator(_strict_str),
    AfterValidator(_matching(NAME, "a name of letters, digits and . _ : / - (128 at most)")),
]


def check_host_name(name: object) -> str | None:
    """Why `name` cannot be a host name, or None when it can."""
    if not isinstance(name, str):
        return f"a host name must be a string, got {type(name).__name__}"
    found = bad_char(name)
    if found is not None:
        return f"the host name holds the control or line-separator character {found}"
    if not HOST_NAME.fullmatch(name):
        return (
            "a host name is letters, digits and . _ : - (with an optional @connector/ prefix), "
            f"got {name!r}"
        )
    if ".." in name:
        return f"a host name may not hold '..', got {name!r}"
    return None


def _flag(value: str) -> str:
    _text(value)
    if not value.strip():
        raise ValueError("an empty or blank argument")
    return value


Flag = Annotated[str, BeforeValidator(_strict_str), AfterValidator(_flag)]

# A requirement as a name, extras and version specifiers only: no URL (it would bypass the mirror
# and pin nothing a digest could name), no `;` marker (an environment is built for one host).
_REQUIREMENT_CHARS = re.compile(r"[A-Za-z0-9._\-\[\],<>=!~* ]{1,200}")


def normalize_requirement(value: str) -> str:
    """A pip requirement in one spelling: `Foo_Bar[X]>=1 ,<2` -> `foo-bar[x]<2,>=1`.

    Names and extras are canonicalised (PEP 503) and specifiers sorted, so two spellings of one
    requirement give one environment key. ValueError says why a value is not such a requirement.
    """
    _text(value)
    if not _REQUIREMENT_CHARS.fullmatch(value):
        raise ValueError(
            "must be a package name with optional [extras] and version specifiers, like "
            f"'bitsandbytes>=0.46' (no URL, path or ';' marker), got {value!r}"
        )
    # Imported here: only hosts with extra packages need the requirement parser (start-up time).
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        why = str(exc).splitlines()[0]
        raise ValueError(f"is not a pip requirement ({why}), got {value!r}") from exc
    extras = ",".join(sorted(canonicalize_name(e) for e in req.extras))
    return canonicalize_name(req.name) + (f"[{extras}]" if extras else "") + str(req.specifier)


def requirement_name(value: str) -> str:
    """The canonical project name of a requirement normalize_requirement accepted."""
    from packaging.requirements import Requirement

    return canonicalize_name(Requirement(value).name)


PipRequirement = Annotated[str, BeforeValidator(_strict_str), AfterValidator(normalize_requirement)]


def _abs_path(value: str) -> str:
    _text(value)
    if value.startswith("/"):
        p = PurePosixPath(value)
        if ".." in p.parts or str(p) != value or "//" in value:
            raise ValueError(
                f"must be a normalised absolute path (no '..', '.', '//', or '/' at the end), got {value!r}"
            )
        if str(p) in SYSTEM_DIRS:
            raise ValueError(f"{value} is a system folder; give a folder of its own below it")
        if any(c in value for c in " \"'\\%$;`*?[]{}<>|&!#"):
            raise ValueError(
                f"must be a path of plain characters (letters, digits, . _ - + @ : , /), got {value!r}"
            )
        return value
    if re.fullmatch(r"[A-Za-z]:[\\/].*", value):
        w = PureWindowsPath(value)
        if ".." in w.parts or any(
            c in value for c in "\"'`$%;&|<>*?\u2018\u2019\u201a\u201b\u201c\u201d\u201e"
        ):
            raise ValueError(
                f"must be a plain absolute Windows path without '..' or quotes, got {value!r}"
            )
        if str(w).replace("\\", "/").lower().rstrip("/") in {
            d.rstrip("/") for d in _WINDOWS_SYSTEM_DIRS
        } | {"c:"}:
            raise ValueError(f"{value} is a system folder; give a folder of its own below it")
        return value
    raise ValueError(f"must be an absolute path (/... or C:\\...), got {value!r}")


AbsPath = Annotated[str, BeforeValidator(_strict_str), AfterValidator(_abs_path)]


def _url(schemes: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        _text(value)
        if any(c.isspace() for c in value) or any(c in value for c in "\"'`\\<>{}|^"):
            raise ValueError(f"must be a URL without spaces, quotes or backslashes, got {value!r}")
        try:
            split = urlsplit(value)
            split.port  # noqa: B018 - parsing the port raises on a bad one
        except ValueError as exc:
            raise ValueError(f"is not a URL ({exc}), got {value!r}") from None
        if split.scheme not in schemes:
            raise ValueError(
                f"must be a {' or '.join(s + '://' for s in schemes)} URL, got {value!r}"
            )
        if split.scheme != "file" and not split.hostname:
            raise ValueError(f"names no host, got {value!r}")
        if split.username is not None or split.password is not None:
            # It would reach a command line (pip, curl), where any local user can read it.
            raise ValueError("must not carry user:password@ (it would reach a command line)")
        return value

    return check


HttpUrl = Annotated[str, BeforeValidator(_strict_str), AfterValidator(_url(("https", "http")))]
HttpOrFileUrl = Annotated[
    str, BeforeValidator(_strict_str), AfterValidator(_url(("https", "http", "file")))
]


def _bind(value: Any) -> IPv4Address | IPv6Address:
    if isinstance(value, (IPv4Address, IPv6Address)):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be an IP address as a string, got {type(value).__name__}")
    _text(value)
    if "%" in value:
        raise ValueError(f"must be an IP address without a scope id (%...), got {value!r}")
    try:
        addr = ip_address(value)
    except ValueError:
        raise ValueError(f"must be an IP address, got {value!r}") from None
    return addr


BindAddress = Annotated[IPv4Address | IPv6Address, BeforeValidator(_bind)]


def is_wildcard(addr: IPv4Address | IPv6Address) -> bool:
    """Whether a listener bound to `addr` takes connections from every interface."""
    if addr.is_unspecified:
        return True
    mapped = addr.ipv4_mapped if isinstance(addr, IPv6Address) else None
    return mapped is not None and mapped.is_unspecified


def is_loopback(addr: IPv4Address | IPv6Address) -> bool:
    mapped = addr.ipv4_mapped if isinstance(addr, IPv6Address) else None
    return (mapped or addr).is_loopback


def _int_only(value: Any) -> Any:
    # Pydantic's lax mode would take True as 1 and 80.0 as 80. Digits in a string are fine:
    # inventories built from environment variables carry strings.
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, got {type(value).__name__} {value!r}"[:200])
    return value


def _number_only(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {type(value).__name__} {value!r}"[:200])
    return value


IntOnly = BeforeValidator(_int_only)
NumberOnly = BeforeValidator(_number_only)
# What the engines parse into a C int or a Go int32: larger values wrap or are refused at start.
INT32_MAX = 2**31 - 1

Port = Annotated[int, IntOnly, Field(ge=1, le=65535)]


def _network(value: Any) -> str:
    _strict_str(value)
    _text(value)
    if "%" in value:
        raise ValueError(f"must be a network without a scope id, got {value!r}")
    try:
        net = ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"must be an IP network like 10.0.0.0/24 or an address ({exc})") from None
    return str(net)


# A network that may reach a port llmprov opens, normalised (10.0.0.0/24, 2001:db8::/32).
Network = Annotated[str, BeforeValidator(_network)]


def whole(pattern: str, what: str) -> AfterValidator:
    """Metadata for `Annotated[str, StrOnly, whole(...)]`: the value must match `pattern` whole.

    re.fullmatch, not `^...$`: `$` also matches before a trailing newline.
    """
    return AfterValidator(_matching(re.compile(pattern), what))


def probe_address(addr: IPv4Address | IPv6Address) -> str:
    """Where a check on the host itself reaches a server bound to `addr` (a wildcard: loopback)."""
    if not is_wildcard(addr):
        return str(addr)
    return "::1" if isinstance(addr, IPv6Address) and addr.ipv4_mapped is None else "127.0.0.1"


def host_port(address: str, port: int) -> str:
    """`address:port` as URLs and OLLAMA_HOST write it: an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
