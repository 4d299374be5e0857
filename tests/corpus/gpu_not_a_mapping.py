"""gpu given as a word instead of a mapping of settings."""

gpu_servers = [
    ("gpu-1", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "gpu": "nvidia"}),
]
