"""Pipeline and tensor parallelism asking for more GPUs than the host has."""

hosts = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "gpu": {"vendor": "nvidia", "count": 2},
            "vllm": {"tensor_parallel_size": 2, "pipeline_parallel_size": 2},
        },
    ),
]
