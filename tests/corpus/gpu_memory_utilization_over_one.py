"""GPU memory utilisation written as a percentage instead of a fraction."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "gpu": {"vendor": "nvidia", "count": 1},
            "vllm": {"gpu_memory_utilization": 90},
        },
    ),
]
