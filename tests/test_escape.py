"""One escaping function per format: each value comes back out of its format's own parser intact."""

from __future__ import annotations

import json
import plistlib
import shlex
import xml.etree.ElementTree as ET

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from llmprov.core.render import escape

# Text an inventory value may hold once validated: anything but control and line-separator characters.
VALUE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
)
FAST = settings(max_examples=150, deadline=None)


@FAST
@given(st.lists(VALUE, min_size=1, max_size=5))
def test_shell_join_tokenises_back_to_the_argv(argv: list[str]) -> None:
    assert shlex.split(escape.shell_join(argv)) == argv


@FAST
@given(VALUE)
def test_yaml_scalar_reads_back_as_the_same_string(value: str) -> None:
    assert yaml.safe_load(f"key: {escape.yaml_scalar(value)}\n") == {"key": value}


@FAST
@given(VALUE)
def test_xml_attr_and_text_read_back(value: str) -> None:
    doc = f"<a b={escape.xml_attr(value)}>{escape.xml_text(value)}</a>"
    el = ET.fromstring(doc)
    assert (el.get("b"), el.text) == (value, value)


@FAST
@given(VALUE)
def test_an_xml_comment_never_holds_a_double_dash(value: str) -> None:
    text = escape.xml_comment(value)
    assert "--" not in text and not text.endswith("-")
    ET.fromstring(f"<a><!-- {text} --></a>")


@FAST
@given(VALUE)
def test_powershell_quote_doubles_every_quote_variant(value: str) -> None:
    quoted = escape.powershell_quote(value)
    inner = quoted[1:-1]
    # Collapsing each doubled quote gives the value back, and no single quote is left alone.
    for q in "'\u2018\u2019\u201a\u201b":
        assert inner.count(q) % 2 == 0 or q not in value
    undone = inner
    for q in "'\u2018\u2019\u201a\u201b":
        undone = undone.replace(q + q, q)
    assert undone == value


@FAST
@given(st.dictionaries(st.sampled_from(["A", "B_1"]), VALUE, max_size=2))
def test_plist_dump_reads_back(env: dict[str, str]) -> None:
    data = {"Label": "x", "EnvironmentVariables": env}
    assert plistlib.loads(escape.plist_dump(data).encode()) == data


@FAST
@given(VALUE)
def test_systemd_word_doubles_specifiers_and_dollars(value: str) -> None:
    word = escape.systemd_word(value)
    body = word[1:-1] if word.startswith('"') else word
    assert "\n" not in word
    assert body.count("%") % 2 == 0 and body.count("$") % 2 == 0


def test_systemd_exec_escapes_a_lone_semicolon_and_quotes_spaces() -> None:
    assert escape.systemd_exec(["/bin/x", ";", "a b", "50%", "$HOME"]) == (
        '/bin/x \\; "a b" "50%%" "$$HOME"'
    )


def test_systemd_exec_needs_an_absolute_program() -> None:
    with pytest.raises(escape.EscapeError):
        escape.systemd_exec(["nft", "-f", "/etc/x"])


@pytest.mark.parametrize("bad", ["a\nb", "a\u2028b", "a\rb", "a\x00b"])
def test_no_format_takes_a_line_break(bad: str) -> None:
    for quote in (escape.shell_quote, escape.systemd_word, escape.powershell_quote):
        with pytest.raises(escape.EscapeError):
            quote(bad)


def test_json_dump_is_json() -> None:
    assert json.loads(escape.json_dump({"a": "b\u2028"})) == {"a": "b\u2028"}


def test_nft_set_elements_come_from_parsed_networks_only() -> None:
    assert escape.nft_set_elements(["10.0.0.1", "10.1.0.0/16"]) == "10.0.0.1, 10.1.0.0/16"
    with pytest.raises(ValueError):
        escape.nft_set_elements(["10.0.0.1 }; flush ruleset; set x {"])


def test_a_host_name_with_a_double_dash_leaves_the_winsw_xml_well_formed() -> None:
    from llmprov.core.config import HostConfig
    from llmprov.core.render.plan import plan_host
    from llmprov.core.validate import ControllerFiles, validate_host

    cfg = validate_host(
        "@winrm/win--box-",
        {"os": "windows", "engine": "ollama", "model": "ollama://llama3.2:3b"},
        ControllerFiles(read=lambda p: "", exists=lambda p: True),
    )
    assert isinstance(cfg, HostConfig), cfg
    xml = next(f.content for f in plan_host(cfg) if f.path.endswith(".xml"))
    root = ET.fromstring(xml)
    assert root.tag == "service"
    assert "win- -box-" in xml.splitlines()[0]
