"""A tensor parallel size of 0."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "gpu": {"vendor": "nvidia", "count": 1},
            "vllm": {"tensor_parallel_size": 0},
        },
    ),
]
