"""What each engine is run with: its command line, environment and device nodes, as plain data."""

from __future__ import annotations

from llmprov.core.config import HostConfig
from llmprov.core.render.base import Resolved

NVIDIA_DEVICES: tuple[str, ...] = (
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)


# AMD (ROCm): the compute interface and the render nodes; Jetson: its memory and GPU host nodes.
AMD_DEVICES: tuple[str, ...] = ("/dev/kfd", "char-drm")
JETSON_DEVICES: tuple[str, ...] = (
    "/dev/nvmap",
    "/dev/nvhost-ctrl",
    "/dev/nvhost-ctrl-gpu",
    "/dev/nvhost-prof-gpu",
    "/dev/nvhost-gpu",
    "/dev/nvhost-as-gpu",
)


def vendor_devices(vendor: str, count: int) -> list[str]:
    """The device nodes a GPU vendor's runtime opens; none without GPUs."""
    if vendor == "amd":
        return list(AMD_DEVICES)
    if vendor == "jetson":
        return list(JETSON_DEVICES)
    return gpu_devices(count) if vendor == "nvidia" else []


def gpu_devices(count: int) -> list[str]:
    return [f"/dev/nvidia{i}" for i in range(count)] + list(NVIDIA_DEVICES) if count else []


def vllm_argv(cfg: HostConfig, python: str, model: str, gpu_count: int) -> list[str]:
    v = cfg.settings.vllm
    tp = v.tensor_parallel_size or max(gpu_count, 1)
    argv = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model,
        "--served-model-name", cfg.served_model_name,
        "--host", cfg.bind,
        "--port", str(cfg.port),
        "--tensor-parallel-size", str(tp),
        "--pipeline-parallel-size", str(v.pipeline_parallel_size),
        "--dtype", v.dtype,
    ]  # fmt: skip
    if v.max_model_len:
        argv += ["--max-model-len", str(v.max_model_len)]
    if gpu_count:
        argv += ["--gpu-memory-utilization", str(v.gpu_memory_utilization)]
    if v.enforce_eager:
        argv.append("--enforce-eager")
    return argv + list(v.extra_args)


def llamacpp_argv(cfg: HostConfig, binary: str, model: str) -> list[str]:
    s = cfg.settings.llamacpp
    argv = [
        binary,
        "--model", model,
        "--alias", cfg.served_model_name,
        "--host", cfg.bind,
        "--port", str(cfg.port),
        "--parallel", str(s.parallel),
        "--ctx-size", str(s.ctx_size),
        "--metrics",
        "--no-webui",
    ]  # fmt: skip
    if s.threads:
        argv += ["--threads", str(s.threads)]
    return argv + list(s.extra_args)


def ollama_env(cfg: HostConfig) -> list[tuple[str, str]]:
    """The OLLAMA_* settings; only what the inventory sets, so Ollama's own defaults apply otherwise."""
    o = cfg.settings.ollama
    host = f"[{cfg.bind}]" if ":" in cfg.bind else cfg.bind
    env = [("OLLAMA_HOST", f"{host}:{cfg.port}")]
    if o.models_dir:
        env.append(("OLLAMA_MODELS", o.models_dir))
    pairs: list[tuple[str, object]] = [
        ("OLLAMA_NUM_PARALLEL", o.num_parallel),
        ("OLLAMA_MAX_LOADED_MODELS", o.max_loaded_models),
        ("OLLAMA_KEEP_ALIVE", o.keep_alive),
        ("OLLAMA_MAX_QUEUE", o.max_queue),
        ("OLLAMA_KV_CACHE_TYPE", o.kv_cache_type),
        ("OLLAMA_CONTEXT_LENGTH", o.context_length),
    ]
    if o.flash_attention is not None:
        pairs.append(("OLLAMA_FLASH_ATTENTION", "1" if o.flash_attention else "0"))
    env += [(k, str(v)) for k, v in pairs if v is not None]
    return env


def secret_env(cfg: HostConfig) -> list[tuple[str, str]]:
    """The serving process's secrets: its API key. The HF token is the pull step's (pull_env)."""
    key_var = {"vllm": "VLLM_API_KEY", "llamacpp": "LLAMA_API_KEY"}.get(cfg.engine)
    env: list[tuple[str, str]] = []
    if cfg.api_key and key_var:
        env.append((key_var, cfg.api_key))
    return env


def pull_env(cfg: HostConfig) -> list[tuple[str, str]]:
    """What the Hugging Face pull step reads: the token, which no server needs (they run offline)."""
    return [("HF_TOKEN", cfg.hf_token)] if cfg.hf_token else []


def secret_values(cfg: HostConfig) -> list[str]:
    """Every secret value of a host, for output that must mask them (a --diff, a log line)."""
    return [v for v in (cfg.api_key, cfg.hf_token) if v]


def engine_env(cfg: HostConfig, resolved: Resolved, cache_dir: str) -> list[tuple[str, str]]:
    """Non-secret environment each engine needs to run offline and keep its caches in place."""
    if cfg.engine == "vllm":
        env = [
            ("HF_HUB_OFFLINE", "1"),
            ("VLLM_CACHE_ROOT", f"{cache_dir}/vllm"),
            ("XDG_CACHE_HOME", cache_dir),
            ("VLLM_NO_USAGE_STATS", "1"),
            ("DO_NOT_TRACK", "1"),
        ]
        if not resolved.gpu_count:
            env.append(("VLLM_CPU_KVCACHE_SPACE", str(cfg.settings.vllm.cpu_kvcache_space_gib)))
        return env
    return []
