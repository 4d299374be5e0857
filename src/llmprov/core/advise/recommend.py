"""Choosing an engine from its measurements, the expected users and the hardware, with the reasons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmprov.core.advise.curve import Goodput

# How much throughput a simpler engine may give up and still be preferred, when both serve the
# expected users within the SLO: below this the difference buys less than the operations cost.
SMALL_GAP = 0.2
# Fewer moving parts first: one static binary with model management, one static binary, a Python
# environment with a CUDA or CPU torch stack.
SIMPLICITY = ("ollama", "llamacpp", "vllm")


@dataclass(frozen=True, slots=True)
class Hardware:
    os: str = "linux"
    arch: str = "x86_64"
    gpu_vendor: str = "none"
    gpu_count: int = 0

    @property
    def apple_silicon(self) -> bool:
        return self.os == "macos" and self.arch == "aarch64"

    @property
    def multi_gpu(self) -> bool:
        return self.gpu_vendor in ("nvidia", "amd") and self.gpu_count > 1

    @property
    def no_gpu(self) -> bool:
        return self.gpu_vendor == "none" or self.gpu_count == 0


@dataclass(frozen=True, slots=True)
class EngineOutcome:
    """What advise learned of one engine on one host."""

    engine: str
    goodput: Goodput | None
    # The server said it is not the engine: its figures are never ranked.
    not_engine: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    engine: str | None
    reasons: tuple[str, ...]


def _simplicity(engine: str) -> int:
    return SIMPLICITY.index(engine) if engine in SIMPLICITY else len(SIMPLICITY)


def _describe(outcome: EngineOutcome, users: int | None) -> str:
    g = outcome.goodput
    if g is None:
        return f"{outcome.engine} meets the SLO at no measured concurrency"
    text = (
        f"{outcome.engine} meets the SLO up to concurrency {g.concurrency} "
        f"({g.output_tokens_per_s:.1f} output tokens/s there)"
    )
    if users:
        text += f", {g.concurrency / users:.2f}× headroom over {users} users"
    return text


def recommend(
    outcomes: Sequence[EngineOutcome], hardware: Hardware, users: int | None = None
) -> Recommendation:
    reasons: list[str] = []
    usable: list[EngineOutcome] = []
    for o in outcomes:
        if o.error is not None:
            reasons.append(f"{o.engine} was not measured: {o.error}")
        elif o.not_engine:
            reasons.append(
                f"{o.engine}'s server said it is not {o.engine}: its figures are not ranked"
            )
        else:
            usable.append(o)
            reasons.append(_describe(o, users))
    if hardware.apple_silicon:
        reasons.append(
            "Apple Silicon: Ollama runs on Metal with unified memory and is the engine llmprov "
            "deploys on macOS"
        )
        return Recommendation("ollama", tuple(reasons))
    ranked = sorted(
        (o for o in usable if o.goodput is not None),
        key=lambda o: (
            o.goodput.concurrency if o.goodput else 0,
            o.goodput.output_tokens_per_s if o.goodput else 0.0,
        ),
        reverse=True,
    )
    if not ranked:
        reasons.append("no engine met the SLO at any measured concurrency: no recommendation")
        return Recommendation(None, tuple(reasons))
    best = ranked[0]
    assert best.goodput is not None
    if users and best.goodput.concurrency < users:
        reasons.append(
            f"no engine met the SLO at {users} users on this host; {best.engine} comes closest: "
            "plan for more hardware or a looser SLO"
        )
    vllm = next((o for o in ranked if o.engine == "vllm"), None)
    if hardware.multi_gpu and vllm is not None and vllm is not best:
        reasons.append(
            f"{hardware.gpu_count} GPUs: vLLM spreads one model over them with tensor "
            "parallelism, which the single-process engines cannot"
        )
        best = vllm
    elif hardware.multi_gpu and vllm is best:
        reasons.append(f"{hardware.gpu_count} GPUs: vLLM can also shard the model across them")
    assert best.goodput is not None
    simpler = _simpler_close_enough(ranked, best, users)
    if simpler is not None and not (hardware.multi_gpu and best.engine == "vllm"):
        assert simpler.goodput is not None
        gap = 1 - simpler.goodput.output_tokens_per_s / best.goodput.output_tokens_per_s
        reasons.append(
            f"{simpler.engine} is simpler to run and within {max(gap, 0):.0%} of "
            f"{best.engine}'s throughput" + (f" while serving {users} users" if users else "")
        )
        best = simpler
    elif simpler is None and len(ranked) > 1:
        runner_up = next(o for o in ranked if o is not best)
        reasons.append(_why_not_simpler(best, runner_up, users))
    if hardware.no_gpu:
        reasons.append("no GPU: chosen between the CPU engines by measurement")
    reasons.append(f"recommended: {best.engine}")
    return Recommendation(best.engine, tuple(reasons))


def _simpler_close_enough(
    ranked: Sequence[EngineOutcome], best: EngineOutcome, users: int | None
) -> EngineOutcome | None:
    """The simplest engine that serves `users` (or goes as high as `best` without `users`) within
    SMALL_GAP of `best`'s throughput."""
    assert best.goodput is not None
    floor = (1 - SMALL_GAP) * best.goodput.output_tokens_per_s
    candidates = [
        o
        for o in ranked
        if o.goodput is not None
        and _simplicity(o.engine) < _simplicity(best.engine)
        and o.goodput.concurrency >= (users or best.goodput.concurrency)
        and o.goodput.output_tokens_per_s >= floor
    ]
    return min(candidates, key=lambda o: _simplicity(o.engine), default=None)


def _why_not_simpler(best: EngineOutcome, other: EngineOutcome, users: int | None) -> str:
    assert best.goodput is not None and other.goodput is not None
    if _simplicity(other.engine) > _simplicity(best.engine):
        return f"{best.engine} is also the simpler engine to run"
    needed = users or best.goodput.concurrency
    if other.goodput.concurrency < needed:
        return (
            f"{other.engine} is simpler to run but meets the SLO only up to concurrency "
            f"{other.goodput.concurrency}, short of "
            + (f"{users} users" if users else f"{best.engine}'s {needed}")
        )
    return (
        f"{best.engine} outperforms {other.engine} by more than the {SMALL_GAP:.0%} a simpler "
        "engine may give up"
    )
