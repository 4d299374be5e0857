"""Rendering of a Docker Compose project (compose.yaml and its .env) for one engine on one host."""

from __future__ import annotations

from ipaddress import IPv4Address

from llmprov.core.config import HostConfig
from llmprov.core.layout import EngineLayout, model_path, safe_name
from llmprov.core.render.base import RenderedFile, RenderError, Resolved, env_value, render_template
from llmprov.core.render.engines import engine_env, llamacpp_argv, ollama_env, secret_env, vllm_argv
from llmprov.core.render.systemd import pull_env_files

# Upstream images. vLLM publishes its CPU image on its public ECR registry (docs: "CPU - Docker").
VLLM_GPU_IMAGE = "vllm/vllm-openai"
VLLM_CPU_IMAGE = "public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo"
OLLAMA_IMAGE = "ollama/ollama"
LLAMACPP_IMAGE = "ghcr.io/ggml-org/llama.cpp"

CONTAINER_MODELS = "/models"
CONTAINER_PORTS = {"vllm": 8000, "llamacpp": 8080, "ollama": 11434}


class ComposeRenderError(RenderError):
    """A compose file cannot be rendered from what is known (for example, no pinned image tag)."""


def _container_model(cfg: HostConfig) -> str:
    host_path = model_path(cfg)
    return f"{CONTAINER_MODELS}/{host_path.rsplit('/', 1)[-1]}"


def _port_mapping(cfg: HostConfig) -> str:
    host = f"[{cfg.bind}]" if ":" in cfg.bind else cfg.bind
    return f"{host}:{cfg.port}:{CONTAINER_PORTS[cfg.engine]}"


def render(cfg: HostConfig, resolved: Resolved) -> list[RenderedFile]:
    layout = EngineLayout(cfg.engine)
    inner_port = CONTAINER_PORTS[cfg.engine]
    gpu_count = resolved.gpu_count
    # Inside its container the server listens on all interfaces; the published port is what
    # decides who can reach it, and that is bound to the inventory's address.
    all_ifaces = cfg.settings.model_copy(update={"bind": IPv4Address("0.0.0.0")})
    in_cfg = cfg.model_copy(update={"port": inner_port, "settings": all_ifaces})
    env: list[tuple[str, str]] = []
    ipc_host = False
    volumes: list[tuple[str, str | None]] = [("models", layout.models_dir)]
    mounts = [("models", CONTAINER_MODELS)]
    if cfg.engine == "vllm":
        if resolved.vllm_version is None:
            raise ComposeRenderError(
                f"{cfg.name}: vllm.version: a compose file needs a pinned version"
            )
        repo = VLLM_GPU_IMAGE if gpu_count else VLLM_CPU_IMAGE
        image = f"{repo}:v{resolved.vllm_version}"
        argv = vllm_argv(in_cfg, "python3", _container_model(cfg), gpu_count)
        # The image's entrypoint is `vllm serve MODEL`; drop our interpreter prefix and flag.
        command = [argv[4], *argv[5:]]
        env = [
            (k, v) for k, v in engine_env(cfg, resolved, "/root/.cache") if k != "XDG_CACHE_HOME"
        ]
        ipc_host = True
        volumes.append(("cache", None))
        mounts.append(("cache", "/root/.cache"))
        health = ["CMD", "python3", "-c",
                  f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{inner_port}/health', timeout=5)"]  # fmt: skip
        start_period = "600s"
    elif cfg.engine == "llamacpp":
        tag = resolved.llamacpp_image_tag
        if tag is None:
            raise ComposeRenderError(
                f"{cfg.name}: llamacpp.release: a compose file needs an upstream release tag (bNNNN)"
            )
        image = (
            f"{LLAMACPP_IMAGE}:server-cuda-{tag}" if gpu_count else f"{LLAMACPP_IMAGE}:server-{tag}"
        )
        argv = llamacpp_argv(in_cfg, "llama-server", _container_model(cfg))
        command = argv[1:]
        health = ["CMD", "curl", "-f", f"http://localhost:{inner_port}/health"]
        start_period = "60s"
    else:
        image = f"{OLLAMA_IMAGE}:{cfg.settings.ollama.version}"
        command = []
        env = [(k, v) for k, v in ollama_env(cfg) if k not in ("OLLAMA_HOST", "OLLAMA_MODELS")]
        env.insert(0, ("OLLAMA_HOST", f"0.0.0.0:{inner_port}"))
        volumes = [("models", None)]
        mounts = [("models", "/root/.ollama")]
        health = ["CMD", "ollama", "list"]
        start_period = "30s"
    compose = render_template(
        "compose.yaml.j2",
        host=cfg.name,
        description=f"{cfg.engine} serving {cfg.served_model_name}",
        project=f"llmprov-{cfg.engine}",
        service=safe_name(cfg.engine),
        image=image,
        command=command,
        environment=env,
        port_mapping=_port_mapping(cfg),
        ipc_host=ipc_host,
        mounts=mounts,
        volumes=volumes,
        healthcheck=health,
        start_period=start_period,
        gpu_count=gpu_count,
    )
    dotenv = render_template(
        "env.j2",
        host=cfg.name,
        unit_name=f"compose project llmprov-{cfg.engine}",
        env=[(k, env_value(v)) for k, v in [*resolved.extra_env, *secret_env(cfg)]],
    )
    return [
        RenderedFile(f"{layout.compose_dir}/compose.yaml", compose),
        RenderedFile(f"{layout.compose_dir}/.env", dotenv, mode=0o600),
        *pull_env_files(cfg),
    ]
