"""Every host commented out: nothing to validate or deploy."""

servers = [
    # ("gpu-1", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct"}),
]
