"""A GPU vendor with no count (count defaults to 0)."""

gpu_servers = [
    (
        "gpu-1",
        {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "gpu": {"vendor": "nvidia"}},
    ),
]
