"""An API key file that is empty: the server would accept an empty key."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "bind": "0.0.0.0",
            "api_key_file": "files/empty.txt",
        },
    ),
]
