"""A GPU host whose stated driver runs no vLLM build: refused by validation, before any host is touched."""

hosts = [
    (
        "gpu-old",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "gpu": {
                "vendor": "nvidia",
                "count": 1,
                "compute_capability": "8.6",
                "driver_version": "470.256.02",
            },
        },
    ),
]
