"""The recommendation: headroom against users, hardware, simplicity when the gap is small, stand-ins."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llmprov.core.advise.curve import Goodput
from llmprov.core.advise.recommend import (
    SMALL_GAP,
    EngineOutcome,
    Hardware,
    recommend,
)

CPU = Hardware()


def outcome(engine: str, level: int | None, tokens: float = 0.0, **kw: object) -> EngineOutcome:
    good = None if level is None else Goodput(level, tokens, level / 2)
    return EngineOutcome(engine, good, **kw)  # type: ignore[arg-type]


def test_the_engine_with_more_goodput_wins_and_headroom_is_stated() -> None:
    choice = recommend([outcome("llamacpp", 4, 90.0), outcome("vllm", 16, 300.0)], CPU, users=8)
    assert choice.engine == "vllm"
    assert (
        "vllm meets the SLO up to concurrency 16 (300.0 output tokens/s there), 2.00× headroom over 8 users"
        in choice.reasons
    )
    assert (
        "llamacpp meets the SLO up to concurrency 4 (90.0 output tokens/s there), 0.50× headroom over 8 users"
        in choice.reasons
    )
    assert choice.reasons[-1] == "recommended: vllm"
    assert "no GPU: chosen between the CPU engines by measurement" in choice.reasons


def test_a_simpler_engine_within_the_small_gap_that_serves_the_users_wins() -> None:
    close = 300.0 * (1 - SMALL_GAP) + 1
    choice = recommend([outcome("vllm", 16, 300.0), outcome("llamacpp", 8, close)], CPU, users=8)
    assert choice.engine == "llamacpp"
    assert any("llamacpp is simpler to run and within" in r for r in choice.reasons)
    # Not when it falls short of the users...
    short = recommend([outcome("vllm", 16, 300.0), outcome("llamacpp", 4, close)], CPU, users=8)
    assert short.engine == "vllm"
    # ...nor when the gap is wide.
    wide = recommend([outcome("vllm", 16, 300.0), outcome("llamacpp", 16, 100.0)], CPU, users=8)
    assert wide.engine == "vllm"
    assert (
        "vllm outperforms llamacpp by more than the 20% a simpler engine may give up"
        in wide.reasons
    )
    assert (
        "llamacpp is simpler to run but meets the SLO only up to concurrency 4, short of 8 users"
        in short.reasons
    )


def test_apple_silicon_gets_ollama() -> None:
    mac = Hardware(os="macos", arch="aarch64")
    assert recommend([outcome("ollama", 2, 40.0)], mac).engine == "ollama"
    assert any("Apple Silicon" in r for r in recommend([], mac).reasons)


def test_multi_gpu_prefers_vllm_for_tensor_parallelism() -> None:
    gpus = Hardware(gpu_vendor="nvidia", gpu_count=4)
    choice = recommend([outcome("llamacpp", 32, 500.0), outcome("vllm", 16, 450.0)], gpus, users=8)
    assert choice.engine == "vllm"
    assert any("tensor parallelism" in r for r in choice.reasons)


def test_a_standin_measurement_is_never_ranked_and_says_so() -> None:
    choice = recommend(
        [outcome("ollama", 32, 9999.0, not_engine=True), outcome("llamacpp", 2, 50.0)], CPU
    )
    assert choice.engine == "llamacpp"
    assert "ollama's server said it is not ollama: its figures are not ranked" in choice.reasons


def test_no_recommendation_without_an_engine_meeting_the_slo() -> None:
    choice = recommend(
        [outcome("vllm", None), outcome("llamacpp", None, error="deploy failed")], CPU
    )
    assert choice.engine is None
    assert "llamacpp was not measured: deploy failed" in choice.reasons
    assert "vllm meets the SLO at no measured concurrency" in choice.reasons


def test_too_few_users_served_anywhere_is_said() -> None:
    choice = recommend([outcome("vllm", 4, 100.0)], CPU, users=50)
    assert choice.engine == "vllm"
    assert any("no engine met the SLO at 50 users" in r for r in choice.reasons)


ENGINES = st.sampled_from(["ollama", "llamacpp", "vllm"])


@given(
    st.lists(
        st.tuples(ENGINES, st.one_of(st.none(), st.integers(1, 64)), st.floats(1, 5000)),
        max_size=3,
        unique_by=lambda t: t[0],
    ),
    st.one_of(st.none(), st.integers(1, 64)),
)
def test_the_recommendation_meets_the_slo_and_is_never_far_behind(
    rows: list[tuple[str, int | None, float]], users: int | None
) -> None:
    outcomes = [outcome(e, level, tokens) for e, level, tokens in rows]
    choice = recommend(outcomes, CPU, users)
    meeting = [o for o in outcomes if o.goodput is not None]
    if not meeting:
        assert choice.engine is None
        return
    chosen = next(o for o in outcomes if o.engine == choice.engine)
    assert chosen.goodput is not None
    best = max(meeting, key=lambda o: (o.goodput.concurrency, o.goodput.output_tokens_per_s))  # type: ignore[union-attr]
    assert best.goodput is not None
    # Either the measured best, or a simpler one within the gap at the users (or the best's level).
    if chosen is not best:
        assert (
            chosen.goodput.output_tokens_per_s >= (1 - SMALL_GAP) * best.goodput.output_tokens_per_s
        )
        assert chosen.goodput.concurrency >= (users or best.goodput.concurrency)
