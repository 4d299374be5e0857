"""A vLLM version of 'latest': deploys are pinned."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "vllm": {"version": "latest"},
        },
    ),
]
