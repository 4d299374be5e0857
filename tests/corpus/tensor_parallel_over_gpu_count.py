"""Tensor parallelism over more GPUs than the host has."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "gpu": {"vendor": "nvidia", "count": 2},
            "vllm": {"tensor_parallel_size": 4},
        },
    ),
]
