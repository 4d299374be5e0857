"""A misspelt vLLM setting."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "gpu": {"vendor": "nvidia", "count": 2},
            "vllm": {"tensor_paralel_size": 2},
        },
    ),
]
