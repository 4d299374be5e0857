"""vLLM listening on every interface with no API key: anyone on the network could use it."""

gpu_servers = [
    ("gpu-1", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "bind": "0.0.0.0"}),
]
