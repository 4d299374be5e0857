"""The IPv4-mapped wildcard address, without an API key."""

servers = [
    (
        "gpu-1",
        {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "bind": "::ffff:0.0.0.0"},
    ),
]
