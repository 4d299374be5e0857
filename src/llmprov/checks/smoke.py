"""Smoke check of one serving endpoint: ready, model listed, one chat answer, API key enforced."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from llmprov.checks.bench import CHAT_PATH

Api = Literal["openai", "ollama"]

# Health endpoint first, then the model list, per API.
_READY_PATH: dict[Api, str] = {"openai": "/health", "ollama": "/api/version"}
_MODELS_PATH: dict[Api, str] = {"openai": "/v1/models", "ollama": "/api/tags"}


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass(frozen=True, slots=True)
class SmokeReport:
    steps: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)


class _StepFailed(Exception):
    """Ends a step with ok=False; the message is the step's detail."""


def open_client(
    base_url: str, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)


def run_smoke(
    client: httpx.Client,
    api: Api,
    model: str,
    api_key: str | None,
    *,
    ready_timeout_s: float = 60.0,
    poll_interval_s: float = 1.0,
) -> SmokeReport:
    """Run the steps in order against `client` (its base_url is the server).

    The readiness step retries until `ready_timeout_s`; when the server never gets ready the
    other steps are not run, as each would only fail for the same reason.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    steps = [
        _timed(
            "ready",
            lambda: _wait_ready(client, api, headers, ready_timeout_s, poll_interval_s),
        )
    ]
    if not steps[0].ok:
        return SmokeReport(tuple(steps))
    steps.append(_timed("model listed", lambda: _model_listed(client, api, model, headers)))
    steps.append(_timed("chat completion", lambda: _chat(client, model, headers)))
    if api_key:
        steps.append(_timed("API key enforced", lambda: _key_enforced(client, model)))
    return SmokeReport(tuple(steps))


def _timed(name: str, step: Callable[[], str]) -> StepResult:
    start = time.perf_counter()
    try:
        ok, detail = True, step()
    except _StepFailed as exc:
        ok, detail = False, str(exc)
    except httpx.HTTPError as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return StepResult(name, ok, detail, time.perf_counter() - start)


def _wait_ready(
    client: httpx.Client,
    api: Api,
    headers: dict[str, str],
    timeout_s: float,
    interval_s: float,
) -> str:
    path = _READY_PATH[api]
    deadline = time.monotonic() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        try:
            response = client.get(path, headers=headers)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                version = _json_or_none(response)
                if isinstance(version, dict) and "version" in version:
                    return f"{path} 200, version {version['version']}"
                return f"{path} 200 after {attempts} attempt(s)"
            if response.status_code == 404 and api == "openai":
                # Not every OpenAI-compatible server has /health; the model list shows readiness.
                models = client.get(_MODELS_PATH[api], headers=headers)
                outcome = f"{path} 404, {_MODELS_PATH[api]} {models.status_code}"
                if models.status_code != 200:
                    raise _StepFailed(outcome)
                return outcome
            last = f"{path} {response.status_code}"
            # 503 is the usual "loading the model"; other client errors will not go away.
            if response.status_code < 500:
                raise _StepFailed(last)
        if time.monotonic() + interval_s > deadline:
            raise _StepFailed(f"not ready within {timeout_s:g} s ({attempts} attempts): {last}")
        time.sleep(interval_s)


def _model_listed(client: httpx.Client, api: Api, model: str, headers: dict[str, str]) -> str:
    path = _MODELS_PATH[api]
    response = client.get(path, headers=headers)
    if response.status_code != 200:
        raise _StepFailed(f"{path} {response.status_code}")
    names = _model_names(api, _json_or_none(response))
    if names is None:
        raise _StepFailed(f"{path} answered without a model list")
    wanted = {model, f"{model}:latest"} if api == "ollama" and ":" not in model else {model}
    if wanted & set(names):
        return f"{model} among {len(names)} model(s)"
    raise _StepFailed(f"{model} not among: {', '.join(names) or '(none)'}")


def _model_names(api: Api, payload: Any) -> list[str] | None:
    key, name = ("data", "id") if api == "openai" else ("models", "name")
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        return None
    return [str(item[name]) for item in payload[key] if isinstance(item, dict) and name in item]


def _chat_body(model: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Name one colour. Answer in one word."}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": False,
    }


def _chat(client: httpx.Client, model: str, headers: dict[str, str]) -> str:
    response = client.post(CHAT_PATH, json=_chat_body(model, 16), headers=headers)
    if response.status_code != 200:
        raise _StepFailed(f"{CHAT_PATH} {response.status_code}: {response.text[:200]}")
    payload = _json_or_none(response)
    try:
        text = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _StepFailed(f"{CHAT_PATH} answer has no choices[0].message.content") from None
    if not isinstance(text, str) or not text.strip():
        raise _StepFailed(f"{CHAT_PATH} returned empty text")
    return repr(text.strip()[:60])


def _key_enforced(client: httpx.Client, model: str) -> str:
    # The chat endpoint, not the model list: llama-server leaves /v1/models public under a key.
    response = client.post(CHAT_PATH, json=_chat_body(model, 1))
    if response.status_code in (401, 403):
        return f"request without key refused ({response.status_code})"
    raise _StepFailed(f"request without key got {response.status_code}, expected 401 or 403")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
