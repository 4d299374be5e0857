"""A port above 65535."""

servers = [
    ("gpu-1", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "port": 70000}),
]
