"""A port of 0: the server would listen on a random port nobody knows."""

servers = [
    ("gpu-1", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "port": 0}),
]
