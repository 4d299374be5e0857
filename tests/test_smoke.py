"""The smoke check passes a healthy server and fails each step for its own reason."""

from __future__ import annotations

import httpx
from standins.openai_app import OpenAIStandIn

from llmprov.checks.smoke import Api, SmokeReport, open_client, run_smoke


def smoke(
    server: OpenAIStandIn,
    model: str = "smollm2",
    api_key: str | None = None,
    api: Api = "openai",
    ready_timeout_s: float = 1.0,
) -> SmokeReport:
    with open_client("http://llm.test", transport=server.transport()) as client:
        return run_smoke(
            client, api, model, api_key, ready_timeout_s=ready_timeout_s, poll_interval_s=0.001
        )


def steps(report: SmokeReport) -> dict[str, bool]:
    return {step.name: step.ok for step in report.steps}


def detail(report: SmokeReport, name: str) -> str:
    return next(step.detail for step in report.steps if step.name == name)


def test_healthy_server_passes_every_step() -> None:
    server = OpenAIStandIn()
    report = smoke(server)
    assert report.ok
    assert steps(report) == {"ready": True, "model listed": True, "chat completion": True}
    assert "Blue" in detail(report, "chat completion")
    body = server.chat_bodies[0]
    assert (body["temperature"], body["max_tokens"], body["stream"]) == (0, 16, False)


def test_enforced_api_key_passes_and_is_sent_on_requests() -> None:
    server = OpenAIStandIn(api_key="s3cret")
    report = smoke(server, api_key="s3cret")
    assert report.ok
    assert steps(report)["API key enforced"]
    assert "401" in detail(report, "API key enforced")
    chats = [r for r in server.requests if r.url.path == "/v1/chat/completions"]
    assert [r.headers.get("authorization") for r in chats] == ["Bearer s3cret", None]


def test_key_not_enforced_fails_that_step_only() -> None:
    report = smoke(OpenAIStandIn(api_key=None), api_key="s3cret")
    assert not report.ok
    assert steps(report) == {
        "ready": True,
        "model listed": True,
        "chat completion": True,
        "API key enforced": False,
    }
    assert "got 200" in detail(report, "API key enforced")


def test_missing_model_fails_and_lists_what_is_served() -> None:
    report = smoke(OpenAIStandIn(models=("qwen3", "llama3")), model="smollm2")
    assert not report.ok
    assert not steps(report)["model listed"]
    assert detail(report, "model listed") == "smollm2 not among: qwen3, llama3"


def test_empty_completion_fails_the_chat_step() -> None:
    report = smoke(OpenAIStandIn(reply=""))
    assert steps(report) == {"ready": True, "model listed": True, "chat completion": False}
    assert "empty text" in detail(report, "chat completion")


def test_wrong_key_fails_at_the_model_list() -> None:
    report = smoke(OpenAIStandIn(api_key="right"), api_key="wrong")
    assert not steps(report)["model listed"]
    assert "401" in detail(report, "model listed")


def test_waits_while_the_server_loads_the_model() -> None:
    server = OpenAIStandIn(not_ready_for=3)
    report = smoke(server)
    assert report.ok
    assert server.health_requests == 4
    assert "after 4 attempt(s)" in detail(report, "ready")


def test_never_ready_stops_after_the_timeout_without_other_steps() -> None:
    server = OpenAIStandIn(not_ready_for=10**9)
    report = smoke(server, ready_timeout_s=0.05)
    assert [s.name for s in report.steps] == ["ready"]
    assert not report.ok
    assert "not ready within 0.05 s" in detail(report, "ready")
    assert "/health 503" in detail(report, "ready")
    assert server.health_requests > 1
    assert report.steps[0].seconds < 1.0


def test_connection_refused_is_retried_then_reported() -> None:
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("Connection refused", request=request)

    with open_client("http://llm.test", transport=httpx.MockTransport(refuse)) as client:
        report = run_smoke(
            client, "openai", "smollm2", None, ready_timeout_s=0.05, poll_interval_s=0.001
        )
    assert not report.ok
    assert calls > 1
    assert "ConnectError: Connection refused" in detail(report, "ready")


def test_server_without_health_endpoint_is_ready_when_it_lists_models() -> None:
    report = smoke(OpenAIStandIn(has_health_endpoint=False))
    assert report.ok
    assert detail(report, "ready") == "/health 404, /v1/models 200"


def test_ollama_uses_its_own_endpoints_and_latest_tag() -> None:
    server = OpenAIStandIn(models=("llama3.2:latest",))
    report = smoke(server, model="llama3.2", api="ollama")
    assert report.ok, report
    assert detail(report, "ready") == "/api/version 200, version 0.12.3"
    assert server.chat_bodies[0]["model"] == "llama3.2"


def test_ollama_model_with_other_tag_is_not_taken_for_latest() -> None:
    report = smoke(OpenAIStandIn(models=("llama3.2:1b",)), model="llama3.2", api="ollama")
    assert not steps(report)["model listed"]


def test_server_without_health_or_model_list_is_not_ready() -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    with open_client("http://llm.test", transport=httpx.MockTransport(not_found)) as client:
        report = run_smoke(client, "openai", "smollm2", None, ready_timeout_s=1.0)
    assert [(s.name, s.ok, s.detail) for s in report.steps] == [
        ("ready", False, "/health 404, /v1/models 404")
    ]
