"""parse_model_ref: one class per scheme, and errors that say what is wrong and what is valid."""

from __future__ import annotations

import pytest

from llmprov.core.model_ref import (
    SCHEMES,
    FileRef,
    HttpsRef,
    HuggingFaceRef,
    ModelRef,
    ModelRefError,
    OllamaRef,
    parse_model_ref,
)

SHA = "6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e"
VALID_SCHEMES = "ollama://, hf://, https://, file://"


def test_each_scheme_has_exactly_one_class() -> None:
    classes = {cls.scheme: cls for cls in (OllamaRef, HuggingFaceRef, HttpsRef, FileRef)}
    assert tuple(classes) == SCHEMES
    assert all(issubclass(cls, ModelRef) for cls in classes.values())


# ---------------------------------------------------------------- ollama://


def test_ollama_name_and_tag() -> None:
    ref = parse_model_ref("ollama://llama3.2:3b")
    assert ref == OllamaRef(raw="ollama://llama3.2:3b", name="llama3.2", tag="3b")
    assert (ref.fmt, ref.default_name) == ("ollama", "llama3.2:3b")


def test_ollama_tag_defaults_to_latest_as_ollama_does() -> None:
    ref = parse_model_ref("ollama://smollm2")
    assert isinstance(ref, OllamaRef)
    assert ref.tag == "latest"
    assert ref.default_name == "smollm2:latest"


def test_ollama_namespaced_name() -> None:
    ref = parse_model_ref("ollama://library/qwen2.5:0.5b-instruct-q4_K_M")
    assert isinstance(ref, OllamaRef)
    assert (ref.name, ref.tag) == ("library/qwen2.5", "0.5b-instruct-q4_K_M")


@pytest.mark.parametrize(
    "raw", ["ollama://", "ollama://Llama3", "ollama://llama3:", "ollama://a b"]
)
def test_malformed_ollama_names_are_rejected(raw: str) -> None:
    with pytest.raises(ModelRefError, match="not an Ollama model name"):
        parse_model_ref(raw)


# ---------------------------------------------------------------- hf://


def test_hf_repository() -> None:
    ref = parse_model_ref("hf://Qwen/Qwen2.5-0.5B-Instruct")
    assert ref == HuggingFaceRef(
        raw="hf://Qwen/Qwen2.5-0.5B-Instruct",
        repo="Qwen/Qwen2.5-0.5B-Instruct",
        revision=None,
        filename=None,
    )
    assert (ref.fmt, ref.default_name) == ("hf", "qwen2.5-0.5b-instruct")


def test_hf_revision_and_file_in_a_subfolder() -> None:
    ref = parse_model_ref("hf://org/repo-GGUF@v1.2/q4/model-Q4_K_M.gguf")
    assert isinstance(ref, HuggingFaceRef)
    assert (ref.repo, ref.revision, ref.filename) == (
        "org/repo-GGUF",
        "v1.2",
        "q4/model-Q4_K_M.gguf",
    )
    assert (ref.fmt, ref.default_name) == ("gguf", "model-q4_k_m")


def test_hf_file_that_is_not_gguf_keeps_the_hf_format() -> None:
    ref = parse_model_ref("hf://org/repo/config.json")
    assert ref.fmt == "hf"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("hf://gpt2", "expected hf://org/repo"),
        ("hf://", "expected hf://org/repo"),
        ("hf://org/re po", "not a Hugging Face repository id"),
        ("hf://-org/repo", "not a Hugging Face repository id"),
        ("hf://org/repo@", "empty or malformed revision"),
        ("hf://org/repo@a b", "empty or malformed revision"),
        ("hf://org/repo/../secrets", "malformed file path"),
        ("hf://org/repo//model.gguf", "malformed file path"),
    ],
)
def test_malformed_hf_references_are_rejected(raw: str, message: str) -> None:
    with pytest.raises(ModelRefError, match=message):
        parse_model_ref(raw)


# ---------------------------------------------------------------- https://


def test_https_with_sha256_on_the_url() -> None:
    ref = parse_model_ref(f"https://example.com/m/SmolLM2-Q4.gguf#sha256={SHA}")
    assert ref == HttpsRef(
        raw=f"https://example.com/m/SmolLM2-Q4.gguf#sha256={SHA}",
        url="https://example.com/m/SmolLM2-Q4.gguf",
        sha256=SHA,
    )
    assert (ref.filename, ref.fmt, ref.default_name) == ("SmolLM2-Q4.gguf", "gguf", "smollm2-q4")


def test_https_with_sha256_given_apart_and_in_capitals() -> None:
    ref = parse_model_ref("https://example.com/model.gguf", SHA.upper())
    assert isinstance(ref, HttpsRef)
    assert ref.sha256 == SHA


def test_https_with_the_same_sha256_twice_is_accepted() -> None:
    ref = parse_model_ref(f"https://example.com/model.gguf#sha256={SHA}", SHA.upper())
    assert isinstance(ref, HttpsRef)
    assert ref.sha256 == SHA


@pytest.mark.parametrize(
    ("raw", "sha256", "message"),
    [
        ("https://example.com/model.gguf", None, "needs its expected sha256"),
        ("https://example.com/model.gguf#sha256=abc", None, "sha256 must be 64 hex digits"),
        ("https://example.com/model.gguf", "z" * 64, "sha256 must be 64 hex digits"),
        (f"https://example.com/model.gguf#sha256={SHA}", "0" * 64, "disagree"),
        (f"https:///model.gguf#sha256={SHA}", None, "needs a host and a file path"),
        (f"https://example.com/#sha256={SHA}", None, "needs a host and a file path"),
    ],
)
def test_https_without_a_usable_digest_or_path_is_rejected(
    raw: str, sha256: str | None, message: str
) -> None:
    with pytest.raises(ModelRefError, match=message):
        parse_model_ref(raw, sha256)


# ---------------------------------------------------------------- file://


def test_file_relative_absolute_and_folder() -> None:
    assert parse_model_ref("file://models/m.gguf") == FileRef(
        raw="file://models/m.gguf", path="models/m.gguf"
    )
    absolute = parse_model_ref("file:///srv/models/Qwen2.5-0.5B/")
    assert isinstance(absolute, FileRef)
    assert absolute.path == "/srv/models/Qwen2.5-0.5B/"
    assert (absolute.fmt, absolute.default_name) == ("hf", "qwen2.5-0.5b")
    assert parse_model_ref("file://m.gguf").fmt == "gguf"


def test_file_without_a_path_is_rejected() -> None:
    with pytest.raises(ModelRefError, match="empty path"):
        parse_model_ref("file://")


# ---------------------------------------------------------------- schemes


@pytest.mark.parametrize("raw", ["llama3.2:3b", "Qwen/Qwen2.5-0.5B-Instruct", "/srv/m.gguf", ""])
def test_a_reference_without_a_scheme_lists_the_valid_ones(raw: str) -> None:
    with pytest.raises(ModelRefError) as exc:
        parse_model_ref(raw)
    assert str(exc.value) == f"model reference {raw!r} has no scheme; use one of {VALID_SCHEMES}"


@pytest.mark.parametrize(
    "raw", ["s3://bucket/m.gguf", "http://example.com/m.gguf", "HF://org/repo"]
)
def test_an_unknown_scheme_lists_the_valid_ones(raw: str) -> None:
    with pytest.raises(ModelRefError) as exc:
        parse_model_ref(raw)
    scheme = raw.split("://")[0] + "://"
    assert str(exc.value) == f"unknown scheme {scheme!r} in {raw!r}; use one of {VALID_SCHEMES}"


def test_model_ref_error_is_a_value_error() -> None:
    # Callers that only know ValueError (pydantic validators among them) still catch it.
    assert issubclass(ModelRefError, ValueError)
