"""Arbitrary inventory values are either refused as `host: field: reason`, or rendered safely.

For each generated host, one field of a valid host's data is replaced with generated text (or a
generated number). Validation must then refuse it with FieldErrors, never raise; or every file
rendered from it must parse with its format's own parser and hold no line, key or document beyond
what the templates put there, and the server's command line must read back as the intended argv.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from llmprov.core.config import HostConfig
from llmprov.core.render import RenderError
from llmprov.core.render.engines import llamacpp_argv, vllm_argv
from llmprov.core.render.k8s import K8sRenderError, render_manifests, resolved_for_k8s
from llmprov.core.render.plan import offline_resolved, plan_host
from llmprov.core.render.prometheus import render_prometheus
from llmprov.core.validate import ControllerFiles, FieldError, validate_host

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASES: dict[str, dict[str, Any]] = {
    "vllm-systemd": {"engine": "vllm", "model": "hf://org/repo", "vllm": {"version": "0.32.0"}},
    "vllm-compose": {
        "engine": "vllm",
        "runtime": "compose",
        "model": "hf://org/repo",
        "vllm": {"version": "0.32.0"},
    },
    "llamacpp-systemd": {"engine": "llamacpp", "model": "hf://org/repo/m.gguf"},
    "llamacpp-compose": {
        "engine": "llamacpp",
        "runtime": "compose",
        "model": "hf://org/repo/m.gguf",
        "llamacpp": {"release": "b6710"},
    },
    "llamacpp-launchd": {"engine": "llamacpp", "os": "macos", "model": "hf://org/repo/m.gguf"},
    "ollama-systemd": {"engine": "ollama", "model": "ollama://llama3.2:3b"},
    "ollama-compose": {"engine": "ollama", "runtime": "compose", "model": "ollama://m:1b"},
    "ollama-launchd": {"engine": "ollama", "os": "macos", "model": "ollama://llama3.2:3b"},
    "ollama-windows": {"engine": "ollama", "os": "windows", "model": "ollama://llama3.2:3b"},
}

# Where a generated string goes: a path of keys into the host data, and a wrapper that keeps
# the rest of the value valid, so the generated part is what validation has to judge.
STRING_FIELDS: dict[str, Any] = {
    "model.hf_file": (("model",), lambda t: f"hf://org/repo/{t}.gguf"),
    "model.hf_repo": (("model",), lambda t: f"hf://org/{t}"),
    "model.ollama": (("model",), lambda t: f"ollama://{t}"),
    "served_model_name": (("served_model_name",), lambda t: t),
    "bind": (("bind",), lambda t: t),
    "bind.ipv6_scope": (("bind",), lambda t: f"fe80::1%{t}"),
    "ollama.models_dir": (("ollama", "models_dir"), lambda t: f"/srv/{t}"),
    "ollama.models_dir.windows": (("ollama", "models_dir"), lambda t: f"D:\\{t}"),
    "ollama.keep_alive": (("ollama", "keep_alive"), lambda t: t),
    "ollama.version": (("ollama", "version"), lambda t: f"0.12.{t}"),
    "vllm.extra_args": (("vllm", "extra_args"), lambda t: ["--seed", t]),
    "vllm.version": (("vllm", "version"), lambda t: t),
    "llamacpp.extra_args": (("llamacpp", "extra_args"), lambda t: [t]),
    "llamacpp.release": (("llamacpp", "release"), lambda t: f"b{t}"),
    "mirror.pip_index_url": (("mirror", "pip_index_url"), lambda t: f"https://{t}/simple"),
    "gpu.driver_version": (("gpu", "driver_version"), lambda t: f"570.{t}"),
    "allow_from": (("allow_from",), lambda t: [t]),
}
NUMBER_FIELDS: dict[str, tuple[str, ...]] = {
    "port": ("port",),
    "ollama.num_parallel": ("ollama", "num_parallel"),
    "ollama.context_length": ("ollama", "context_length"),
    "vllm.max_model_len": ("vllm", "max_model_len"),
    "vllm.gpu_memory_utilization": ("vllm", "gpu_memory_utilization"),
    "llamacpp.ctx_size": ("llamacpp", "ctx_size"),
    "llamacpp.threads": ("llamacpp", "threads"),
    "gpu.count": ("gpu", "count"),
}

# Text as a hostile spreadsheet cell could hold it: the characters that end lines, quote, escape
# or start a specifier in some format, mixed with ordinary ones.
NASTY = st.sampled_from(
    [
        *"\n\r\t\x00\x0b\x1b\u0085\u2028\u2029\"'`$%;&|<>{}[]#:=!\\/ .-_@*?,~",
        *("\u2018", "\u2019", "\u201a", "\u201b", "--", "$(id)", "%n", "..", "\n[Install]\n"),
    ]
)
TEXT = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.one_of(NASTY, st.text(alphabet="abcXYZ019", min_size=1, max_size=4)), max_size=8
    ).map("".join),
)
NUMBER = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(alphabet="0123456789.-e ", max_size=8),
)
HOST_NAMES = st.one_of(st.just("gpu-1"), st.just("@winrm/win-box"), TEXT)


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def _files() -> ControllerFiles:
    return ControllerFiles(read=lambda p: "k3y", exists=lambda p: True)


def _check_errors(host: str, result: list[FieldError]) -> None:
    assert result, "an empty error list"
    for e in result:
        assert isinstance(e, FieldError)
        line = str(e)
        assert "\n" not in line and "\r" not in line and "\u2028" not in line
        assert e.field and e.reason


# ---------------------------------------------------------------- what each format may hold

UNIT_KEYS = {
    "Unit": {"Description", "Documentation", "After", "Wants", "Requires", "Before", "PartOf"},
    "Service": None,  # the hardening block is long; checked by prefix below
    "Install": {"WantedBy", "RequiredBy"},
}
_UNIT_LINE = re.compile(r"\[(Unit|Service|Install)\]|([A-Za-z]+)=(.*)")


def _unquote_systemd(line: str) -> list[str]:
    """ExecStart= split as systemd.syntax does: double quotes with C escapes, %% and $$ folded."""
    words: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        word = ""
        if line[i] == '"':
            i += 1
            while line[i] != '"':
                if line[i] == "\\":
                    i += 1
                word += line[i]
                i += 1
            i += 1
            assert i >= len(line) or line[i] == " ", f"junk after a quoted word in {line!r}"
        else:
            while i < len(line) and line[i] != " ":
                if line[i] == "\\":
                    i += 1
                word += line[i]
                i += 1
        words.append(_fold(word))
    return words


def _fold(word: str) -> str:
    """%% and $$ to one; a lone % would be a specifier and a lone $ a variable, so neither may be."""
    out, i = "", 0
    while i < len(word):
        if word[i] in "%$":
            assert word[i + 1 : i + 2] == word[i], f"a lone {word[i]} in {word!r} would be expanded"
            i += 1
        out += word[i]
        i += 1
    return out


def _check_unit(text: str, argv: list[str] | None) -> None:
    sections = []
    for raw in text.splitlines():
        if not raw or raw.startswith("#"):
            continue
        m = _UNIT_LINE.fullmatch(raw)
        assert m, f"not a unit line: {raw!r}"
        if m.group(1):
            sections.append(m.group(1))
            continue
        assert sections, raw
        allowed = UNIT_KEYS[sections[-1]]
        assert allowed is None or m.group(2) in allowed, raw
        if m.group(2) == "ExecStart" and argv is not None:
            assert _unquote_systemd(m.group(3)) == argv
        if m.group(2) in ("Environment",):
            assert m.group(3).startswith('"') and m.group(3).endswith('"'), raw
    assert len(sections) == len(set(sections)), f"a section twice: {sections}"


_ENV_LINE = re.compile(r'[A-Z_][A-Z0-9_]*=([A-Za-z0-9._\-/:,@+=]+|"([^"\\$`]|\\.)*")')


def _check_env(text: str, keys: int) -> None:
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert len(lines) == keys
    for line in lines:
        assert _ENV_LINE.fullmatch(line), line


def _check_yaml(text: str, top: set[str]) -> None:
    docs = list(yaml.safe_load_all(text))
    assert len(docs) == 1 and isinstance(docs[0], dict)
    assert set(docs[0]) == top, set(docs[0])


_PS_STRING = re.compile(
    "['\u2018\u2019\u201a\u201b](?:[^'\u2018\u2019\u201a\u201b]|['\u2018\u2019\u201a\u201b]{2})*['\u2018\u2019\u201a\u201b]"
)
_PS_STATEMENT = re.compile(
    r"\$ErrorActionPreference = S"
    r"|\[Environment\]::SetEnvironmentVariable\(S, (S|\$null), S\)"
    r"|Remove-NetFirewallRule -Name S -ErrorAction SilentlyContinue"
    r"|New-NetFirewallRule -Name S -DisplayName S -Direction Inbound -Protocol TCP -LocalPort \d+"
    r"( -RemoteAddress S(, S)*)? -Action Allow \| Out-Null"
)


def _check_ps1(text: str) -> None:
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        assert _PS_STATEMENT.fullmatch(_PS_STRING.sub("S", line)), line


def _check_file(cfg: HostConfig, path: str, content: str, env_keys: int) -> None:
    if path.endswith(".service"):
        binary_argv = None
        if cfg.engine == "vllm":
            gpus = offline_resolved(cfg).gpu_count
            binary_argv = vllm_argv(cfg, "/opt/llmprov/vllm/current/bin/python", "M", gpus)
        if cfg.engine == "llamacpp":
            binary_argv = llamacpp_argv(cfg, "/opt/llmprov/llamacpp/current/bin/llama-server", "M")
        if binary_argv is not None:
            # The model path is the layout's; compare the rest of the line item by item.
            line = next(x for x in content.splitlines() if x.startswith("ExecStart="))
            got = _unquote_systemd(line.removeprefix("ExecStart="))
            i = got.index("--model") + 1
            got[i] = "M"
            assert got == binary_argv
        _check_unit(content, None)
    elif path.endswith(".conf"):
        _check_unit(content, None)
    elif path.endswith(".env"):
        _check_env(content, env_keys)
    elif path.endswith("compose.yaml"):
        _check_yaml(content, {"name", "services", "volumes"})
    elif path.endswith(".plist"):
        job = plistlib.loads(content.encode())
        assert set(job) <= {
            "Label", "ProgramArguments", "UserName", "GroupName", "WorkingDirectory",
            "EnvironmentVariables", "RunAtLoad", "KeepAlive", "ThrottleInterval", "ProcessType",
            "StandardOutPath", "StandardErrorPath",
        }  # fmt: skip
    elif path.endswith(".xml"):
        root = ET.fromstring(content)
        assert {c.tag for c in root} <= {
            "id", "name", "description", "executable", "arguments", "workingdirectory",
            "startmode", "delayedAutoStart", "onfailure", "resetfailure", "stoptimeout",
            "logpath", "log", "env",
        }  # fmt: skip
    elif path.endswith(".ps1"):
        _check_ps1(content)
    else:
        raise AssertionError(f"no check for {path}")


def _render_and_check(host: str, cfg: HostConfig) -> None:
    try:
        files = plan_host(cfg)
    except RenderError as exc:
        # A refusal at render time must still read `host: field: reason`.
        assert str(exc).startswith(f"{host}: "), str(exc)
        return
    for f in files:
        env_keys = 0
        if f.path.endswith(".env"):
            env_keys = sum(1 for x in f.content.splitlines() if x and not x.startswith("#"))
            # The count is the renderer's own; what matters is that each line parses whole.
        _check_file(cfg, f.path, f.content, env_keys)
    try:
        manifests = render_manifests({host: cfg}, {host: resolved_for_k8s(cfg)})
    except (K8sRenderError, RenderError):
        manifests = []
    for m in manifests:
        docs = list(yaml.safe_load_all(m.text))
        assert len(docs) == len(m.documents)
        assert [d["kind"] for d in docs] == [d["kind"] for d in m.documents]
    prom = yaml.safe_load(render_prometheus({host: cfg}, {host: {}}, "inv.py"))
    assert set(prom) == {"global", "scrape_configs"}


def _validate(host: str, data: dict[str, Any]) -> HostConfig | None:
    result = validate_host(host, data, _files())
    if isinstance(result, list):
        _check_errors(host, result)
        event("refused")
        return None
    event("accepted and rendered")
    return result


def _exposed(data: dict[str, Any]) -> dict[str, Any]:
    # A generated bind beyond loopback needs consent; give it, so the bind itself is what is judged.
    return {**data, "expose_unauthenticated": True, "allow_from": ["10.0.0.0/8"]}


@PROPS
@given(
    base=st.sampled_from(sorted(BASES)),
    field=st.sampled_from(sorted(STRING_FIELDS)),
    text=TEXT,
)
def test_any_text_in_a_string_field_is_refused_or_rendered_safely(
    base: str, field: str, text: str
) -> None:
    path, wrap = STRING_FIELDS[field]
    data = _set(BASES[base], path, wrap(text))
    if field.startswith("bind") or field == "allow_from":
        data = _exposed(data)
    cfg = _validate("gpu-1", data)
    if cfg is not None:
        _render_and_check("gpu-1", cfg)


@PROPS
@given(base=st.sampled_from(sorted(BASES)), field=st.sampled_from(sorted(NUMBER_FIELDS)), n=NUMBER)
def test_any_number_in_a_numeric_field_is_refused_or_rendered_safely(
    base: str, field: str, n: Any
) -> None:
    data = _set(BASES[base], NUMBER_FIELDS[field], n)
    if field == "gpu.count":
        data = _set(data, ("gpu", "vendor"), "nvidia")
    cfg = _validate("gpu-1", data)
    if cfg is not None:
        if isinstance(n, bool):
            raise AssertionError(f"{field} took the bool {n!r}")
        _render_and_check("gpu-1", cfg)


@PROPS
@given(base=st.sampled_from(sorted(BASES)), name=HOST_NAMES)
def test_any_host_name_is_refused_or_rendered_safely(base: str, name: str) -> None:
    cfg = _validate(name, BASES[base])
    if cfg is not None:
        assert "/" not in name.removeprefix("@").split("/", 1)[-1] and ".." not in name
        _render_and_check(name, cfg)


@PROPS
@given(
    data=st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
        ),
        max_leaves=10,
    )
)
def test_any_python_value_as_host_data_gives_field_errors_not_a_traceback(data: Any) -> None:
    if isinstance(data, dict):
        data = {**BASES["vllm-systemd"], **data}
    result = validate_host("gpu-1", data, _files())
    if isinstance(result, list):
        _check_errors("gpu-1", result)


# ---------------------------------------------------------------- systemd-analyze verify

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# Values that pass validation and are hard on a unit: specifiers, dollars, quotes, spaces.
HARD_VALUES = st.text(
    alphabet=st.sampled_from([*"aZ09%$\"'\\;&|<>{} #=:,.-_@!*?~", "\u2019", "é"]),
    min_size=1,
    max_size=16,
)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not found")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    args=st.lists(HARD_VALUES, min_size=1, max_size=4), engine=st.sampled_from(["vllm", "llamacpp"])
)
def test_units_with_hard_extra_args_pass_systemd_analyze_verify(
    args: list[str], engine: str, tmp_path: Path
) -> None:
    data = _set(BASES[f"{engine}-systemd"], (engine, "extra_args"), args)
    cfg = _validate("gpu-1", data)
    if cfg is None:
        return
    unit = next(f for f in plan_host(cfg, offline_resolved(cfg)) if f.path.endswith(".service"))
    root = tmp_path / "root"
    target = root / unit.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(unit.content, encoding="utf-8")
    line = next(x for x in unit.content.splitlines() if x.startswith("ExecStart="))
    binary = root / _unquote_systemd(line.removeprefix("ExecStart="))[0].lstrip("/")
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    for src in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if src.is_dir() and not (root / "usr/lib/systemd/system").exists():
            shutil.copytree(
                src, root / "usr/lib/systemd/system", symlinks=True, copy_function=os.link
            )
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_LOG_COLOR": "0"}
    proc = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", f"--root={root}", "--man=no", Path(unit.path).name],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout.strip(), proc.stderr.strip()) == (0, "", ""), proc.stderr
    shutil.rmtree(root)
