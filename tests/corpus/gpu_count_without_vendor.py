"""A GPU count with no vendor: llmprov cannot tell which driver and devices to use."""

gpu_servers = [
    ("gpu-1", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "gpu": {"count": 2}}),
]
