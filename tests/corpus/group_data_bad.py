"""A fault in group data: every host of the group inherits it and each is reported."""

gpu_servers = (
    ["gpu-1", "gpu-2", ("gpu-3", {"port": 8001})],
    {
        "engine": "vllm",
        "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
        "gpu": {"vendor": "nvidia", "count": 2},
        "vllm": {"tensor_parallel_size": 0},
    },
)
