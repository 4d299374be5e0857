"""The typed inventory values: each is checked whole, and the checks hold at their edges."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from pydantic import TypeAdapter, ValidationError

from llmprov.core.values import (
    AbsPath,
    BindAddress,
    HttpUrl,
    Port,
    Version,
    check_host_name,
    host_port,
    is_loopback,
    is_wildcard,
    probe_address,
)


def _ok(kind: object, value: object) -> object:
    return TypeAdapter(kind).validate_python(value)


def _refused(kind: object, value: object) -> str:
    with pytest.raises(ValidationError) as err:
        TypeAdapter(kind).validate_python(value)
    return str(err.value)


@pytest.mark.parametrize("text", ["0.0.0.0", "::", "::ffff:0.0.0.0", "0:0:0:0:0:ffff:0:0"])
def test_every_wildcard_form_is_detected(text: str) -> None:
    assert is_wildcard(ip_address(text))


@pytest.mark.parametrize("text", ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"])
def test_loopback_includes_ipv4_mapped(text: str) -> None:
    assert is_loopback(ip_address(text)) and not is_wildcard(ip_address(text))


@pytest.mark.parametrize("text", ["fe80::1%eth0", "::1%1", "10.0.0.1\n", " 10.0.0.1", "host"])
def test_bind_refuses_scope_ids_and_anything_but_an_address(text: str) -> None:
    _refused(BindAddress, text)


def test_a_bool_is_not_a_port_nor_is_a_float() -> None:
    _refused(Port, True)
    _refused(Port, 8080.0)
    assert _ok(Port, "8080") == 8080


@pytest.mark.parametrize("text", ["1.2.3\n", "1.2.3 ", "v1.2.3", "1", "1.2.3\u2028"])
def test_a_version_is_matched_whole(text: str) -> None:
    _refused(Version, text)


@pytest.mark.parametrize(
    "path", ["/", "/etc", "/usr", "/srv/../etc", "/srv//m", "/srv/m/", "srv/m", "/srv/a b"]
)
def test_paths_are_absolute_normalised_and_not_system_folders(path: str) -> None:
    _refused(AbsPath, path)


def test_a_plain_folder_below_a_system_one_is_a_path() -> None:
    assert _ok(AbsPath, "/srv/models") == "/srv/models"
    assert _ok(AbsPath, "D:/models") == "D:/models"


@pytest.mark.parametrize(
    "url", ["https://u:p@x.example/simple", "https://x.example/a b", "ftp://x.example/", "https://"]
)
def test_urls_are_parsed_and_carry_no_credentials(url: str) -> None:
    _refused(HttpUrl, url)


@pytest.mark.parametrize(
    "name", ["gpu-1", "10.0.0.5", "@local", "@winrm/win-box", "@docker/ubuntu:22.04", "fe80::1"]
)
def test_pyinfra_host_names_are_accepted(name: str) -> None:
    assert check_host_name(name) is None


@pytest.mark.parametrize(
    "name", ["../x", "/etc/x", "a/b", "gpu\n1", "[bold]x", "a..b", "@winrm//x", "", "x\u2029"]
)
def test_host_names_that_could_escape_a_file_or_a_line_are_refused(name: str) -> None:
    assert check_host_name(name) is not None


@pytest.mark.parametrize(
    ("bind", "probe", "joined"),
    [
        ("0.0.0.0", "127.0.0.1", "127.0.0.1:80"),
        ("::", "::1", "[::1]:80"),
        ("::ffff:0.0.0.0", "127.0.0.1", "127.0.0.1:80"),
        ("10.1.2.3", "10.1.2.3", "10.1.2.3:80"),
    ],
)
def test_a_check_on_the_host_reaches_a_wildcard_bind_on_loopback(
    bind: str, probe: str, joined: str
) -> None:
    assert probe_address(ip_address(bind)) == probe
    assert host_port(probe, 80) == joined
